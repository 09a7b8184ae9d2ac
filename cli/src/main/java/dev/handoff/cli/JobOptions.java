package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.FaultyDevice;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.ErrorPolicy;
import dev.handoff.mirror.MirrorOptions;
import dev.handoff.mirror.SyncMode;
import java.util.Locale;
import picocli.CommandLine.Option;

/**
 * The mirror job's options, shared by {@code mirror} and {@code demo} (a picocli mixin). Values are
 * checked by {@link MirrorOptions}' builder, so the rules live in one place: the kernel.
 */
final class JobOptions {
    @Option(names = "--granularity", paramLabel = "SIZE", converter = Sizes.Converter.class,
            description = "Bytes per dirty-bitmap chunk: a power of two, 512 to 64M (default: 64K).")
    Long granularity;

    @Option(names = "--buf-size", paramLabel = "SIZE", converter = Sizes.Converter.class,
            description = "Most bytes of copies in flight at once; at least the granularity, at most the JVM's direct"
                    + " memory (default: 16M).")
    Long bufSize;

    @Option(names = "--max-copy", paramLabel = "SIZE", converter = Sizes.Converter.class,
            description = "Most bytes one copy moves (adjacent dirty chunks are merged; default: min(1M, buf-size)).")
    Long maxCopy;

    @Option(names = "--speed", paramLabel = "RATE", converter = Sizes.Converter.class,
            description = "Copy speed limit in bytes per second, e.g. 50M or 50M/s; 0 = unlimited (default: 0).")
    Long speed;

    @Option(names = "--copies-while-guest-writes", paramLabel = "N",
            description = "Most copies in flight while the guest writes (a write within the last 5 ms); otherwise"
                    + " one per copier thread (4). 4 or more turns this off (default: 1).")
    Integer copiesWhileGuestWrites;

    @Option(names = "--copy-mode", paramLabel = "MODE", converter = Choices.CopyModes.class,
            description = "background (guest writes only mark chunks dirty) or write-blocking (active: guest writes"
                    + " also go to the target before they return). Default: background.")
    CopyMode copyMode;

    @Option(names = "--sync", paramLabel = "MODE", converter = Choices.SyncModes.class,
            description = "full (copy everything) or none (copy only writes made while the job runs). Default: full.")
    SyncMode sync;

    @Option(names = "--on-source-error", paramLabel = "POLICY", converter = Choices.Policies.class,
            description = "report, ignore, stop or enospc: what a failed source read does (default: report); stop and"
                    + " enospc pause the job until block-job-resume, so they need --control.")
    ErrorPolicy onSourceError;

    @Option(names = "--on-target-error", paramLabel = "POLICY", converter = Choices.Policies.class,
            description = "report, ignore, stop or enospc: what a failed target write does (default: report); stop and"
                    + " enospc pause the job until block-job-resume, so they need --control.")
    ErrorPolicy onTargetError;

    @Option(names = "--inject-target-errors", paramLabel = "N[:KIND][@P]",
            description = "Make N target writes fail (KIND io or nospace, default io), each write failing with"
                    + " probability P (default 0.05), to watch the error policy work.")
    String injectTargetErrors;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "42",
            description = "Seed of injected errors and of the demo's guest (default: ${DEFAULT-VALUE}).")
    long seed;

    /** The kernel's options, or a usage error naming the bad value. */
    MirrorOptions toMirrorOptions(boolean targetIsZero) throws CliException {
        try {
            MirrorOptions.Builder b = MirrorOptions.builder();
            if (granularity != null) {
                b.granularity(granularity);
            }
            if (bufSize != null) {
                b.bufSize(bufSize);
            }
            if (maxCopy != null) {
                b.maxCopyBytes(maxCopy);
            }
            if (speed != null) {
                b.speed(speed);
            }
            if (copiesWhileGuestWrites != null) {
                b.copiesWhileGuestWrites(copiesWhileGuestWrites);
            }
            if (copyMode != null) {
                b.copyMode(copyMode);
            }
            if (sync != null) {
                b.sync(sync);
            }
            if (onSourceError != null) {
                b.onSourceError(onSourceError);
            }
            if (onTargetError != null) {
                b.onTargetError(onTargetError);
            }
            b.targetIsZero(targetIsZero);
            return b.build();
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, e.getMessage());
        }
    }

    /** Checks the option combinations that {@link #toMirrorOptions} cannot see. */
    void validate() throws CliException {
        toMirrorOptions(false);
        injection();
    }

    /**
     * Refuses {@code stop} and {@code enospc} where nothing could resume the job they pause:
     * {@code resumable} is false without a control socket, and {@code hint} says what to do instead.
     */
    void requireResumable(boolean resumable, String hint) throws CliException {
        if (resumable) {
            return;
        }
        for (String side : new String[] {"source", "target"}) {
            ErrorPolicy p = side.equals("source") ? onSourceError : onTargetError;
            if (p == ErrorPolicy.STOP || p == ErrorPolicy.ENOSPC) {
                throw new CliException(ExitCodes.USAGE, "--on-" + side + "-error " + Choices.name(p) + " pauses the job"
                        + (p == ErrorPolicy.ENOSPC ? " when the target runs out of space" : " on an error")
                        + " until block-job-resume, and " + hint);
            }
        }
    }

    /** The injected-fault rule, or null. */
    Injection injection() throws CliException {
        if (injectTargetErrors == null) {
            return null;
        }
        String spec = injectTargetErrors.trim();
        try {
            double probability = 0.05;
            int at = spec.indexOf('@');
            if (at >= 0) {
                probability = Double.parseDouble(spec.substring(at + 1));
                spec = spec.substring(0, at);
            }
            DeviceException.Kind kind = DeviceException.Kind.IO_ERROR;
            int colon = spec.indexOf(':');
            if (colon >= 0) {
                String k = spec.substring(colon + 1).toLowerCase(Locale.ROOT);
                if (k.equals("nospace") || k.equals("enospc")) {
                    kind = DeviceException.Kind.NO_SPACE;
                } else if (!k.equals("io") && !k.equals("eio")) {
                    throw new IllegalArgumentException("unknown kind '" + k + "'");
                }
                spec = spec.substring(0, colon);
            }
            long count = Long.parseLong(spec);
            if (count < 0 || !(probability > 0 && probability <= 1)) {
                throw new IllegalArgumentException("out of range");
            }
            return new Injection(count, kind, probability, seed);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "invalid value for option '--inject-target-errors': '"
                    + injectTargetErrors + "' (expected N[:io|nospace][@P] with N >= 0 and 0 < P <= 1)");
        }
    }

    /** A device with injected faults, and how to stop injecting. */
    record Injected(BlockDevice device, Runnable disarm) {
    }

    /** A number of injected target write errors. */
    record Injection(long count, DeviceException.Kind kind, double probability, long seed) {
        /** Wraps {@code target} in a device that fails {@code count} writes. */
        Injected wrap(BlockDevice target) {
            if (count == 0) {
                return new Injected(target, () -> { });
            }
            FaultyDevice faulty = new FaultyDevice(target, seed);
            FaultyDevice.Armed armed = faulty.inject(FaultyDevice.Fault.error(kind)
                    .on(FaultyDevice.Op.WRITE, FaultyDevice.Op.WRITE_ZEROES).probability(probability).times(count));
            return new Injected(faulty, armed::disarm);
        }

        @Override
        public String toString() {
            return count + " " + (kind == DeviceException.Kind.NO_SPACE ? "no-space" : "I/O") + " error"
                    + (count == 1 ? "" : "s") + " on target writes (p=" + probability + ")";
        }
    }
}
