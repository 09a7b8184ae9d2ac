package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.FileDevice;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorEvent;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import dev.handoff.ownership.HandoffToken;
import dev.handoff.ownership.ImageFencedException;
import dev.handoff.ownership.ImageInactiveException;
import dev.handoff.ownership.OwnedImage;
import dev.handoff.ownership.OwnershipRecord;
import dev.handoff.workload.SyntheticGuest;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.Writer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
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
    private final List<String[]> summary = new ArrayList<>();
    private final List<String> failures = new ArrayList<>();
    private final List<OwnedImage> images = new ArrayList<>(); // guarded by this
    private boolean cleanedUp; // guarded by this
    private String workPrefix = "";

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
        workPrefix = work + File.separator;
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
            long data = fill(source, jobOptions.seed);
            out.println("source.img: " + Sizes.format(size) + ", " + Sizes.format(data) + " of data, the rest holes;"
                    + " both images ACTIVE (epoch " + source.epoch() + ", owner " + PARENT + ")");

            boolean mirrored = mirror(source, target, launcher);
            if (mirrored && !noHandoff) {
                handoff(target, targetPath);
            }
        } finally {
            cleanUp(work);
            try {
                Runtime.getRuntime().removeShutdownHook(onInterrupt);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running; cleanUp is idempotent
            }
        }
        printSummary((System.nanoTime() - t0) / 1e9);
        return failures.isEmpty() ? ExitCodes.OK : ExitCodes.FAILED;
    }

    /* ---- 1 + 2: mirror under a live guest, then verify ---- */

    private boolean mirror(OwnedImage source, OwnedImage target, JobLauncher launcher) throws Exception {
        JobOptions.Injection injection = launcher.injection();
        BlockDevice lossy = loseTargetWrites > 0 ? new LosingDevice(target, 8, loseTargetWrites) : target;
        JobRun run = launcher.launch(source, lossy, true);
        MirrorJob job = run.job();
        MirrorOptions options = job.options();
        if (injection != null) {
            // Faults are for the copy; once the job drains for the pivot the guest writes the target.
            job.addListener(e -> {
                if (e instanceof MirrorEvent.StateChanged s
                        && (s.to() == JobState.COMPLETING || s.to() == JobState.CANCELLING || s.to().isConcluded())) {
                    run.disarmFaults();
                }
            });
        }
        long t0 = System.nanoTime();
        ProgressView view = new ProgressView(job::progress, out, progress, t0);
        run.addSink((e, qmp) -> {
            String line = EventLines.describe(e);
            if (line != null) {
                view.println(view.elapsed() + " " + line);
            }
        });
        GuestView guestDisk = new GuestView(job.guestDevice(), source, guestRate);
        SyntheticGuest guest = new SyntheticGuest(guestDisk, threads, jobOptions.seed, (int) maxWrite);
        out.println();
        out.println("1. mirror source.img -> target.img (granularity " + Sizes.format(options.granularity()) + ", "
                + Choices.name(options.copyMode()) + ", buf-size " + Sizes.format(options.bufSize())
                + (options.speed() > 0 ? ", speed " + Sizes.format(options.speed()) + "/s" : "")
                + ", on-target-error " + Choices.name(options.onTargetError())
                + (injection != null ? ", injecting " + injection : "") + ")");
        out.println("   guest: " + threads + " writer threads, random unaligned writes of up to " + Sizes.format(maxWrite)
                + (guestRate > 0 ? ", " + Sizes.format(guestRate) + "/s in all" : ", as fast as they can"));
        guest.start(Long.MAX_VALUE);
        view.start();
        run.start();

        boolean ready = job.awaitReady(seconds(convergeTimeout));
        if (!ready && !job.state().isConcluded() && job.progress().copyMode() == CopyMode.BACKGROUND) {
            view.println(view.elapsed() + " not READY after " + convergeTimeout + " s: the guest writes faster than the"
                    + " copier; switching to write-blocking (block-job-change copy-mode=write-blocking)");
            try {
                job.setCopyMode(CopyMode.WRITE_BLOCKING);
            } catch (IllegalStateException raced) {
                // concluded meanwhile
            }
            ready = job.awaitReady(seconds(convergeTimeout));
        }
        long readyAt = System.nanoTime();
        if (ready) {
            Thread.sleep((long) (phase2 * 1000));
            try {
                job.complete();
            } catch (IllegalStateException e) {
                view.println(view.elapsed() + " cannot complete: " + e.getMessage());
            }
        } else if (!job.state().isConcluded()) {
            job.cancel(true);
        }
        JobState end = job.awaitConclusion(Duration.ofMinutes(10));
        long doneAt = System.nanoTime();
        guest.stop();
        run.awaitDelivered(Duration.ofSeconds(5));
        view.close();

        row("READY reached", ready, ready ? String.format(Locale.ROOT, "yes, after %.2f s", (readyAt - t0) / 1e9)
                : "no" + (job.failureReason() != null ? ": " + job.failureReason() : ""));
        boolean completed = end == JobState.COMPLETED && job.guestDevice().currentDevice() != source;
        row("COMPLETED with pivot", completed, completed
                ? String.format(Locale.ROOT, "yes, after %.2f s", (doneAt - t0) / 1e9)
                : "no: the job ended " + end + (job.failureReason() != null ? ": " + job.failureReason() : ""));
        long errors = job.progress().errorCount();
        if (errors > 0 || injection != null) {
            summary.add(new String[] {"I/O errors met by the job", errors + " (policy " + Choices.name(options.onTargetError())
                    + " on the target)", "ok"});
        }
        if (!guest.failures().isEmpty()) {
            row("guest writes all succeeded", false, "no: " + guest.failures().get(0));
        }
        if (!completed) {
            return false;
        }

        out.println();
        out.println("2. verify");
        List<long[]> afterPivot = guestDisk.writtenAfterPivot();
        long diff = firstDifference(source, target, afterPivot);
        row("target = source at the pivot", diff < 0, diff < 0
                ? "yes, byte for byte (" + afterPivot.size() + " writes after the pivot excluded: only the target has them)"
                : "NO: first difference at byte " + diff);
        out.println("   target = source at the pivot ........ " + (diff < 0 ? "yes" : "NO, first difference at byte " + diff));
        String missing = guest.verify(target);
        row("acknowledged writes on the target", missing == null, missing == null
                ? "all " + guest.writes() + " (" + Sizes.format(guest.bytesWritten()) + "), before, during and after the pivot"
                : "NO: " + missing);
        out.println("   every acknowledged write on target .. " + (missing == null ? "yes (" + guest.writes() + " writes)"
                : "NO: " + missing));
        return diff < 0 && missing == null;
    }

    /** Fills 3 of every 4 MiB with seeded data and leaves the rest as holes; returns the bytes written. */
    private long fill(OwnedImage image, long seed) throws DeviceException {
        byte[] pattern = new byte[BLOCK];
        new SplittableRandom(seed).nextBytes(pattern);
        ByteBuffer buf = ByteBuffer.wrap(pattern);
        long written = 0;
        for (long off = 0, block = 0; off < size; off += BLOCK, block++) {
            if (block % 4 == 3) {
                continue;
            }
            buf.clear().limit((int) Math.min(BLOCK, size - off));
            buf.putLong(0, block); // each block differs
            image.write(off, buf);
            written += buf.limit();
        }
        image.flush();
        return written;
    }

    /** The first offset where {@code a} and {@code b} differ outside {@code excluded}, or -1. */
    static long firstDifference(BlockDevice a, BlockDevice b, List<long[]> excluded) throws DeviceException {
        List<long[]> ranges = merge(excluded);
        ByteBuffer x = ByteBuffer.allocateDirect(BLOCK);
        ByteBuffer y = ByteBuffer.allocateDirect(BLOCK);
        int r = 0;
        for (long off = 0; off < a.size(); off += BLOCK) {
            int n = (int) Math.min(BLOCK, a.size() - off);
            x.clear().limit(n);
            y.clear().limit(n);
            a.read(off, x);
            b.read(off, y);
            long end = off + n;
            while (r < ranges.size() && ranges.get(r)[1] <= off) {
                r++;
            }
            long pos = off;
            for (int k = r; k < ranges.size() && ranges.get(k)[0] < end && pos < end; k++) {
                long m = mismatch(x, y, off, pos, Math.min(end, ranges.get(k)[0]));
                if (m >= 0) {
                    return m;
                }
                pos = Math.max(pos, ranges.get(k)[1]);
            }
            long m = mismatch(x, y, off, pos, end);
            if (m >= 0) {
                return m;
            }
        }
        return -1;
    }

    /** The first offset in [from, to) where the blocks read at {@code base} differ, or -1. */
    private static long mismatch(ByteBuffer x, ByteBuffer y, long base, long from, long to) {
        if (to <= from) {
            return -1;
        }
        int a = (int) (from - base);
        int len = (int) (to - from);
        int m = x.slice(a, len).mismatch(y.slice(a, len));
        return m < 0 ? -1 : from + m;
    }

    /** Sorted, merged [start, end) ranges from {offset, length} pairs. */
    static List<long[]> merge(List<long[]> ranges) {
        List<long[]> sorted = ranges.stream().map(r -> new long[] {r[0], r[0] + r[1]})
                .sorted(Comparator.comparingLong(r -> r[0])).collect(Collectors.toList());
        List<long[]> merged = new ArrayList<>();
        for (long[] r : sorted) {
            if (!merged.isEmpty() && r[0] <= merged.get(merged.size() - 1)[1]) {
                long[] last = merged.get(merged.size() - 1);
                last[1] = Math.max(last[1], r[1]);
            } else {
                merged.add(r);
            }
        }
        return merged;
    }

    /* ---- 3: handoff to a child JVM ---- */

    private void handoff(OwnedImage target, Path targetPath) throws Exception {
        out.println();
        out.println("3. hand target.img over to another process (the guest is stopped; a live migration would pause it)");
        long epochBefore = target.epoch();
        HandoffToken token = target.prepareHandoff();
        out.println("   this process: prepareHandoff ...... " + target.state() + ", token " + token.epoch() + ":"
                + token.ownerId() + " (drained, flushed, record clean, lock released)");
        Child child;
        try {
            child = Child.start(targetPath, token);
        } catch (IOException | IllegalStateException e) {
            row("handoff to a second process", false, "NO: " + e.getMessage());
            return;
        }
        try (child) {
            String accepted = child.next();
            out.println("   child pid " + child.pid() + ": owner accept . " + shorten(accepted));
            long childEpoch = parseEpoch(accepted);
            row("handoff epoch", childEpoch == epochBefore + 1 && accepted.startsWith("ok ACTIVE"),
                    epochBefore + " -> " + childEpoch + " (child pid " + child.pid() + " ACTIVE as " + CHILD + ")");

            List<String> refusedWhileHeld = new ArrayList<>();
            expectRefused("write", refusedWhileHeld, ImageInactiveException.class, () -> {
                ByteBuffer b = ByteBuffer.allocate(4096);
                target.write(0, b);
            });
            expectRefused("activate", refusedWhileHeld, ImageInactiveException.class, target::activate);
            expectRefused("abortHandoff", refusedWhileHeld, ImageInactiveException.class, target::abortHandoff);
            String wrote = child.send("write 0 4K");
            out.println("   child: write 0 4K ................. " + wrote);
            String closed = child.send("quit");
            out.println("   child: quit ....................... " + closed);
            int childExit = child.waitFor();
            if (childExit != 0 || !wrote.startsWith("ok") || !closed.startsWith("ok closed")) {
                row("child wrote and let go cleanly", false, "NO: exit " + childExit + ", " + wrote + ", " + closed);
            }
            List<String> fenced = new ArrayList<>();
            expectRefused("abortHandoff", fenced, ImageFencedException.class, target::abortHandoff);
            boolean allRefused = refusedWhileHeld.size() == 3 && fenced.size() == 1;
            row("this process refused after the handoff", allRefused, allRefused
                    ? "yes: write, activate, abort while the child held it; abort fenced by the epoch after"
                    : "NO: " + String.join(", ", refusedWhileHeld) + " / " + String.join(", ", fenced));
            OwnershipRecord record = target.readRecord();
            boolean recordOk = record.epoch() == epochBefore + 1 && record.ownerId().equals(CHILD) && record.clean();
            out.println("   record after the child let go ..... epoch " + record.epoch() + ", owner " + record.ownerId()
                    + ", " + (record.clean() ? "clean" : "unclean"));
            row("ownership record", recordOk, "epoch " + record.epoch() + ", owner " + record.ownerId() + ", "
                    + (record.clean() ? "clean" : "unclean"));
        }
    }

    private interface Step {
        void run() throws Exception;
    }

    /** Runs {@code step}, which must fail with {@code expected}; prints the outcome. */
    private void expectRefused(String what, List<String> refusals, Class<? extends Exception> expected, Step step) {
        String outcome;
        try {
            step.run();
            outcome = "NOT refused: it succeeded";
        } catch (Exception e) {
            if (expected.isInstance(e)) {
                refusals.add(what);
                String kind = e instanceof ImageFencedException ? "fenced"
                        : ImageHolder.isLockRefusal((ImageInactiveException) e) ? "busy" : "inactive";
                outcome = "refused (" + kind + "): " + shorten(e.getMessage());
            } else {
                outcome = "failed unexpectedly: " + e;
            }
        }
        out.println("   this process: " + String.format(Locale.ROOT, "%-21s", what + " ") + outcome);
    }

    /** Messages name images by their file name: the directory was printed once at the start. */
    private String shorten(String message) {
        return String.valueOf(message).replace(workPrefix, "");
    }

    private static long parseEpoch(String line) {
        for (String w : line.split("\\s+")) {
            if (w.startsWith("epoch=")) {
                return Long.parseLong(w.substring(6));
            }
        }
        return -1;
    }

    /** The second process: `handoff owner accept` in a child JVM, driven through its stdin and stdout. */
    private static final class Child implements AutoCloseable {
        private static final long TIMEOUT_SECONDS = 30;
        private final Process process;
        private final Writer stdin;
        private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();

        private Child(Process process) {
            this.process = process;
            this.stdin = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
            Thread reader = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                    for (String line; (line = r.readLine()) != null; ) {
                        lines.add(line);
                    }
                } catch (IOException ignored) {
                    // the process ended
                }
                lines.add("EOF");
            }, "demo-child-stdout");
            reader.setDaemon(true);
            reader.start();
        }

        static Child start(Path image, HandoffToken token) throws IOException {
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            String classpath = Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
                    .map(p -> Path.of(p).toAbsolutePath().toString()).collect(Collectors.joining(File.pathSeparator));
            List<String> command = List.of(java, "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-Xmx64m", "-cp", classpath,
                    Main.class.getName(), "owner", "accept", image.toString(), "--token",
                    token.epoch() + ":" + token.ownerId(), "--owner", CHILD);
            return new Child(new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start());
        }

        long pid() {
            return process.pid();
        }

        String next() throws InterruptedException {
            String line = lines.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS);
            if (line == null) {
                throw new IllegalStateException("the child process did not answer within " + TIMEOUT_SECONDS + " s");
            }
            return line;
        }

        String send(String command) throws IOException, InterruptedException {
            stdin.write(command + "\n");
            stdin.flush();
            return next();
        }

        int waitFor() throws InterruptedException {
            if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                return -1;
            }
            return process.exitValue();
        }

        @Override
        public void close() {
            if (process.isAlive()) {
                process.destroyForcibly();
            }
        }
    }

    /* ---- reporting and cleanup ---- */

    private void row(String check, boolean ok, String result) {
        summary.add(new String[] {check, result, ok ? "ok" : "FAILED"});
        if (!ok) {
            failures.add(check + ": " + result);
        }
    }

    private void printSummary(double seconds) {
        out.println();
        int w = summary.stream().mapToInt(r -> r[0].length()).max().orElse(10);
        out.println(String.format(Locale.ROOT, "%-" + w + "s  %-6s %s", "check", "", "result"));
        for (String[] r : summary) {
            out.println(String.format(Locale.ROOT, "%-" + w + "s  %-6s %s", r[0], r[2], r[1]));
        }
        out.println();
        if (failures.isEmpty()) {
            out.println(String.format(Locale.ROOT, "demo passed in %.1f s", seconds));
        } else {
            out.flush();
            System.err.println("handoff demo: FAILED: " + failures.get(0));
        }
        out.flush();
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

    private static Duration seconds(double s) {
        return Duration.ofMillis((long) (s * 1000));
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
