package dev.handoff.bench.compare;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.bench.compare.FioGuest.Window;
import dev.handoff.bench.compare.ProcessCpu.Mark;
import dev.handoff.bench.compare.ProcessCpu.Usage;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import java.util.function.ToDoubleFunction;

/**
 * fio as the guest of both mirrors: the same job file ({@code bench/fio/guest.fio}, fio's
 * {@code nbd} engine) drives {@code handoff serve}'s export and qemu-storage-daemon's, and both
 * start the same mirror job with the same QMP commands ({@code blockdev-add} of the target, then
 * {@code blockdev-mirror}), so the only difference between A and B is the server.
 *
 * <h2>One run (one system, copy mode, workload and round)</h2>
 * The server starts with the source exported and no job; {@code --spinners} (default on) start
 * one busy loop per CPU under {@code SCHED_IDLE} ({@code chrt --idle 0}), which runs only when no
 * other thread wants the CPU, so no window sees an idle CPU and none is flattered by a busy copier
 * keeping the CPUs out of idle, nor penalised by wake-ups from idle (the trap of measuring "alone"
 * on an otherwise idle machine: the copy window then has warm CPUs and the alone window does not).
 * fio first writes at queue depth 16 for the warm-up (unmeasured: a fresh JVM compiles its hot
 * paths then; QEMU gets the same), then the measured fio starts with the run's workload, and after
 * a second the <b>alone</b> window runs in the same warm server process; then
 * {@code blockdev-mirror} starts the bulk copy: the <b>copy</b> window lasts until
 * {@code BLOCK_JOB_READY} arrives (its length is the time to READY under the guest); the
 * <b>ready</b> window is the next few seconds. fio is stopped, the job completed (pivot) with no
 * guest writing, and the target compared with the source ({@code qemu-img compare}): every write
 * acknowledged before the pivot must be on both. Windows are cut in fio's own per-I/O log at the
 * instants the QMP events arrived here (both on CLOCK_MONOTONIC).
 *
 * <h2>CPU</h2>
 * At each window's ends ({@link ProcessCpu}) the CPU time used so far is read for the server's
 * process (and any children) and for fio's (with its job process); the spinners are neither. Per
 * window: each one's CPUs busy (CPU-seconds / window seconds), their sum per I/O completed in the
 * window (µs; every I/O is a write in the randwrite workloads), and for the copy window the
 * server's CPU-seconds in all (the copy's cost plus the guest's). The READY end is read when this
 * thread has the event, a moment after its arrival, which cuts fio's log.
 *
 * <h2>The target</h2>
 * Each run's target is a fresh sparse image in the work directory. With {@code --fio-target file}
 * (the default) both mirrors write that file ({@code blockdev-add} driver {@code file}); with
 * {@code loop} it is attached as a loop device ({@link LoopDevice}, buffered) and both write
 * {@code /dev/loopN} (driver {@code host_device}): a write to a block device does not take the
 * inode lock that serialises buffered writes to one regular file, which a QD1 guest's write to the
 * target otherwise waits for while the copier's large write holds it. The target check then reads
 * the loop device, which is what a guest would read; the device is detached when the run ends,
 * also when it fails.
 *
 * <p>Each round runs every workload and mode for Handoff, then QEMU (A B A B); each figure is the
 * median over the rounds, with the spread (min–max) beside it.
 */
final class FioRuns {
    /**
     * A background job switched to write-blocking when READY arrives ({@code block-job-change}), so
     * the bulk copy spares the guest and, once in sync, a guest write costs no copy. QEMU 7.2 has no
     * {@code block-job-change}: its run stays background, which the report says.
     */
    static final String BG_THEN_WB = "bg-then-wb";
    /** The sections of bench/fio/guest.fio. */
    static final List<String> WORKLOADS = List.of("randwrite-qd1", "randwrite-qd16", "randrw70-qd16", "randwrite-qd1-2k");
    /** The sections run unless {@code --fio-workloads} names others. */
    static final List<String> DEFAULT_WORKLOADS = WORKLOADS.subList(0, 3);
    /** The copy modes, each run by both systems. */
    static final List<String> MODES = List.of("background", "write-blocking", BG_THEN_WB);
    /** The modes run unless {@code --fio-modes} names others. */
    static final List<String> DEFAULT_MODES = MODES.subList(0, 2);
    /** What the target is: a regular file, or a loop device over one. */
    static final List<String> TARGETS = List.of("file", "loop");
    private static final String[] SYSTEMS = {"Handoff", "QEMU"};
    private static final String JOB = "mirror0";

    record Run(String system, String mode, String workload, int round, String load, Window alone, Window copy,
            Window ready, double readyS, boolean verified, Usage cpuAlone, Usage cpuCopy, Usage cpuReady) {
        double keptCopy() {
            return copy.iops() / alone.iops();
        }

        double keptReady() {
            return ready.iops() / alone.iops();
        }

        /** Server and fio CPU per I/O in the alone window, µs. */
        double cpuPerIoAlone() {
            return cpuAlone.microsPerIo(alone.iops());
        }

        double cpuPerIoCopy() {
            return cpuCopy.microsPerIo(copy.iops());
        }

        double cpuPerIoReady() {
            return cpuReady.microsPerIo(ready.iops());
        }
    }

    private final PrintStream out;
    private final Path work;
    private final Path src;
    private final long size;
    private final List<String> java;
    private final Path handoffJar;
    private final Path jobFile;
    private final int rounds;
    private final long granularity;
    private final long bufSize;
    private final double warmSeconds;
    private final double aloneSeconds;
    private final double afterSeconds;
    private final double copyLimit;
    private final boolean spinners;
    private final Path jfrDir;
    private final List<String> serveArgs;
    private final List<String> workloads;
    private final List<String> modes;
    private final boolean loopTarget;
    private final List<Run> runs = new ArrayList<>();
    private int failures;
    private int verifyFailures;

    FioRuns(PrintStream out, Path work, Path src, long size, List<String> java, Path handoffJar, Path jobFile, int rounds,
            long granularity, long bufSize, double[] windows, List<String> workloads, List<String> modes, String target,
            boolean spinners, Path jfrDir, List<String> serveArgs) {
        if (!TARGETS.contains(target)) {
            throw new IllegalArgumentException("the fio target is one of " + TARGETS + ", not " + target);
        }
        this.workloads = workloads;
        this.loopTarget = target.equals("loop");
        this.modes = modes;
        this.out = out;
        this.work = work;
        this.src = src;
        this.size = size;
        this.java = java;
        this.handoffJar = handoffJar;
        this.jobFile = jobFile;
        this.rounds = rounds;
        this.granularity = granularity;
        this.bufSize = bufSize;
        this.warmSeconds = windows[0];
        this.aloneSeconds = windows[1];
        this.afterSeconds = windows[2];
        this.copyLimit = windows[3];
        this.spinners = spinners;
        this.jfrDir = jfrDir;
        this.serveArgs = List.copyOf(serveArgs);
    }

    /** Runs every round; returns the number of failed measurements plus failed target checks. */
    int run() {
        for (int r = 1; r <= rounds; r++) {
            for (String workload : workloads) {
                for (String mode : modes) {
                    for (String system : SYSTEMS) {
                        String load = Host.load();
                        out.println("fio round " + r + "/" + rounds + ", " + workload + ", " + mode + ", " + system
                                + " (load " + load + ")");
                        try {
                            record(one(system, mode, workload, r, load));
                        } catch (Exception e) {
                            failures++;
                            out.println("  FAILED: " + e);
                        }
                    }
                }
            }
        }
        out.println();
        return failures + verifyFailures;
    }

    private void record(Run r) {
        runs.add(r);
        if (!r.verified) {
            verifyFailures++;
        }
        out.printf(Locale.ROOT, "  alone %s IOPS p50 %s p99 %s | copy %s IOPS (%s) p50 %s p99 %s p99.9 %s | ready %s"
                        + " IOPS (%s) p99 %s | READY in %s s | %s | cpu alone %s (%s) copy %s (%s, server %s CPU-s)"
                        + " ready %s (%s)%n",
                Stats.f("%.0f", r.alone.iops()), Stats.micros(r.alone.p50Micros()), Stats.micros(r.alone.p99Micros()),
                Stats.f("%.0f", r.copy.iops()), Stats.percent(r.keptCopy()), Stats.micros(r.copy.p50Micros()),
                Stats.micros(r.copy.p99Micros()), Stats.micros(r.copy.p999Micros()), Stats.f("%.0f", r.ready.iops()),
                Stats.percent(r.keptReady()), Stats.micros(r.ready.p99Micros()), readyText(r.readyS),
                r.verified ? "identical" : "TARGET DIFFERS", busy(r.cpuAlone), perIo(r.cpuPerIoAlone()),
                busy(r.cpuCopy), perIo(r.cpuPerIoCopy()), Stats.f("%.2f", r.cpuCopy.serverSeconds()), busy(r.cpuReady),
                perIo(r.cpuPerIoReady()));
    }

    /** Server + fio CPUs busy, "0.71+0.29". */
    private static String busy(Usage u) {
        return Stats.f("%.2f", u.serverBusy()) + "+" + Stats.f("%.2f", u.fioBusy());
    }

    private static String perIo(double micros) {
        return Stats.f("%.0f", micros) + " µs/io";
    }

    private String readyText(double readyS) {
        return Double.isInfinite(readyS) ? ">" + Stats.f("%.0f", copyLimit) : Stats.seconds(readyS);
    }

    /** One run on a fresh target: the image file itself, or a loop device over it, detached at the end. */
    private Run one(String system, String mode, String workload, int round, String load) throws Exception {
        Path image = freshTarget();
        if (!loopTarget) {
            return measure(system, mode, workload, round, load, image);
        }
        try (LoopDevice loop = LoopDevice.attach(image)) {
            return measure(system, mode, workload, round, load, loop.device());
        }
    }

    private Run measure(String system, String mode, String workload, int round, String load, Path dst)
            throws Exception {
        Path nbdSocket = work.resolve("fio.nbd");
        Path qmpSocket = work.resolve("fio.qmp");
        Files.deleteIfExists(nbdSocket);
        Files.deleteIfExists(qmpSocket);
        String tag = system.toLowerCase(Locale.ROOT) + "-" + mode + "-" + workload + "-" + round;
        List<String> cmd;
        if (system.equals("Handoff")) {
            cmd = new ArrayList<>(java);
            cmd.addAll(List.of("-jar", handoffJar.toString(), "serve", src.toString(), "--nbd", "unix:" + nbdSocket,
                    "--export-name", "disk", "--node-name", "src", "--control", qmpSocket.toString(), "--owner", "bench"));
            cmd.addAll(serveArgs);
            if (jfrDir != null) {
                cmd.addAll(List.of("--jfr", jfrDir.resolve(tag + ".jfr").toString()));
            }
        } else {
            cmd = new ArrayList<>(List.of("qemu-storage-daemon",
                    "--blockdev", "driver=file,node-name=src-file,filename=" + src,
                    "--blockdev", "driver=raw,node-name=src,file=src-file",
                    "--nbd-server", "addr.type=unix,addr.path=" + nbdSocket,
                    "--export", "type=nbd,id=exp0,node-name=src,name=disk,writable=on",
                    "--chardev", "socket,id=mon,path=" + qmpSocket + ",server=on,wait=off", "--monitor", "chardev=mon"));
        }
        List<Child> spin = new ArrayList<>();
        try (Child server = Child.start(system + " server", cmd, work.resolve("fio-server.log"))) {
            if (system.equals("Handoff")) {
                server.awaitOutput("serving ", Duration.ofSeconds(60));
            }
            try (Qmp qmp = Qmp.connect(qmpSocket, Duration.ofSeconds(30))) {
                qmp.execute("blockdev-add", targetNode(dst));
                if (spinners) {
                    for (int i = 0; i < Runtime.getRuntime().availableProcessors(); i++) {
                        spin.add(Child.start("spinner", List.of("chrt", "--idle", "0", "sh", "-c", "while :; do :; done"),
                                work.resolve("spinner.log")));
                    }
                }
                String uri = "nbd+unix:///disk?socket=" + nbdSocket;
                // Unmeasured writing at the deepest queue first: a JVM compiles its hot paths in that
                // time (on a loaded machine a fresh JVM is still compiling after seconds of QD1); QEMU
                // gets the same.
                try (FioGuest warm = FioGuest.start(jobFile, "randwrite-qd16", uri, work, "fio-warm")) {
                    Host.sleep(warmSeconds);
                    warm.stop();
                }
                Window alone;
                Window copy;
                Window ready;
                Usage cpuAlone;
                Usage cpuCopy;
                Usage cpuReady;
                long t0;
                long t1;
                boolean switched = false;
                try (FioGuest fio = FioGuest.start(jobFile, workload, uri, work, "fio")) {
                    Host.sleep(1); // fio's connection and ramp
                    Mark m0 = Mark.take(server.pid(), fio.pid());
                    long a0 = System.nanoTime();
                    Host.sleep(aloneSeconds);
                    long a1 = System.nanoTime();
                    Mark m1 = Mark.take(server.pid(), fio.pid());
                    t0 = System.nanoTime();
                    qmp.execute("blockdev-mirror", QmpArgs.mirror(JOB, granularity, bufSize,
                            mode.equals(BG_THEN_WB) ? "background" : mode));
                    Qmp.Event readyEvent = qmp.pollEvent("BLOCK_JOB_READY", Duration.ofMillis((long) (copyLimit * 1e3)));
                    Mark m2 = Mark.take(server.pid(), fio.pid());
                    if (readyEvent != null) {
                        t1 = readyEvent.arrivedNanos();
                        if (mode.equals(BG_THEN_WB)) {
                            switched = switchToWriteBlocking(qmp);
                        }
                        Host.sleepUntil(t1 + (long) (afterSeconds * 1e9));
                    } else {
                        t1 = System.nanoTime(); // no READY under this guest within the limit: no ready window
                    }
                    long t2 = System.nanoTime();
                    Mark m3 = Mark.take(server.pid(), fio.pid());
                    fio.stop();
                    cpuAlone = m0.until(m1);
                    cpuCopy = m1.until(m2);
                    cpuReady = readyEvent != null ? m2.until(m3) : Usage.NONE;
                    alone = fio.window(a0, a1);
                    copy = fio.window(t0, t1);
                    ready = readyEvent != null ? fio.window(t1, t2) : FioGuest.Window.NONE;
                    if (readyEvent == null) {
                        t1 = Long.MAX_VALUE;
                    }
                }
                // Without the guest the job converges (a background job may not under a deep queue).
                qmp.awaitEvent("BLOCK_JOB_READY", Duration.ofMinutes(10));
                stopAll(spin);
                // No guest now: the pivot leaves the target equal to the source (for a loop device,
                // the check below reads the device, as a guest would).
                qmp.execute("block-job-complete", QmpArgs.job(JOB));
                Qmp.Event completed = qmp.awaitEvent("BLOCK_JOB_COMPLETED", Duration.ofMinutes(5));
                if (completed.data().has("error")) {
                    throw new IOException("the job failed: " + completed.data());
                }
                try {
                    qmp.execute("quit", null);
                } catch (IOException closedFirst) {
                    // the exit code tells
                }
                int exit = server.waitFor(Duration.ofSeconds(60));
                if (exit != 0) {
                    throw new IOException(system + " server exited with " + exit);
                }
                double readyS = t1 == Long.MAX_VALUE ? Double.POSITIVE_INFINITY : (t1 - t0) / 1e9;
                if (mode.equals(BG_THEN_WB) && t1 != Long.MAX_VALUE) {
                    out.println("  " + (switched ? "switched to write-blocking at READY"
                            : "stayed background: " + system + " has no block-job-change"));
                }
                return new Run(system, mode, workload, round, load, alone, copy, ready, readyS, identical(src, dst),
                        cpuAlone, cpuCopy, cpuReady);
            }
        } finally {
            stopAll(spin);
        }
    }

    private static void stopAll(List<Child> children) {
        for (Child c : children) {
            c.close();
        }
        children.clear();
    }

    /**
     * {@code block-job-change} to write-blocking; false if the server has no such command (QEMU
     * before 8.2), so the job goes on in background mode.
     */
    private static boolean switchToWriteBlocking(Qmp qmp) throws IOException, InterruptedException {
        ObjectNode a = Qmp.args();
        a.put("id", JOB);
        a.put("type", "mirror");
        a.put("copy-mode", "write-blocking");
        try {
            qmp.execute("block-job-change", a);
            return true;
        } catch (IOException e) {
            if (e.getMessage() != null && e.getMessage().contains("CommandNotFound")) {
                return false;
            }
            throw e;
        }
    }

    /** The target's {@code blockdev-add}: raw over {@code file}, or over {@code host_device} for a loop device. */
    private ObjectNode targetNode(Path dst) {
        ObjectNode a = Qmp.args();
        a.put("driver", "raw");
        a.put("node-name", "tgt");
        ObjectNode file = a.putObject("file");
        file.put("driver", loopTarget ? "host_device" : "file");
        file.put("filename", dst.toString());
        return a;
    }

    private Path freshTarget() throws IOException {
        return RawImages.sparse(work.resolve("fio-target.img"), size);
    }

    private boolean identical(Path a, Path b) throws Exception {
        return RawImages.identical(a, b, work.resolve("fio-compare.log"), out);
    }

    /* ---- Tables ---- */

    private List<Run> of(String system, String mode, String workload) {
        return runs.stream().filter(r -> r.system.equals(system) && r.mode.equals(mode) && r.workload.equals(workload))
                .toList();
    }

    /** Median and spread (min–max over the rounds) of one figure. */
    private String spread(List<Run> rs, ToDoubleFunction<Run> f, String kind) {
        double m = Stats.median(rs, f);
        double lo = Stats.min(rs, f);
        double hi = Stats.max(rs, f);
        return switch (kind) {
            case "iops" -> Stats.f("%.0f", m) + " (" + Stats.f("%.0f", lo) + "–" + Stats.f("%.0f", hi) + ")";
            case "pct" -> Stats.percent(m) + " (" + Stats.f("%.0f", 100 * lo) + "–" + Stats.f("%.0f", 100 * hi) + ")";
            case "us" -> Stats.micros(m) + " (" + Stats.micros(lo) + "–" + Stats.micros(hi) + ")";
            case "µs/io" -> Stats.f("%.0f", m) + " (" + Stats.f("%.0f", lo) + "–" + Stats.f("%.0f", hi) + ")";
            case "cpu-s" -> Stats.f("%.2f", m) + " (" + Stats.f("%.2f", lo) + "–" + Stats.f("%.2f", hi) + ")";
            default -> readyText(medianOf(rs, f)) + " (" + readyText(minOf(rs, f)) + "–" + readyText(maxOf(rs, f)) + ")";
        };
    }

    /** Medians of the server's and of fio's CPUs busy in one window, "0.71+0.29". */
    private static String medianBusy(List<Run> rs, Function<Run, Usage> window) {
        return Stats.f("%.2f", Stats.median(rs, r -> window.apply(r).serverBusy())) + "+"
                + Stats.f("%.2f", Stats.median(rs, r -> window.apply(r).fioBusy()));
    }

    /** The median counting an infinite value (no READY within the limit) as larger than any other. */
    private static double medianOf(List<Run> rs, ToDoubleFunction<Run> f) {
        double[] v = rs.stream().mapToDouble(f).filter(x -> !Double.isNaN(x)).sorted().toArray();
        if (v.length == 0) {
            return Double.NaN;
        }
        int m = v.length / 2;
        return v.length % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
    }

    private static double minOf(List<Run> rs, ToDoubleFunction<Run> f) {
        return rs.stream().mapToDouble(f).filter(x -> !Double.isNaN(x)).min().orElse(Double.NaN);
    }

    private static double maxOf(List<Run> rs, ToDoubleFunction<Run> f) {
        return rs.stream().mapToDouble(f).filter(x -> !Double.isNaN(x)).max().orElse(Double.NaN);
    }

    void table() {
        out.println("== fio (nbd engine) as the guest, same job file for both: medians of " + rounds
                + " rounds, (min–max) ==");
        out.println("target: " + targetText());
        out.println("spinners: " + (spinners ? "one SCHED_IDLE busy loop per CPU in every window" : "off"));
        for (String workload : workloads) {
            out.println("-- " + workload + " --");
            out.printf("%-8s %-14s | %-20s %-26s | %-18s %-14s %-26s %-26s | %-18s %-14s %-26s | %-18s | %-5s"
                            + " | %-9s %-22s | %-9s %-22s %-18s | %-9s %-22s%n",
                    "system", "mode", "alone IOPS", "alone p50", "copy IOPS", "kept", "copy p99", "copy p99.9",
                    "ready IOPS", "kept", "ready p99", "READY s", "ident", "cpu alone", "µs/io alone", "cpu copy",
                    "µs/io copy", "copy server CPU-s", "cpu ready", "µs/io ready");
            for (String mode : modes) {
                for (String system : SYSTEMS) {
                    List<Run> rs = of(system, mode, workload);
                    out.printf("%-8s %-14s | %-20s %-26s | %-18s %-14s %-26s %-26s | %-18s %-14s %-26s | %-18s | %-5s"
                                    + " | %-9s %-22s | %-9s %-22s %-18s | %-9s %-22s%n",
                            system, mode, spread(rs, r -> r.alone.iops(), "iops"),
                            spread(rs, r -> r.alone.p50Micros(), "us"), spread(rs, r -> r.copy.iops(), "iops"),
                            spread(rs, Run::keptCopy, "pct"), spread(rs, r -> r.copy.p99Micros(), "us"),
                            spread(rs, r -> r.copy.p999Micros(), "us"), spread(rs, r -> r.ready.iops(), "iops"),
                            spread(rs, Run::keptReady, "pct"), spread(rs, r -> r.ready.p99Micros(), "us"),
                            spread(rs, Run::readyS, "s"), rs.stream().filter(Run::verified).count() + "/" + rs.size(),
                            medianBusy(rs, Run::cpuAlone), spread(rs, Run::cpuPerIoAlone, "µs/io"),
                            medianBusy(rs, Run::cpuCopy), spread(rs, Run::cpuPerIoCopy, "µs/io"),
                            spread(rs, r -> r.cpuCopy.serverSeconds(), "cpu-s"), medianBusy(rs, Run::cpuReady),
                            spread(rs, Run::cpuPerIoReady, "µs/io"));
                }
            }
        }
        out.println("kept = IOPS in the window / IOPS alone (same system, same server process, same round); copy ="
                + " from blockdev-mirror to BLOCK_JOB_READY (at most " + copyLimit + " s: >" + Stats.f("%.0f", copyLimit)
                + " = no READY under this guest, and no ready window); ready = " + afterSeconds + " s after READY; latencies are"
                + " fio's total latency (submission to completion) of each I/O completing in the window.");
        out.println("cpu = CPUs busy in the window, server + fio (CPU-seconds / window seconds; the spinners not"
                + " counted); µs/io = server and fio CPU per I/O completed in the window; copy server CPU-s = the"
                + " server's CPU-seconds from blockdev-mirror to READY (the copy's and the guest's).");
        out.println();
        out.println("Handoff / QEMU (ratio of medians)   workload         mode            kept copy  p99 copy  kept ready  READY");
        for (String workload : workloads) {
            for (String mode : modes) {
                List<Run> h = of("Handoff", mode, workload);
                List<Run> q = of("QEMU", mode, workload);
                out.printf("%-36s %-16s %-15s %9s %9s %11s %6s%n", "", workload, mode,
                        Stats.ratio(Stats.median(h, Run::keptCopy) / Stats.median(q, Run::keptCopy)),
                        Stats.ratio(Stats.median(h, r -> r.copy.p99Micros()) / Stats.median(q, r -> r.copy.p99Micros())),
                        Stats.ratio(Stats.median(h, Run::keptReady) / Stats.median(q, Run::keptReady)),
                        ratioText(medianOf(h, Run::readyS), medianOf(q, Run::readyS)));
            }
        }
        out.println("loads at the start of each run: " + runs.stream().map(Run::load).map(l -> l.split(" ")[0]).toList());
        out.println();
        targets();
    }

    /** Issue 17's guest-side targets, judged on this run's medians. */
    private void targets() {
        out.println("== Targets, fio as the guest (medians of this run) ==");
        double[][] qd1 = {{0.85, 2_000, 0.97}, {0.50, 5_000, 0.90}};
        for (String mode : modes) {
            int m = mode.equals("write-blocking") ? 1 : 0; // bg-then-wb: background's targets
            List<Run> h = of("Handoff", mode, "randwrite-qd1");
            List<Run> q = of("QEMU", mode, "randwrite-qd1");
            verdict("4K QD1 IOPS kept during bulk copy, " + mode, Stats.percent(Stats.median(h, Run::keptCopy)),
                    Stats.percent(Stats.median(q, Run::keptCopy)), ">= " + Stats.percent(qd1[m][0]),
                    Stats.median(h, Run::keptCopy) >= qd1[m][0]);
            verdict("4K QD1 p99 during bulk copy, " + mode, Stats.micros(Stats.median(h, r -> r.copy.p99Micros())),
                    Stats.micros(Stats.median(q, r -> r.copy.p99Micros())), "<= " + Stats.micros(qd1[m][1]),
                    Stats.median(h, r -> r.copy.p99Micros()) <= qd1[m][1]);
            double hr = medianOf(h, Run::readyS);
            double qr = medianOf(q, Run::readyS);
            verdict("time to READY under the 4K QD1 writer, " + mode, readyText(hr) + " s (" + ratioText(hr, qr)
                    + "x)", readyText(qr) + " s", "<= 1.0x QEMU", hr <= qr);
            verdict("4K QD1 IOPS kept after READY, " + mode, Stats.percent(Stats.median(h, Run::keptReady)),
                    Stats.percent(Stats.median(q, Run::keptReady)), ">= " + Stats.percent(qd1[m][2]),
                    Stats.median(h, Run::keptReady) >= qd1[m][2]);
            List<Run> h16 = of("Handoff", mode, "randwrite-qd16");
            List<Run> q16 = of("QEMU", mode, "randwrite-qd16");
            double hk = Stats.median(h16, Run::keptCopy);
            double qk = Stats.median(q16, Run::keptCopy);
            verdict("4K QD16 IOPS kept during bulk copy, " + mode, Stats.percent(hk) + " (" + Stats.ratio(hk / qk) + "x)",
                    Stats.percent(qk), ">= 2x QEMU's", hk >= 2 * qk);
        }
        out.println();
    }

    /** The target kind, for the report. */
    String targetText() {
        return loopTarget ? "loop device (losetup --direct-io=off over a sparse file in the work directory; driver host_device)"
                : "file (a sparse file in the work directory; driver file)";
    }

    private static String ratioText(double a, double b) {
        if (Double.isInfinite(a) || Double.isInfinite(b)) {
            return Double.isInfinite(a) && Double.isInfinite(b) ? "-" : Double.isInfinite(a) ? "inf" : "0";
        }
        return Stats.ratio(a / b);
    }

    private void verdict(String figure, String handoff, String qemu, String target, boolean met) {
        out.printf("%-56s %-22s %-14s %-14s %s%n", figure, handoff, qemu, target, met ? "met" : "MISSED");
    }
}
