package dev.handoff.cli;

import dev.handoff.device.DeviceException;
import dev.handoff.device.FileDevice;
import dev.handoff.ownership.OwnedImage;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code handoff demo}: the whole story on an embedded default, with every claim checked.
 *
 * <ol>
 *   <li>A raw source image (default 256 MiB, a quarter left as holes) in a temporary directory,
 *       held ACTIVE through the ownership layer; a new target image, also held ACTIVE.</li>
 *   <li>A synthetic guest (several threads writing random, unaligned ranges with self-identifying
 *       content) writes through the job's guest device while the job copies, reaches READY, keeps
 *       writing in phase 2, and goes on writing while the job completes (pivot).</li>
 *   <li>Checks: the target equals the source as it was at the pivot (byte for byte, except ranges
 *       written after the pivot, which only the target has), and every acknowledged write is on
 *       the target (the guest's shadow copy).</li>
 *   <li>Handoff of the target to a child JVM ({@code handoff owner accept}): the epoch goes up by
 *       one; this process is refused a write, an activation and an abort while the child holds
 *       the image, and is fenced by the epoch once the child has let go.</li>
 * </ol>
 * Exits 0 if every check passed, 1 with the reason otherwise.
 *
 * <p>This class is the options, the images and their clean-up; steps 1 and 2 are
 * {@link DemoMirror} (with {@link ImageDiff} for the comparison), step 3 is {@link DemoHandoff}
 * (with {@link ChildHolder} for the second process), and {@link DemoReport} keeps the table of
 * checks.
 */
@Command(name = "demo", sortOptions = false, usageHelpWidth = 100,
        description = {"Mirror a live image while a synthetic guest writes to it, pivot, verify every acknowledged"
                + " write, then hand the image over to a second process with the ownership protocol. No arguments"
                + " needed; exits 0 only if every check passed."},
        exitCodeListHeading = "%nExit codes:%n", exitCodeList = {
            " 0:every check passed",
            " 1:a check failed or the job failed (the reason is printed)",
            " 2:usage error"})
final class DemoCommand implements Callable<Integer> {
    private static final String PARENT = "demo-parent";
    private static final String CHILD = "demo-child";
    private static final int BLOCK = 1 << 20;

    @Option(names = "--size", paramLabel = "SIZE", defaultValue = "256M", converter = Sizes.Converter.class,
            description = "Image size (default: ${DEFAULT-VALUE}).")
    long size;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "4", description = "Guest writer threads (default: ${DEFAULT-VALUE}).")
    int threads;

    @Option(names = "--max-write", paramLabel = "SIZE", defaultValue = "256K", converter = Sizes.Converter.class,
            description = "Largest guest write (default: ${DEFAULT-VALUE}).")
    long maxWrite;

    @Option(names = "--guest-rate", paramLabel = "RATE", defaultValue = "32M", converter = Sizes.Converter.class,
            description = "The guest's write rate over all its threads, bytes per second; 0 = as fast as it can"
                    + " (default: ${DEFAULT-VALUE}/s).")
    long guestRate;

    @Option(names = "--phase2", paramLabel = "SECONDS", defaultValue = "0.5",
            description = "How long the guest keeps writing while READY before the job completes (default: ${DEFAULT-VALUE}).")
    double phase2;

    @Option(names = "--converge-timeout", paramLabel = "SECONDS", defaultValue = "20",
            description = "If not READY by then, switch to write-blocking, which converges whatever the guest does"
                    + " (default: ${DEFAULT-VALUE}).")
    double convergeTimeout;

    @Option(names = "--dir", paramLabel = "DIR", description = "Where to put the images (default: a new directory"
            + " in /dev/shm if it has room, else in the temporary directory).")
    Path dir;

    @Option(names = "--keep", description = "Keep the images afterwards (try `handoff owner status DIR/target.img`).")
    boolean keep;

    @Option(names = "--no-handoff", description = "Skip the handoff to a second process.")
    boolean noHandoff;

    @Option(names = "--progress", paramLabel = "MODE", defaultValue = "auto", converter = ProgressView.ModeConverter.class,
            description = "auto, bar, lines or none (default: bar on a terminal, a line a second otherwise).")
    ProgressView.Mode progress;

    @Option(names = "--x-lose-target-writes", hidden = true, paramLabel = "N",
            description = "Broken variant for tests: the target silently drops N copy writes; the checks must fail.")
    long loseTargetWrites;

    @Mixin
    JobOptions jobOptions;

    private final PrintStream out = System.out;
    private final DemoReport report = new DemoReport(out);
    private final List<OwnedImage> images = new ArrayList<>(); // guarded by this
    private boolean cleanedUp; // guarded by this

    @Override
    public Integer call() throws Exception {
        if (size < BLOCK || size % 512 != 0) {
            throw new CliException(ExitCodes.USAGE, "--size must be at least 1M and a multiple of 512, got " + size);
        }
        if (threads < 1 || threads > 64) {
            throw new CliException(ExitCodes.USAGE, "--threads must be between 1 and 64, got " + threads);
        }
        if (maxWrite < 1 || maxWrite > size / threads) {
            throw new CliException(ExitCodes.USAGE, "--max-write must be between 1 and size/threads, got " + maxWrite);
        }
        if (phase2 < 0 || convergeTimeout <= 0) {
            throw new CliException(ExitCodes.USAGE, "--phase2 must be >= 0 and --converge-timeout > 0");
        }
        jobOptions.validate();
        if (jobOptions.sync == dev.handoff.mirror.SyncMode.NONE) {
            throw new CliException(ExitCodes.USAGE, "--sync none would leave the source's data uncopied; the demo"
                    + " checks that the target equals the source, so it needs --sync full");
        }
        jobOptions.requireResumable(false, "the demo has no control socket to resume it: use ignore (retry the"
                + " failed chunk) or report (fail)");
        JobLauncher launcher = JobLauncher.of(jobOptions, "mirror0");
        Path work = dir != null ? Files.createDirectories(dir) : workDirectory(size);
        Path sourcePath = work.resolve("source.img");
        Path targetPath = work.resolve("target.img");
        for (Path p : List.of(sourcePath, targetPath)) {
            if (Files.exists(p)) {
                throw new CliException(ExitCodes.BAD_IMAGE, p + " exists; choose an empty --dir");
            }
        }
        long t0 = System.nanoTime();
        out.println("handoff demo: mirror a live " + Sizes.format(size) + " image while " + threads
                + " guest threads write to it, pivot, verify, then hand it over to another process");
        out.println("images in " + work + (keep ? " (kept)" : " (removed at the end; --keep keeps them)"));
        Thread onInterrupt = new Thread(() -> {
            System.err.println("handoff demo: interrupted" + (keep ? "; images kept in " + work : ""));
            cleanUp(work);
        }, "handoff-demo-interrupt");
        Runtime.getRuntime().addShutdownHook(onInterrupt);
        try {
            FileDevice.create(sourcePath, size).close();
            FileDevice.create(targetPath, size).close();
            OwnedImage source = OwnedImage.openFile(sourcePath, PARENT, OwnedImage.State.ACTIVE);
            OwnedImage target = OwnedImage.openFile(targetPath, PARENT, OwnedImage.State.ACTIVE);
            synchronized (this) {
                images.add(source);
                images.add(target);
            }
            long data = DemoMirror.fill(source, jobOptions.seed);
            out.println("source.img: " + Sizes.format(size) + ", " + Sizes.format(data) + " of data, the rest holes;"
                    + " both images ACTIVE (epoch " + source.epoch() + ", owner " + PARENT + ")");

            DemoMirror mirror = new DemoMirror(out, report,
                    new DemoMirror.Guest(threads, maxWrite, guestRate, jobOptions.seed),
                    new DemoMirror.Timing(phase2, convergeTimeout), progress, loseTargetWrites);
            boolean mirrored = mirror.run(source, target, launcher);
            if (mirrored && !noHandoff) {
                new DemoHandoff(out, report, CHILD, work + File.separator).run(target, targetPath);
            }
        } finally {
            cleanUp(work);
            try {
                Runtime.getRuntime().removeShutdownHook(onInterrupt);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running; cleanUp is idempotent
            }
        }
        report.print((System.nanoTime() - t0) / 1e9);
        return report.passed() ? ExitCodes.OK : ExitCodes.FAILED;
    }

    /**
     * A new directory for the images: in /dev/shm when it has room for both (a memory file system:
     * the demo's flushes then cost nothing, and its time shows the protocol, not the disk), else in
     * the JVM's temporary directory.
     */
    private static Path workDirectory(long size) throws IOException {
        Path shm = Path.of("/dev/shm");
        try {
            if (Files.isDirectory(shm) && Files.isWritable(shm)
                    && Files.getFileStore(shm).getUsableSpace() > 3 * size + (64L << 20)) {
                return Files.createTempDirectory(shm, "handoff-demo-");
            }
        } catch (IOException e) {
            // fall back
        }
        return Files.createTempDirectory("handoff-demo-");
    }

    /** Closes the images (ACTIVE ones flush and mark their record clean) and removes them unless --keep. Once. */
    private synchronized void cleanUp(Path work) {
        if (cleanedUp) {
            return;
        }
        cleanedUp = true;
        images.forEach(DemoCommand::closeQuietly);
        if (!keep) {
            deleteTree(work, dir == null);
        }
    }

    private static void closeQuietly(OwnedImage image) {
        if (image == null) {
            return;
        }
        try {
            image.close();
        } catch (DeviceException e) {
            System.err.println("handoff demo: closing " + image + ": " + e.getMessage());
        }
    }

    private static void deleteTree(Path work, boolean includingDir) {
        try (Stream<Path> files = Files.list(work)) {
            for (Path p : files.toList()) {
                String n = p.getFileName().toString();
                if (n.startsWith("source.img") || n.startsWith("target.img")) {
                    Files.deleteIfExists(p);
                }
            }
            if (includingDir) {
                Files.deleteIfExists(work);
            }
        } catch (IOException e) {
            System.err.println("handoff demo: could not remove " + work + ": " + e.getMessage());
        }
    }
}
