package dev.handoff.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.ErrorPolicy;
import dev.handoff.mirror.MirrorOptions;
import dev.handoff.mirror.SyncMode;

/**
 * The job options of QMP's {@code blockdev-mirror} and {@code drive-mirror}, parsed and checked with
 * QEMU's error messages and in QEMU's order (argument types and values first, then granularity,
 * job id, buf-size, speed), into a {@link JobLauncher}.
 *
 * <p>Where QEMU's values mean something Handoff does differently: {@code sync: "top"} is
 * {@code "full"} (a raw image has no backing file, as it is for QEMU on a node without one); a
 * {@code buf-size} below the granularity is rounded up to it, as QEMU does; a target of another
 * size is refused here, where QEMU starts the job and fails it with the same message.
 */
final class MirrorArgs {
    static final String[] JOB_OPTIONS = {"sync", "speed", "granularity", "buf-size", "on-source-error",
        "on-target-error", "copy-mode", "auto-finalize", "auto-dismiss"};

    private final SyncMode sync;
    private final Long speed;
    private final Long granularity;
    private final Long bufSize;
    private final ErrorPolicy onSourceError;
    private final ErrorPolicy onTargetError;
    private final CopyMode copyMode;
    private final boolean autoFinalize;
    private final boolean autoDismiss;

    private MirrorArgs(SyncMode sync, Long speed, Long granularity, Long bufSize, ErrorPolicy onSourceError,
            ErrorPolicy onTargetError, CopyMode copyMode, boolean autoFinalize, boolean autoDismiss) {
        this.sync = sync;
        this.speed = speed;
        this.granularity = granularity;
        this.bufSize = bufSize;
        this.onSourceError = onSourceError;
        this.onTargetError = onTargetError;
        this.copyMode = copyMode;
        this.autoFinalize = autoFinalize;
        this.autoDismiss = autoDismiss;
    }

    /** Types and values of the job options; the caller has refused unexpected arguments. */
    static MirrorArgs parse(ObjectNode args) throws QmpException {
        String s = Args.string(args, "sync");
        SyncMode sync = switch (s) {
            case "full", "top" -> SyncMode.FULL;
            case "none" -> SyncMode.NONE;
            default -> throw QmpException.generic("Parameter 'sync' does not accept value '" + s + "'");
        };
        return new MirrorArgs(sync, Args.optInteger(args, "speed"), Args.optInteger(args, "granularity"),
                Args.optInteger(args, "buf-size"),
                args.has("on-source-error") ? Args.choice(args, "on-source-error", ErrorPolicy.class) : null,
                args.has("on-target-error") ? Args.choice(args, "on-target-error", ErrorPolicy.class) : null,
                args.has("copy-mode") ? Args.choice(args, "copy-mode", CopyMode.class) : null,
                Args.optBool(args, "auto-finalize", true), Args.optBool(args, "auto-dismiss", true));
    }

    /** The launcher for job {@code jobId} from a source of {@code sourceSize} to a target of {@code targetSize}. */
    JobLauncher launcher(String jobId, long targetSize, long sourceSize) throws QmpException {
        MirrorOptions.Builder b = MirrorOptions.builder();
        long g = MirrorOptions.DEFAULT_GRANULARITY;
        if (granularity != null) {
            g = granularity;
            if (g <= 0 || Long.bitCount(g) != 1) {
                throw QmpException.generic("Parameter 'granularity' expects a power of 2");
            }
            if (g < MirrorOptions.MIN_GRANULARITY || g > MirrorOptions.MAX_GRANULARITY) {
                throw QmpException.generic("Parameter 'granularity' expects a value in range [512B, 64MB]");
            }
            b.granularity(g);
        }
        if (jobId == null || !BlockNodes.wellFormed(jobId)) {
            throw QmpException.generic("Invalid job ID '" + (jobId == null ? "" : jobId) + "'");
        }
        if (bufSize != null) {
            if (bufSize < 0) {
                throw QmpException.generic("Invalid parameter 'buf-size'");
            }
            if (bufSize > 0) {
                b.bufSize(Math.max(bufSize, g));
            }
        }
        if (speed != null) {
            if (speed < 0) {
                throw QmpException.generic("Parameter 'speed' expects a non-negative value");
            }
            b.speed(speed);
        }
        if (targetSize != sourceSize) {
            throw QmpException.generic("Source and target image have different sizes");
        }
        b.sync(sync);
        if (onSourceError != null) {
            b.onSourceError(onSourceError);
        }
        if (onTargetError != null) {
            b.onTargetError(onTargetError);
        }
        if (copyMode != null) {
            b.copyMode(copyMode);
        }
        try {
            return JobLauncher.of(b.build(), jobId).lifecycle(autoFinalize, autoDismiss);
        } catch (IllegalArgumentException | CliException e) {
            throw QmpException.generic(e.getMessage());
        }
    }
}
