package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;

/**
 * Builds every mirror job the command line runs: {@code mirror}, {@code demo}, {@code serve
 * --mirror-to} and QMP's {@code blockdev-mirror} / {@code drive-mirror} on a running {@code serve}.
 * The one place where a job's options meet this JVM's limits, its target gets the injected faults
 * of {@code --inject-target-errors}, and the kernel job gets its QMP id and event fan-out
 * ({@link JobRun}).
 *
 * <p>Two steps, so that bad input changes nothing: a launcher is made from the options before any
 * file is opened (that is where they are refused), and {@link #launch} runs once the source and the
 * target are open. Not thread-safe; each launcher launches one job.
 */
final class JobLauncher {
    private final MirrorOptions options;
    private final JobOptions.Injection injection;
    private final String jobId;
    private boolean autoFinalize = true;
    private boolean autoDismiss = true;

    private JobLauncher(MirrorOptions options, JobOptions.Injection injection, String jobId) {
        this.options = options;
        this.injection = injection;
        this.jobId = jobId;
    }

    /** A launcher for the command line's job options; a usage error names a bad value or combination. */
    static JobLauncher of(JobOptions cli, String jobId) throws CliException {
        if (jobId.isBlank()) {
            throw new CliException(ExitCodes.USAGE, "--job-id must not be empty");
        }
        MirrorOptions options = cli.toMirrorOptions(false);
        checkMemory(options, "--buf-size", "--max-copy");
        return new JobLauncher(options, cli.injection(), jobId);
    }

    /** A launcher for options already built (QMP's blockdev-mirror); the memory check is made here too. */
    static JobLauncher of(MirrorOptions options, String jobId) throws CliException {
        checkMemory(options, "buf-size", "max-copy");
        return new JobLauncher(options, null, jobId);
    }

    /** QEMU's auto-finalize and auto-dismiss (both on by default). */
    JobLauncher lifecycle(boolean autoFinalize, boolean autoDismiss) {
        this.autoFinalize = autoFinalize;
        this.autoDismiss = autoDismiss;
        return this;
    }

    /** The options (before the target is known to read as zeroes). */
    MirrorOptions options() {
        return options;
    }

    JobOptions.Injection injection() {
        return injection;
    }

    String jobId() {
        return jobId;
    }

    /**
     * Refuses options whose copy buffers this JVM cannot give: buf-size is the most bytes of copies
     * in flight and QEMU's users read it as memory, so it may not exceed the JVM's direct memory, and
     * the buffers the copier would actually allocate (one of max-copy bytes per copy in flight, see
     * {@link MirrorOptions#copyBufferBytes}) must fit in what is still free of it.
     */
    static void checkMemory(MirrorOptions options, String bufSizeName, String maxCopyName) throws CliException {
        long max = DirectMemory.max();
        String limit = " (-XX:MaxDirectMemorySize: the handoff launcher sets a quarter of the RAM, the JVM's"
                + " default heap maximum; raise it with HANDOFF_JAVA_OPTS=-XX:MaxDirectMemorySize=SIZE)";
        if (options.bufSize() > max) {
            throw new CliException(ExitCodes.USAGE, bufSizeName + " " + Sizes.format(options.bufSize())
                    + " is more than this JVM's " + Sizes.format(max) + " of direct memory" + limit);
        }
        long needed = options.copyBufferBytes(MirrorJob.DEFAULT_THREADS);
        long available = DirectMemory.available();
        if (needed > available) {
            throw new CliException(ExitCodes.USAGE, "the job's copy buffers need up to " + Sizes.format(needed)
                    + " (" + MirrorJob.DEFAULT_THREADS + " copies in flight of up to " + maxCopyName + " "
                    + Sizes.format(options.maxCopyBytes()) + ") but this JVM has " + Sizes.format(available)
                    + " of direct memory free" + limit + "; lower " + maxCopyName);
        }
    }

    /**
     * Creates the job from {@code source} to {@code target} (wrapped in the injected faults, if any)
     * in state CREATED, with its {@link JobRun}. Nothing is copied until the caller starts it.
     */
    JobRun launch(BlockDevice source, BlockDevice target, boolean targetReadsAsZeroes) {
        return launch(source, target, targetReadsAsZeroes, null);
    }

    /** {@link #launch(BlockDevice, BlockDevice, boolean)} with a persistent write-intent bitmap (or null). */
    JobRun launch(BlockDevice source, BlockDevice target, boolean targetReadsAsZeroes, ResumeBitmap bitmap) {
        JobOptions.Injected injected = injection != null ? injection.wrap(target) : null;
        BlockDevice jobTarget = injected != null ? injected.device() : target;
        MirrorJob job = MirrorJob.create(source, jobTarget, options.toBuilder().targetIsZero(targetReadsAsZeroes)
                .autoFinalize(autoFinalize).bitmap(bitmap != null ? bitmap.store() : null).build());
        JobRun run = new JobRun(job, jobId, injected != null ? injected.disarm() : () -> { }, autoDismiss);
        if (bitmap != null) {
            run.bitmapFile(bitmap.file());
        }
        return run;
    }
}
