package dev.handoff.bench.compare;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.bench.compare.GuestWriter.Window;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.ToDoubleFunction;
import java.util.stream.Stream;

/**
 * Handoff side by side with QEMU's mirror job (qemu-storage-daemon, {@code blockdev-mirror} over
 * QMP) and with {@code cp} + {@code sync}, on one random raw image in the page cache, in one run.
 *
 * <h2>What runs</h2>
 * <ol>
 *   <li><b>Bulk copy, no guest</b>, {@code --rounds} times, alternating the contenders in a fixed
 *       order each round (A B A B ...): {@code cp}+{@code sync}; QEMU and {@code handoff mirror} in
 *       background and write-blocking mode, same granularity and buf-size. Times come from each
 *       job's own QMP events (JOB_STATUS_CHANGE running → BLOCK_JOB_READY → BLOCK_JOB_COMPLETED),
 *       so process start-up is not in them; the end-to-end column has it.</li>
 *   <li><b>Guest writer through each one's NBD export</b> on a unix socket, {@code --nbd-rounds}
 *       times, per copy mode and write size (4 KiB, 64 KiB), Handoff then QEMU each round: the
 *       same {@link GuestWriter} (queue depth 1, random aligned writes) measures IOPS and
 *       p50/p99 latency alone (no job), during the bulk copy, after READY, and while completing;
 *       plus the time to READY and to COMPLETED under that load.</li>
 *   <li><b>fio as the guest</b> ({@link FioRuns}), {@code --fio-rounds} times: the same fio job file
 *       ({@code bench/fio/guest.fio}, fio's nbd engine) through each export, 4 KiB random writes
 *       at queue depth 1 and 16 and a 70/30 read/write mix at 16, alone, during the bulk copy and
 *       after READY, both jobs started by the same QMP commands; the target a file or, with
 *       {@code --fio-target loop}, a loop device over it.</li>
 *   <li><b>The cost of TLS</b> ({@link TlsCost}), {@code --tls-rounds} times: fio (libnbd) writes
 *       4 KiB at random at queue depth 1 and 16 through each export over TCP on loopback, with
 *       TLS 1.3 and without, both settings every round in alternating order.</li>
 * </ol>
 * Every target is checked with {@code qemu-img compare}; with a guest writer, against the source
 * with every acknowledged write replayed in order (which is what the target must hold after a
 * pivot).
 *
 * <h2>How the copy starts under load</h2>
 * QEMU: the writer runs against the export ({@code alone} window), then {@code blockdev-mirror}
 * starts the job. Handoff: {@code handoff serve --mirror-to} starts its job at once, so it is
 * started with {@code --speed 1} and paused over QMP immediately (one copy of at most 1 MiB may
 * leave first); the writer warms up; then {@code block-job-set-speed 0} and
 * {@code block-job-resume} start the bulk copy. Handoff's {@code alone} window is a separate
 * {@code handoff serve} without a job, so its filter is not in the baseline.
 *
 * <p>Run it with {@code bench/compare.sh}, which builds what it needs.
 */
public final class Compare {
    private static final String[] MODES = {"background", "write-blocking"};
    private static final String JOB = "mirror0";

    /* ---- Settings ---- */

    private long size = 1L << 30;
    private int rounds = 5;
    private int nbdRounds = 3;
    private long granularity = 64 << 10;
    private long bufSize = 16 << 20;
    private int[] writeSizes = {4 << 10, 64 << 10};
    private double warmSeconds = 1.0;
    private double aloneSeconds = 2.0;
    private double afterSeconds = 2.0;
    private double tailSeconds = 0.5;
    private boolean runMemory = true;
    private boolean runBulk = true;
    private boolean runNbd = true;
    private boolean runTls = true;
    private boolean runFio = true;
    private int fioRounds = 3;
    private double[] fioWindows = {5, 3, 3, 20};
    private List<String> fioWorkloads = FioRuns.DEFAULT_WORKLOADS;
    private List<String> fioModes = FioRuns.DEFAULT_MODES;
    private String fioTarget = "file";
    private Path fioJob;
    private boolean spinners = true;
    private Path jfrDir;
    /** Extra arguments of every {@code handoff serve} (--serve-args), e.g. --no-inline-requests. */
    private List<String> serveArgs = List.of();
    private FioRuns fio;
    private int tlsRounds = 3;
    private int tlsSeconds = 5;
    private TlsCost tlsCost;
    private InMemory.Result memory;
    private Path handoffJar;
    private List<String> java = new ArrayList<>();
    private Path workRoot;
    private Path report;

    /* ---- State ---- */

    private Path work;
    private Path src;
    private PrintStream out;
    private int verifyFailures;
    private int failures;
    private final List<BulkRun> bulk = new ArrayList<>();
    private final List<NbdRun> nbd = new ArrayList<>();

    record BulkRun(String contender, double readyS, double flushedS, double completedS, double wallS, double cpuS,
            boolean verified) {
    }

    record NbdRun(String system, String mode, int writeSize, Window alone, Window during, Window after, Window completing,
            double readyS, double completeS, boolean verified) {
        double keptDuring() {
            return during.iops() / alone.iops();
        }

        double keptAfter() {
            return after.iops() / alone.iops();
        }
    }

    public static void main(String[] args) throws Exception {
        Compare c = new Compare();
        try {
            c.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("compare: " + e.getMessage());
            System.err.println(USAGE);
            System.exit(2);
        }
        System.exit(c.run());
    }

    /**
     * What {@code ./handoff} passes to the JVM as root so that the copier's lowest priority after
     * READY takes effect on Linux (docs/DESIGN.md §2.3): the default of {@code --java-opts} as root.
     * The launcher's other options (class-data archive, C1 only, heap and collector) tune start-up
     * and memory, and stay out of the comparison's plain {@code java -jar} unless given there.
     */
    static final String PRIORITY_OPTS = "-XX:ThreadPriorityPolicy=1 -XX:JavaPriority1_To_OSPriority=19"
            + " -XX:JavaPriority6_To_OSPriority=0 -XX:JavaPriority7_To_OSPriority=0 -XX:JavaPriority8_To_OSPriority=0"
            + " -XX:JavaPriority9_To_OSPriority=0 -XX:JavaPriority10_To_OSPriority=0";

    private static final String USAGE = String.join("\n",
            "usage: compare --handoff-jar JAR [--size BYTES] [--rounds N] [--nbd-rounds N] [--work DIR]",
            "               [--report FILE] [--only memory,bulk,nbd,fio,tls] [--write-sizes 4096,65536] [--java-opts 'OPTS']",
            "               [--fio-job FILE] [--fio-rounds N] [--fio-windows WARM,ALONE,AFTER,LIMIT] [--spinners on|off]",
            "               [--fio-workloads randwrite-qd1,randwrite-qd16,randrw70-qd16,randwrite-qd1-2k] [--jfr-dir DIR]",
            "               [--serve-args 'ARGS']",
            "               [--fio-modes background,write-blocking,bg-then-wb] [--fio-target file|loop]",
            "               [--windows WARM,ALONE,AFTER] [--granularity BYTES] [--buf-size BYTES]",
            "               [--tls-rounds N] [--tls-seconds S]",
            "--java-opts replaces the JVM options of the handoff processes (--java-opts '' for none); without it they",
            "run as ./handoff would in that respect: as root with " + PRIORITY_OPTS,
            "(the copier's lowest priority after READY takes effect), else with none.");

    /** Whether this process's effective uid is 0, as the launcher's {@code id -u} check. */
    static boolean runsAsRoot() {
        try {
            return ((Integer) Files.getAttribute(Paths.get("/proc/self"), "unix:uid")) == 0;
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return "root".equals(System.getProperty("user.name"));
        }
    }

    private void parse(String[] args) {
        String javaOpts = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException("missing value after " + a);
            }
            String v = args[++i];
            switch (a) {
                case "--handoff-jar" -> handoffJar = Paths.get(v);
                case "--size" -> size = Long.parseLong(v);
                case "--rounds" -> rounds = Integer.parseInt(v);
                case "--nbd-rounds" -> nbdRounds = Integer.parseInt(v);
                case "--tls-rounds" -> tlsRounds = Integer.parseInt(v);
                case "--tls-seconds" -> tlsSeconds = Integer.parseInt(v);
                case "--fio-rounds" -> fioRounds = Integer.parseInt(v);
                case "--fio-job" -> fioJob = Paths.get(v);
                case "--fio-workloads" -> {
                    fioWorkloads = List.of(v.split(","));
                    if (!FioRuns.WORKLOADS.containsAll(fioWorkloads)) {
                        throw new IllegalArgumentException("--fio-workloads takes a list of " + FioRuns.WORKLOADS);
                    }
                }
                case "--fio-modes" -> {
                    fioModes = List.of(v.split(","));
                    if (!FioRuns.MODES.containsAll(fioModes)) {
                        throw new IllegalArgumentException("--fio-modes takes a list of " + FioRuns.MODES);
                    }
                }
                case "--fio-target" -> {
                    if (!FioRuns.TARGETS.contains(v)) {
                        throw new IllegalArgumentException("--fio-target takes file or loop");
                    }
                    fioTarget = v;
                }
                case "--fio-windows" -> {
                    fioWindows = Stream.of(v.split(",")).mapToDouble(Double::parseDouble).toArray();
                    if (fioWindows.length != 4) {
                        throw new IllegalArgumentException("--fio-windows takes WARM,ALONE,AFTER,LIMIT seconds");
                    }
                }
                case "--jfr-dir" -> jfrDir = Paths.get(v).toAbsolutePath();
                case "--serve-args" -> serveArgs = v.isBlank() ? List.of() : List.of(v.trim().split("\\s+"));
                case "--spinners" -> {
                    if (!v.equals("on") && !v.equals("off")) {
                        throw new IllegalArgumentException("--spinners takes on or off");
                    }
                    spinners = v.equals("on");
                }
                case "--work" -> workRoot = Paths.get(v);
                case "--report" -> report = Paths.get(v);
                case "--granularity" -> granularity = Long.parseLong(v);
                case "--buf-size" -> bufSize = Long.parseLong(v);
                case "--java-opts" -> javaOpts = v;
                case "--write-sizes" -> writeSizes = Stream.of(v.split(",")).mapToInt(Integer::parseInt).toArray();
                case "--windows" -> {
                    String[] w = v.split(",");
                    warmSeconds = Double.parseDouble(w[0]);
                    aloneSeconds = Double.parseDouble(w[1]);
                    afterSeconds = Double.parseDouble(w[2]);
                }
                case "--only" -> {
                    List<String> parts = List.of(v.split(","));
                    runMemory = parts.contains("memory");
                    runBulk = parts.contains("bulk");
                    runNbd = parts.contains("nbd");
                    runTls = parts.contains("tls");
                    runFio = parts.contains("fio");
                    if (!parts.stream().allMatch(x -> List.of("memory", "bulk", "nbd", "tls", "fio").contains(x))) {
                        throw new IllegalArgumentException("--only takes a list of memory, bulk, nbd, tls, fio");
                    }
                }
                default -> throw new IllegalArgumentException("unknown option " + a);
            }
        }
        if (handoffJar == null || !Files.isRegularFile(handoffJar)) {
            throw new IllegalArgumentException("--handoff-jar must name the built cli/target/handoff.jar");
        }
        if (runFio && (fioJob == null || !Files.isRegularFile(fioJob))) {
            throw new IllegalArgumentException("the fio part needs --fio-job bench/fio/guest.fio");
        }
        if (runFio && fioTarget.equals("loop")) {
            String why = LoopDevice.unavailableReason();
            if (why != null) {
                throw new IllegalArgumentException("--fio-target loop attaches each target as a loop device, but " + why);
            }
        }
        if (jfrDir != null && !Files.isDirectory(jfrDir)) {
            throw new IllegalArgumentException("--jfr-dir must name an existing directory");
        }
        if (rounds < 1 || nbdRounds < 1 || fioRounds < 1 || tlsRounds < 1 || tlsSeconds < 1 || size < (64L << 20)
                || size % (1 << 20) != 0) {
            throw new IllegalArgumentException("rounds must be >= 1 and size a multiple of 1 MiB, at least 64 MiB");
        }
        if (javaOpts == null) {
            javaOpts = runsAsRoot() ? PRIORITY_OPTS : "";
        }
        java.add(ProcessHandle.current().info().command().orElse("java"));
        for (String o : javaOpts.trim().split("\\s+")) {
            if (!o.isEmpty()) {
                java.add(o);
            }
        }
    }

    private int run() throws Exception {
        long t0 = System.nanoTime();
        work = Files.createTempDirectory(chooseRoot(), "handoff-compare-");
        OutputStream file = report != null ? Files.newOutputStream(report) : OutputStream.nullOutputStream();
        out = new PrintStream(new Tee(System.out, file), true, StandardCharsets.UTF_8);
        Thread cleanup = new Thread(this::deleteWork, "compare-cleanup");
        Runtime.getRuntime().addShutdownHook(cleanup);
        try {
            header();
            if (runMemory) {
                out.println("in memory, one JVM, A B A B (load " + load() + ")");
                try {
                    memory = new InMemory(out, 30).run();
                } catch (Exception e) {
                    failures++;
                    out.println("  in-memory measurements FAILED: " + e);
                }
                out.println();
            }
            src = work.resolve("source.img");
            writeRandomImage(src, size);
            if (runBulk) {
                runBulk();
            }
            if (runNbd) {
                runNbd();
            }
            if (runFio) {
                fio = new FioRuns(out, work, src, size, java, handoffJar, fioJob, fioRounds, granularity, bufSize,
                        fioWindows, fioWorkloads, fioModes, fioTarget, spinners, jfrDir, serveArgs);
                failures += fio.run();
            }
            if (runTls) {
                tlsCost = new TlsCost(out, work, src, size, java, handoffJar, tlsRounds, tlsSeconds);
                failures += tlsCost.run();
            }
            if (runBulk) {
                bulkTable();
            }
            if (runNbd) {
                nbdTable();
            }
            if (runFio) {
                fio.table();
            }
            if (runTls) {
                tlsCost.table();
            }
            targets();
            out.println();
            out.println("load after:  " + load());
            out.printf(Locale.ROOT, "comparison took %.0f s; %d target check(s) failed, %d measurement(s) failed%n",
                    (System.nanoTime() - t0) / 1e9, verifyFailures, failures);
            return verifyFailures == 0 && failures == 0 ? 0 : 1;
        } finally {
            deleteWork();
            try {
                Runtime.getRuntime().removeShutdownHook(cleanup);
            } catch (IllegalStateException shuttingDown) {
                // the hook runs anyway
            }
            out.flush();
            file.close();
        }
    }

    private Path chooseRoot() throws IOException {
        if (workRoot != null) {
            return Files.createDirectories(workRoot); // a missing --work directory is made, not an error
        }
        Path shm = Paths.get("/dev/shm");
        if (Files.isDirectory(shm) && Files.isWritable(shm)) {
            FileStore store = Files.getFileStore(shm);
            if (store.getUsableSpace() > 3 * size + (256L << 20)) {
                return shm;
            }
        }
        return Paths.get(System.getProperty("java.io.tmpdir"));
    }

    private void header() throws Exception {
        out.println("Handoff vs QEMU mirror vs cp+sync, " + LocalDateTime.now().format(DateTimeFormatter.ISO_LOCAL_DATE_TIME));
        out.println("machine:     " + Runtime.getRuntime().availableProcessors() + " CPUs, "
                + memTotal() + ", " + firstLine(List.of("uname", "-sr")));
        out.println("load before: " + load());
        out.println("image:       " + Stats.f("%.0f", size / (double) (1 << 20)) + " MiB of random data in " + work
                + (work.startsWith("/dev/shm") ? " (tmpfs: the page cache itself)" : ""));
        out.println("settings:    granularity " + granularity + " B, buf-size " + bufSize + " B; bulk rounds " + rounds
                + ", NBD rounds " + nbdRounds + "; windows: warm-up " + warmSeconds + " s, alone " + aloneSeconds
                + " s, after READY " + afterSeconds + " s"
                + (runFio ? "; fio rounds " + fioRounds + ", workloads " + fioWorkloads + ", modes " + fioModes + ", target "
                        + (fioTarget.equals("loop") ? "loop device" : "file") + ", windows (warm-up, alone,"
                        + " after READY, most for the copy) " + Arrays.toString(fioWindows) + " s, spinners "
                        + (spinners ? "on" : "off") : ""));
        out.println("handoff JVM: " + (java.size() > 1 ? String.join(" ", java.subList(1, java.size())) : "no options"));
        if (!serveArgs.isEmpty()) {
            out.println("serve args:  " + String.join(" ", serveArgs));
        }
        out.println("tools:       " + firstLine(List.of("qemu-storage-daemon", "--version")) + "; "
                + firstLine(List.of(java.get(0), "-version")) + "; " + firstLine(List.of("cp", "--version"))
                + (runTls || runFio ? "; " + firstLine(List.of("fio", "--version")) + "; " + firstLine(List.of("openssl", "version"))
                : ""));
        out.println();
    }

    /* ---- Bulk copy, no guest ---- */

    private void runBulk() throws Exception {
        for (int r = 1; r <= rounds; r++) {
            out.println("bulk round " + r + "/" + rounds + " (load " + load() + ")");
            attempt("cp + sync", () -> record(cpSync()));
            for (String mode : MODES) {
                attempt("Handoff " + mode, () -> record(handoffMirror(mode)));
                attempt("QEMU " + mode, () -> record(qemuMirror(mode)));
            }
        }
        out.println();
    }

    private void record(BulkRun run) {
        bulk.add(run);
        if (!run.verified) {
            verifyFailures++;
        }
        out.printf(Locale.ROOT, "  %-24s READY %s s, READY+flush %s s, COMPLETED %s s, end-to-end %s s, CPU %s s, %s%n",
                run.contender, Stats.seconds(run.readyS), Stats.seconds(run.flushedS), Stats.seconds(run.completedS),
                Stats.seconds(run.wallS), Stats.seconds(run.cpuS), run.verified ? "identical" : "TARGET DIFFERS");
    }

    private BulkRun cpSync() throws Exception {
        Path dst = work.resolve("target.img");
        Files.deleteIfExists(dst);
        long t0 = System.nanoTime();
        // bash's `times` prints the CPU time of its finished children (cp and sync) on its second line.
        try (Child sh = Child.start("cp + sync", List.of("bash", "-c", "cp -- \"$1\" \"$2\" && sync -- \"$2\" && times",
                "cp-sync", src.toString(), dst.toString()), log("cp"))) {
            check(sh.waitFor(Duration.ofMinutes(5)), "cp + sync");
            double wall = (System.nanoTime() - t0) / 1e9;
            List<Child.Line> lines = sh.lines();
            double cpu = lines.size() >= 2 ? bashTimes(lines.get(lines.size() - 1).text()) : Double.NaN;
            return new BulkRun("cp + sync", Double.NaN, wall, wall, wall, cpu, identical(src, dst));
        }
    }

    private BulkRun handoffMirror(String mode) throws Exception {
        Path dst = freshTarget();
        List<String> cmd = new ArrayList<>(java);
        cmd.addAll(List.of("-jar", handoffJar.toString(), "mirror", src.toString(), dst.toString(), "--json",
                "--progress", "none", "--granularity", Long.toString(granularity), "--buf-size", Long.toString(bufSize),
                "--copy-mode", mode));
        long spawned = System.nanoTime();
        try (Child mirror = Child.start("handoff mirror", cmd, log("handoff-mirror"))) {
            // Printed just before job.start(): the origin, on this side's clock as for QEMU.
            Child.Line started = mirror.awaitOutput("mirror ", Duration.ofMinutes(2));
            long t0 = started.arrivedNanos();
            long ready = mirror.awaitLine(l -> l.contains("\"BLOCK_JOB_READY\""), Duration.ofMinutes(10)).arrivedNanos();
            Child.Line done = mirror.awaitLine(l -> l.contains("\"BLOCK_JOB_COMPLETED\""), Duration.ofMinutes(5));
            if (done.text().contains("\"error\"")) {
                throw new IOException("handoff mirror failed: " + done.text());
            }
            double cpu = done.cpuSeconds() - started.cpuSeconds();
            check(mirror.waitFor(Duration.ofMinutes(1)), "handoff mirror");
            double wall = (System.nanoTime() - spawned) / 1e9;
            double completed = (done.arrivedNanos() - t0) / 1e9;
            // Handoff flushes the target on completion, not at READY: COMPLETED is when it is known flushed.
            return new BulkRun("Handoff " + mode, (ready - t0) / 1e9, completed, completed, wall, cpu,
                    identical(src, dst));
        }
    }

    private BulkRun qemuMirror(String mode) throws Exception {
        Path dst = freshTarget();
        Path qmpSocket = work.resolve("qsd.qmp");
        List<String> cmd = new ArrayList<>(List.of("qemu-storage-daemon"));
        cmd.addAll(blockdevs(src, "src"));
        cmd.addAll(blockdevs(dst, "tgt"));
        cmd.addAll(monitor(qmpSocket));
        long spawned = System.nanoTime();
        try (Child qsd = Child.start("qemu-storage-daemon", cmd, log("qsd")); Qmp qmp = Qmp.connect(qmpSocket,
                Duration.ofSeconds(30))) {
            double cpu0 = qsd.cpuSeconds();
            long t0 = System.nanoTime();
            qmp.execute("blockdev-mirror", QmpArgs.mirror(JOB, granularity, bufSize, mode));
            long ready = qmp.awaitEvent("BLOCK_JOB_READY", Duration.ofMinutes(10)).arrivedNanos();
            qmp.execute("block-job-complete", QmpArgs.job(JOB));
            Qmp.Event completed = qmp.awaitEvent("BLOCK_JOB_COMPLETED", Duration.ofMinutes(5));
            double cpu = qsd.cpuSeconds() - cpu0;
            checkCompleted(completed);
            quit(qmp);
            check(qsd.waitFor(Duration.ofSeconds(30)), "qemu-storage-daemon");
            double wall = (System.nanoTime() - spawned) / 1e9;
            double readyS = (ready - t0) / 1e9;
            return new BulkRun("QEMU " + mode, readyS, readyS, (completed.arrivedNanos() - t0) / 1e9, wall, cpu,
                    identical(src, dst));
        }
    }

    /* ---- Guest writer through NBD ---- */

    private void runNbd() throws Exception {
        for (int r = 1; r <= nbdRounds; r++) {
            for (int ws : writeSizes) {
                for (String mode : MODES) {
                    out.println("NBD round " + r + "/" + nbdRounds + ", " + ws / 1024 + " KiB, " + mode + " (load "
                            + load() + ")");
                    int round = r;
                    attempt("Handoff NBD", () -> recordNbd(handoffNbd(mode, ws, round)));
                    attempt("QEMU NBD", () -> recordNbd(qemuNbd(mode, ws, round)));
                }
            }
        }
        out.println();
    }

    private void recordNbd(NbdRun r) {
        nbd.add(r);
        if (!r.verified) {
            verifyFailures++;
        }
        out.printf(Locale.ROOT, "  %-7s alone %s IOPS p99 %s | copy %s IOPS (%s) p50 %s p99 %s | ready %s IOPS (%s)"
                        + " p99 %s | READY in %s s, COMPLETED in %s s | %s%n",
                r.system, Stats.f("%.0f", r.alone.iops()), Stats.micros(r.alone.p99Micros()),
                Stats.f("%.0f", r.during.iops()), Stats.percent(r.keptDuring()), Stats.micros(r.during.p50Micros()),
                Stats.micros(r.during.p99Micros()), Stats.f("%.0f", r.after.iops()), Stats.percent(r.keptAfter()),
                Stats.micros(r.after.p99Micros()), Stats.seconds(r.readyS), Stats.seconds(r.completeS),
                r.verified ? "identical" : "TARGET DIFFERS");
    }

    private NbdRun handoffNbd(String mode, int writeSize, int round) throws Exception {
        Path nbdSocket = work.resolve("handoff.nbd");
        Path qmpSocket = work.resolve("handoff.qmp");
        long seed = seed(round, writeSize, mode, 1);

        // Alone: the export without a job.
        Window alone;
        try (Child serve = handoffServe(nbdSocket, qmpSocket, null, null)) {
            serve.awaitOutput("serving ", Duration.ofSeconds(60));
            try (Qmp qmp = Qmp.connect(qmpSocket, Duration.ofSeconds(30))) {
                GuestWriter w = GuestWriter.start(nbdSocket, "disk", writeSize, seed);
                Host.sleep(warmSeconds);
                long a0 = System.nanoTime();
                Host.sleep(aloneSeconds);
                alone = w.window(a0, System.nanoTime());
                w.stop();
                quit(qmp);
                check(serve.waitFor(Duration.ofSeconds(60)), "handoff serve");
            }
        }

        // The mirror: started held (speed 1, paused at once), released once the writer is warm.
        Path dst = freshTarget();
        try (Child serve = handoffServe(nbdSocket, qmpSocket, dst, mode)) {
            serve.awaitOutput("serving ", Duration.ofSeconds(60));
            try (Qmp qmp = Qmp.connect(qmpSocket, Duration.ofSeconds(30))) {
                qmp.execute("block-job-pause", QmpArgs.job(JOB));
                GuestWriter w = GuestWriter.start(nbdSocket, "disk", writeSize, seed + 1);
                Host.sleep(warmSeconds);
                ObjectNode speed = QmpArgs.job(JOB);
                speed.put("speed", 0);
                qmp.execute("block-job-set-speed", speed);
                long t0 = System.nanoTime();
                qmp.execute("block-job-resume", QmpArgs.job(JOB));
                return underLoad("Handoff", mode, writeSize, qmp, w, alone, t0, dst, () -> {
                    quit(qmp);
                    check(serve.waitFor(Duration.ofSeconds(60)), "handoff serve");
                });
            }
        }
    }

    private NbdRun qemuNbd(String mode, int writeSize, int round) throws Exception {
        Path nbdSocket = work.resolve("qsd.nbd");
        Path qmpSocket = work.resolve("qsd.qmp");
        long seed = seed(round, writeSize, mode, 2);
        Path dst = freshTarget();
        List<String> cmd = new ArrayList<>(List.of("qemu-storage-daemon"));
        cmd.addAll(blockdevs(src, "src"));
        cmd.addAll(blockdevs(dst, "tgt"));
        cmd.addAll(List.of("--nbd-server", "addr.type=unix,addr.path=" + nbdSocket,
                "--export", "type=nbd,id=exp0,node-name=src,name=disk,writable=on"));
        cmd.addAll(monitor(qmpSocket));
        try (Child qsd = Child.start("qemu-storage-daemon", cmd, log("qsd-nbd"));
                Qmp qmp = Qmp.connect(qmpSocket, Duration.ofSeconds(30))) {
            GuestWriter w = GuestWriter.start(nbdSocket, "disk", writeSize, seed);
            Host.sleep(warmSeconds);
            long a0 = System.nanoTime();
            Host.sleep(aloneSeconds);
            long a1 = System.nanoTime();
            Window alone = w.window(a0, a1);
            long t0 = System.nanoTime();
            qmp.execute("blockdev-mirror", QmpArgs.mirror(JOB, granularity, bufSize, mode));
            return underLoad("QEMU", mode, writeSize, qmp, w, alone, t0, dst, () -> {
                quit(qmp);
                check(qsd.waitFor(Duration.ofSeconds(60)), "qemu-storage-daemon");
            });
        }
    }

    private interface Stop {
        void run() throws Exception;
    }

    /** Runs one measurement; a failure is reported and counted, and the comparison goes on. */
    private void attempt(String what, Stop measurement) {
        try {
            measurement.run();
        } catch (Exception e) {
            failures++;
            out.println("  " + what + " FAILED: " + e);
            if (e.getCause() != null) {
                out.println("    caused by: " + e.getCause());
            }
        }
    }

    /** From the start of the bulk copy: READY, a window after it, complete, a tail, stop, verify. */
    private NbdRun underLoad(String system, String mode, int writeSize, Qmp qmp, GuestWriter w, Window alone, long t0,
            Path dst, Stop stopServer) throws Exception {
        Qmp.Event ready = qmp.awaitEvent("BLOCK_JOB_READY", Duration.ofMinutes(10));
        long t1 = ready.arrivedNanos();
        Host.sleepUntil(t1 + (long) (afterSeconds * 1e9));
        long t2 = System.nanoTime();
        qmp.execute("block-job-complete", QmpArgs.job(JOB));
        Qmp.Event completed = qmp.awaitEvent("BLOCK_JOB_COMPLETED", Duration.ofMinutes(5));
        checkCompleted(completed);
        long t3 = completed.arrivedNanos();
        Host.sleep(tailSeconds); // writes after the pivot land on the target only
        w.stop();
        stopServer.run();
        w.replay(src);
        boolean same = identical(src, dst);
        return new NbdRun(system, mode, writeSize, alone, w.window(t0, t1), w.window(t1, t2), w.window(t2, t3),
                (t1 - t0) / 1e9, (t3 - t2) / 1e9, same);
    }

    private Child handoffServe(Path nbdSocket, Path qmpSocket, Path target, String mode) throws IOException {
        Files.deleteIfExists(nbdSocket);
        Files.deleteIfExists(qmpSocket);
        List<String> cmd = new ArrayList<>(java);
        cmd.addAll(List.of("-jar", handoffJar.toString(), "serve", src.toString(), "--nbd", "unix:" + nbdSocket,
                "--control", qmpSocket.toString(), "--owner", "bench"));
        cmd.addAll(serveArgs);
        if (target != null) {
            cmd.addAll(List.of("--mirror-to", target.toString(), "--granularity", Long.toString(granularity),
                    "--buf-size", Long.toString(bufSize), "--copy-mode", mode, "--speed", "1", "--job-id", JOB));
        }
        return Child.start("handoff serve", cmd, log(target == null ? "serve-alone" : "serve-mirror"));
    }

    /* ---- Tables ---- */

    private static final String[] BULK = {"cp + sync", "QEMU background", "Handoff background", "QEMU write-blocking",
        "Handoff write-blocking"};

    private List<BulkRun> bulkOf(String contender) {
        return bulk.stream().filter(b -> b.contender.equals(contender)).toList();
    }

    private void bulkTable() {
        out.println("== Bulk copy of " + size / (1 << 20) + " MiB, no guest writer: medians of " + rounds
                + " rounds (s) ==");
        out.printf("%-24s %8s %12s %10s %12s %10s %8s %9s%n", "", "READY", "READY+flush", "COMPLETED", "end-to-end",
                "e2e min", "CPU", "identical");
        for (String c : BULK) {
            List<BulkRun> runs = bulkOf(c);
            out.printf("%-24s %8s %12s %10s %12s %10s %8s %9s%n", c, Stats.seconds(Stats.median(runs, BulkRun::readyS)),
                    Stats.seconds(Stats.median(runs, BulkRun::flushedS)),
                    Stats.seconds(Stats.median(runs, BulkRun::completedS)),
                    Stats.seconds(Stats.median(runs, BulkRun::wallS)), Stats.seconds(Stats.min(runs, BulkRun::wallS)),
                    Stats.seconds(Stats.median(runs, BulkRun::cpuS)),
                    runs.stream().filter(BulkRun::verified).count() + "/" + runs.size());
        }
        out.println("READY and COMPLETED: from the start of the job (QEMU: blockdev-mirror sent; Handoff: the line"
                + " it prints just before starting the job) to the arrival of the event here, so process start-up is"
                + " only in end-to-end. QEMU flushes the target before READY, Handoff when it completes, so Handoff's"
                + " READY+flush is its COMPLETED; cp + sync has only end-to-end. CPU: user + system seconds the"
                + " copier process used from the start of the job to COMPLETED (cp + sync: all of it).");
        out.println();
        out.println("ratios of medians                READY+flush   COMPLETED   end-to-end    CPU");
        for (String mode : MODES) {
            ratioLine("Handoff/QEMU " + mode, bulkOf("Handoff " + mode), bulkOf("QEMU " + mode));
        }
        for (String mode : MODES) {
            ratioLine("Handoff " + mode + "/cp", bulkOf("Handoff " + mode), bulkOf("cp + sync"));
        }
        ratioLine("QEMU background/cp", bulkOf("QEMU background"), bulkOf("cp + sync"));
        out.println();
    }

    private void ratioLine(String label, List<BulkRun> a, List<BulkRun> b) {
        out.printf("%-32s %11s %11s %12s %6s%n", label,
                Stats.ratio(Stats.median(a, BulkRun::flushedS) / Stats.median(b, BulkRun::flushedS)),
                Stats.ratio(Stats.median(a, BulkRun::completedS) / Stats.median(b, BulkRun::completedS)),
                Stats.ratio(Stats.median(a, BulkRun::wallS) / Stats.median(b, BulkRun::wallS)),
                Stats.ratio(Stats.median(a, BulkRun::cpuS) / Stats.median(b, BulkRun::cpuS)));
    }

    private List<NbdRun> nbdOf(String system, String mode, int writeSize) {
        return nbd.stream().filter(r -> r.system.equals(system) && r.mode.equals(mode) && r.writeSize == writeSize)
                .toList();
    }

    private void nbdTable() {
        out.println("== Guest writer, queue depth 1, random writes through the NBD export (unix socket): medians of "
                + nbdRounds + " rounds ==");
        out.printf("%-8s %-14s %5s | %7s %8s %8s | %7s %6s %8s %8s | %7s %6s %8s | %7s %7s | %5s%n", "system", "mode",
                "size", "alone", "p50", "p99", "copy", "kept", "p50", "p99", "ready", "kept", "p99", "READY",
                "COMPL.", "ident");
        out.printf("%-8s %-14s %5s | %7s %8s %8s | %7s %6s %8s %8s | %7s %6s %8s | %7s %7s | %5s%n", "", "", "",
                "IOPS", "", "", "IOPS", "", "", "", "IOPS", "", "", "s", "s", "");
        for (int ws : writeSizes) {
            for (String mode : MODES) {
                for (String system : List.of("Handoff", "QEMU")) {
                    List<NbdRun> runs = nbdOf(system, mode, ws);
                    out.printf("%-8s %-14s %5s | %7s %8s %8s | %7s %6s %8s %8s | %7s %6s %8s | %7s %7s | %5s%n",
                            system, mode, ws / 1024 + "K",
                            Stats.f("%.0f", med(runs, r -> r.alone.iops())),
                            Stats.micros(med(runs, r -> r.alone.p50Micros())),
                            Stats.micros(med(runs, r -> r.alone.p99Micros())),
                            Stats.f("%.0f", med(runs, r -> r.during.iops())), Stats.percent(med(runs, NbdRun::keptDuring)),
                            Stats.micros(med(runs, r -> r.during.p50Micros())),
                            Stats.micros(med(runs, r -> r.during.p99Micros())),
                            Stats.f("%.0f", med(runs, r -> r.after.iops())), Stats.percent(med(runs, NbdRun::keptAfter)),
                            Stats.micros(med(runs, r -> r.after.p99Micros())),
                            Stats.seconds(med(runs, NbdRun::readyS)), Stats.seconds(med(runs, NbdRun::completeS)),
                            runs.stream().filter(NbdRun::verified).count() + "/" + runs.size());
                }
            }
        }
        out.println("kept = IOPS in that window / IOPS alone (same system, same round); copy = from the start of the"
                + " bulk copy to READY; ready = " + afterSeconds + " s after READY; READY / COMPL. = time to READY"
                + " under the writer, and from block-job-complete to BLOCK_JOB_COMPLETED under the writer.");
        out.println();
        out.println("ratios of medians (Handoff/QEMU)   size  mode            IOPS copy  p99 copy  IOPS ready  READY  COMPL.");
        for (int ws : writeSizes) {
            for (String mode : MODES) {
                List<NbdRun> h = nbdOf("Handoff", mode, ws);
                List<NbdRun> q = nbdOf("QEMU", mode, ws);
                out.printf("%-34s %5s  %-15s %9s %9s %11s %6s %7s%n", "", ws / 1024 + "K", mode,
                        Stats.ratio(med(h, r -> r.during.iops()) / med(q, r -> r.during.iops())),
                        Stats.ratio(med(h, r -> r.during.p99Micros()) / med(q, r -> r.during.p99Micros())),
                        Stats.ratio(med(h, r -> r.after.iops()) / med(q, r -> r.after.iops())),
                        Stats.ratio(med(h, NbdRun::readyS) / med(q, NbdRun::readyS)),
                        Stats.ratio(med(h, NbdRun::completeS) / med(q, NbdRun::completeS)));
            }
        }
        out.println();
    }

    private static double med(List<NbdRun> runs, ToDoubleFunction<NbdRun> f) {
        return Stats.median(runs, f);
    }

    /** The targets that this run measures, with the measured value and met / missed. */
    private void targets() {
        if (!runBulk && !(runNbd && contains(writeSizes, 4096)) && memory == null) {
            return;
        }
        out.println("== Targets (medians of this run) ==");
        out.printf("%-66s %-22s %-22s %-14s %s%n", "figure", "Handoff", "QEMU", "target", "");
        if (runBulk) {
            for (String mode : MODES) {
                double h = Stats.median(bulkOf("Handoff " + mode), BulkRun::flushedS);
                double q = Stats.median(bulkOf("QEMU " + mode), BulkRun::flushedS);
                verdict("time to READY (target flushed), no writer, " + mode, Stats.seconds(h) + " s",
                        Stats.seconds(q) + " s", "<= 1.0x QEMU", h / q, h <= q);
            }
        }
        if (runNbd && contains(writeSizes, 4096)) {
            double[][] limits = {{0.70, 2_000, 0.97}, {0.50, 5_000, 0.90}};
            for (int m = 0; m < MODES.length; m++) {
                String mode = MODES[m];
                List<NbdRun> h = nbdOf("Handoff", mode, 4096);
                List<NbdRun> q = nbdOf("QEMU", mode, 4096);
                double hk = med(h, NbdRun::keptDuring);
                double qk = med(q, NbdRun::keptDuring);
                verdict("4K QD1 IOPS kept during bulk copy, " + mode, Stats.percent(hk), Stats.percent(qk),
                        ">= " + Stats.percent(limits[m][0]), Double.NaN, hk >= limits[m][0]);
                double hp = med(h, r -> r.during.p99Micros());
                double qp = med(q, r -> r.during.p99Micros());
                verdict("4K QD1 p99 during bulk copy, " + mode, Stats.micros(hp), Stats.micros(qp),
                        "<= " + Stats.micros(limits[m][1]), Double.NaN, hp <= limits[m][1]);
                double hr = med(h, NbdRun::readyS);
                double qr = med(q, NbdRun::readyS);
                verdict("time to READY under the 4K writer, " + mode, Stats.seconds(hr) + " s", Stats.seconds(qr) + " s",
                        "<= 0.7x QEMU", hr / qr, hr <= 0.7 * qr);
                double ha = med(h, NbdRun::keptAfter);
                double qa = med(q, NbdRun::keptAfter);
                verdict("4K QD1 IOPS kept after READY, " + mode, Stats.percent(ha), Stats.percent(qa),
                        ">= " + Stats.percent(limits[m][2]), Double.NaN, ha >= limits[m][2]);
            }
        }
        if (memory != null) {
            verdict("filter overhead, in memory, 4K writes, no copy running (CPU)",
                    Stats.f("%+.1f %%", 100 * (memory.filterRatio() - 1)), "-", "<= 3 %", Double.NaN,
                    memory.filterRatio() <= 1.03);
            verdict("  part: a full fence after the write (the protocol's barrier)",
                    Stats.f("%+.1f %%", 100 * (memory.fenceRatio() - 1)), "-", "-", Double.NaN, null);
            verdict("  part: the guest gate alone (two RMWs on one word)",
                    Stats.f("%+.1f %%", 100 * (memory.gateRatio() - 1)), "-", "-", Double.NaN, null);
            verdict("  part: the dirty mark alone (fence, word and summary reads)",
                    Stats.f("%+.1f %%", 100 * (memory.markRatio() - 1)), "-", "-", Double.NaN, null);
            verdict("  the same, write-blocking at READY vs raw source + target writes",
                    Stats.f("%+.1f %%", 100 * (memory.wbRatio() - 1)), "-", "-", Double.NaN, null);
            verdict("copy bandwidth in memory vs a plain copy loop (per CPU-second)", Stats.percent(memory.copyRatio()),
                    "-", ">= 80 %", Double.NaN, memory.copyRatio() >= 0.80);
            verdict("  the same, wall-clock (4 copy threads vs 1 loop thread)", Stats.percent(memory.wallCopyRatio()),
                    "-", "-", Double.NaN, null);
            verdict("next-dirty scan, empty 16 M-chunk bitmap", Stats.f("%.1f µs", memory.scanMicros()), "-",
                    "<= 50 µs", Double.NaN, memory.scanMicros() <= 50);
        }
    }

    /** One row of the targets table; {@code met} null for a figure shown for information only. */
    private void verdict(String figure, String handoff, String qemu, String target, double ratio, Boolean met) {
        out.printf("%-66s %-22s %-22s %-14s %s%n", figure,
                handoff + (Double.isFinite(ratio) ? " (" + Stats.ratio(ratio) + "x)" : ""), qemu, target,
                met == null ? "" : met ? "met" : "MISSED");
    }

    private static boolean contains(int[] a, int v) {
        for (int x : a) {
            if (x == v) {
                return true;
            }
        }
        return false;
    }

    /* ---- Helpers ---- */

    private List<String> blockdevs(Path image, String node) {
        return List.of("--blockdev", "driver=file,node-name=" + node + "-file,filename=" + image,
                "--blockdev", "driver=raw,node-name=" + node + ",file=" + node + "-file");
    }

    private static List<String> monitor(Path qmpSocket) throws IOException {
        Files.deleteIfExists(qmpSocket);
        return List.of("--chardev", "socket,id=mon,path=" + qmpSocket + ",server=on,wait=off", "--monitor", "chardev=mon");
    }

    /** Asks the server to exit; it may close the connection before its reply arrives. */
    private static void quit(Qmp qmp) throws InterruptedException {
        try {
            qmp.execute("quit", null);
        } catch (IOException closedFirst) {
            // the exit code tells
        }
    }

    private static void checkCompleted(Qmp.Event completed) throws IOException {
        if (completed.data().has("error")) {
            throw new IOException("the job failed: " + completed.data());
        }
    }

    private Path freshTarget() throws IOException {
        return RawImages.sparse(work.resolve("target.img"), size);
    }

    private boolean identical(Path a, Path b) throws Exception {
        return RawImages.identical(a, b, log("qemu-img-compare"), out);
    }

    private static void writeRandomImage(Path image, long size) throws IOException {
        SplittableRandom r = new SplittableRandom(20_240_901);
        byte[] block = new byte[1 << 20];
        ByteBuffer b = ByteBuffer.wrap(block);
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            for (long off = 0; off < size; off += block.length) {
                r.nextBytes(block);
                b.clear();
                while (b.hasRemaining()) {
                    ch.write(b, off + b.position());
                }
            }
        }
    }

    private Path log(String name) {
        return work.resolve(name + ".log");
    }

    /** The children's user + system seconds from bash's `times` line, e.g. "0m0.004s 0m0.552s". */
    private static double bashTimes(String line) {
        double total = 0;
        for (String f : line.trim().split("\\s+")) {
            int m = f.indexOf('m');
            if (m < 0 || !f.endsWith("s")) {
                return Double.NaN;
            }
            total += Double.parseDouble(f.substring(0, m)) * 60 + Double.parseDouble(f.substring(m + 1, f.length() - 1));
        }
        return total;
    }

    private static void check(int exit, String what) throws IOException {
        if (exit != 0) {
            throw new IOException(what + " exited with " + exit);
        }
    }

    private static long seed(int round, int writeSize, String mode, int system) {
        return ((long) round * 1_000_003L + writeSize) * 31 + mode.hashCode() * 7L + system;
    }

    private static String load() {
        return Host.load() + " (1, 5, 15 min)";
    }

    private static String memTotal() {
        try {
            for (String line : Files.readAllLines(Paths.get("/proc/meminfo"))) {
                if (line.startsWith("MemTotal:")) {
                    long kb = Long.parseLong(line.replaceAll("\\D+", ""));
                    return Stats.f("%.0f", kb / 1048576.0) + " GiB RAM";
                }
            }
        } catch (IOException | NumberFormatException e) {
            // fall through
        }
        return "? RAM";
    }

    private String firstLine(List<String> command) {
        try {
            Path log = Files.createTempFile(work, "version", ".log");
            Child.run(command.get(0), command, log, Duration.ofSeconds(30));
            String s = Files.readString(log).lines().findFirst().orElse("?").trim();
            Files.delete(log);
            return s;
        } catch (Exception e) {
            return command.get(0) + " (unavailable)";
        }
    }

    private void deleteWork() {
        LoopDevice.detachAll(); // before the files they are over go
        if (work == null || !Files.exists(work)) {
            return;
        }
        try (Stream<Path> all = Files.walk(work)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (IOException | UncheckedIOException e) {
            System.err.println("compare: could not delete " + work + ": " + e.getMessage());
        }
    }

    /** Writes everything to the terminal and to the report file. */
    private static final class Tee extends OutputStream {
        private final OutputStream a;
        private final OutputStream b;

        Tee(OutputStream a, OutputStream b) {
            this.a = a;
            this.b = b;
        }

        @Override
        public void write(int c) throws IOException {
            a.write(c);
            b.write(c);
        }

        @Override
        public void write(byte[] buf, int off, int len) throws IOException {
            a.write(buf, off, len);
            b.write(buf, off, len);
        }

        @Override
        public void flush() throws IOException {
            a.flush();
            b.flush();
        }
    }
}
