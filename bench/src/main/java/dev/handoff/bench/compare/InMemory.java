package dev.handoff.bench.compare;

import dev.handoff.bench.WriteBoth;
import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.MemoryDevice;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.DirtyBitmap;
import dev.handoff.mirror.MirrorProbe;
import dev.handoff.mirror.JobRuntime;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import dev.handoff.mirror.SyncMode;

import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.invoke.VarHandle;
import java.lang.management.ThreadMXBean;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.LongAdder;

/**
 * The in-memory targets measured A B A B in one JVM, so that a machine whose load drifts between
 * JMH's back-to-back benchmarks still gives a fair ratio: each round times both variants one
 * right after the other (in alternating order) and the ratio of that round is kept; the result
 * is the median of the rounds' ratios. The JMH benchmarks ({@code BitmapBench},
 * {@code FilterBench}, {@code CopyBench}) measure the same operations in more detail.
 *
 * <p>Costs are CPU time, not wall time: on a shared machine a thread's wall time stretches with
 * everybody else's load (a thread that gets a quarter of a core looks four times slower), and a
 * job with four copy threads gets more of the machine than a one-thread loop. The filter's cost
 * is the writing thread's CPU time ({@code CLOCK_THREAD_CPUTIME_ID}); a copy's cost is the
 * CPU time of the threads that do it (the loop's thread; the job's pool threads, summed per task
 * on a pool shaped like the default one), so "bandwidth" here is bytes per CPU-second. Both copies
 * overwrite the same preallocated target, so no allocation or garbage collection is in either.
 * Wall times are printed beside them.
 *
 * <ul>
 *   <li>Filter overhead, no copy running: 4 KiB writes (one thread) on a 256 MiB memory device,
 *       raw vs through the filter of a created job (background path); and raw source + target
 *       vs a write-blocking job at READY (sync none).</li>
 *   <li>Copy bandwidth: 256 MiB of random data, a plain one-thread loop of 1 MiB pieces vs a
 *       mirror job (default options) from start to READY.</li>
 *   <li>Next-dirty scan of an empty 16 M-chunk bitmap (1 TiB at 64 KiB).</li>
 * </ul>
 */
final class InMemory {
    private static final long SIZE = 256L << 20;
    private static final int WRITE = 4096;
    private static final int COPY_ROUNDS = 9;

    record Result(double filterRatio, double filterRawNs, double filterNs, double fenceRatio, double gateRatio,
            double markRatio, double wbRatio,
            double bothNs, double wbNs,
            double copyRatio, double plainMs, double mirrorMs, double wallCopyRatio, double scanMicros) {
    }

    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    /** CPU and wall nanoseconds of one measured piece. */
    private record Cost(double cpu, double wall) {
    }

    private final PrintStream out;
    private final int rounds;

    InMemory(PrintStream out, int rounds) {
        this.out = out;
        this.rounds = rounds;
    }

    Result run() throws Exception {
        MemoryDevice source = new MemoryDevice(SIZE);
        MemoryDevice target = new MemoryDevice(SIZE);
        byte[] data = new byte[1 << 20];
        SplittableRandom r = new SplittableRandom(7);
        for (long off = 0; off < SIZE; off += data.length) {
            r.nextBytes(data);
            source.write(off, ByteBuffer.wrap(data));
            target.write(off, ByteBuffer.wrap(data));
        }

        // Filter overhead: a created job tracks writes (background path) without copying.
        MirrorJob idle = MirrorJob.create(source, target, MirrorOptions.defaults());
        // Each variant's loop is its own lambda, so each device call site sees one receiver class and is
        // inlined as in a real deployment; a loop shared by all variants would make every call megamorphic.
        MemoryDevice rawDevice = source;
        Loop raw = n -> {
            for (int i = 0; i < n; i++) {
                rawDevice.write(offsetOf(i), buffer(i));
            }
        };
        BlockDevice filterDevice = idle.guestDevice();
        Loop filtered = n -> {
            for (int i = 0; i < n; i++) {
                filterDevice.write(offsetOf(i), buffer(i));
            }
        };
        double[] filter = alternate("filter overhead (background, no copy)", 200_000, raw, filtered);
        idle.cancel();
        // Its parts: the store-load barrier after the data write alone, the gate alone, the dirty mark alone.
        Loop fenced = n -> {
            for (int i = 0; i < n; i++) {
                rawDevice.write(offsetOf(i), buffer(i));
                VarHandle.fullFence();
            }
        };
        double[] fence = alternate("  part: a full fence after each write", 200_000, raw, fenced);
        BlockDevice gatedDevice = MirrorProbe.gatedWrites(source);
        Loop gatedLoop = n -> {
            for (int i = 0; i < n; i++) {
                gatedDevice.write(offsetOf(i), buffer(i));
            }
        };
        double[] gate = alternate("  part: the guest gate (enter/exit)", 200_000, raw, gatedLoop);
        BlockDevice markedDevice = MirrorProbe.markedWrites(source, 64 << 10);
        Loop markedLoop = n -> {
            for (int i = 0; i < n; i++) {
                markedDevice.write(offsetOf(i), buffer(i));
            }
        };
        double[] mark = alternate("  part: the dirty mark (fence, read)", 200_000, raw, markedLoop);

        MirrorJob wb = MirrorJob.create(source, target, MirrorOptions.builder().sync(SyncMode.NONE)
                .copyMode(CopyMode.WRITE_BLOCKING).build());
        wb.start();
        if (!wb.awaitReady(Duration.ofSeconds(30))) {
            throw new IllegalStateException("write-blocking job not READY");
        }
        BlockDevice both = new WriteBoth(source, target);
        Loop bothLoop = n -> {
            for (int i = 0; i < n; i++) {
                both.write(offsetOf(i), buffer(i));
            }
        };
        BlockDevice wbDevice = wb.guestDevice();
        Loop wbLoop = n -> {
            for (int i = 0; i < n; i++) {
                wbDevice.write(offsetOf(i), buffer(i));
            }
        };
        double[] blocking = alternate("filter overhead (write-blocking, READY)", 100_000, bothLoop, wbLoop);
        wb.cancel();
        wb.awaitConclusion(Duration.ofSeconds(30));

        // Copy bandwidth: CPU per copy (all threads), and wall time for information.
        List<Double> ratios = new ArrayList<>();
        List<Double> wallRatios = new ArrayList<>();
        List<Double> plain = new ArrayList<>();
        List<Double> mirror = new ArrayList<>();
        List<Double> plainWall = new ArrayList<>();
        List<Double> mirrorWall = new ArrayList<>();
        for (int i = -2; i < COPY_ROUNDS; i++) {
            boolean plainFirst = (i & 1) == 0;
            Cost a = plainFirst ? plainCopy(source, target) : mirrorCopy(source, target);
            Cost b = plainFirst ? mirrorCopy(source, target) : plainCopy(source, target);
            Cost p = plainFirst ? a : b;
            Cost m = plainFirst ? b : a;
            if (i >= 0) {
                ratios.add(p.cpu() / m.cpu());
                wallRatios.add(p.wall() / m.wall());
                plain.add(p.cpu() / 1e6);
                mirror.add(m.cpu() / 1e6);
                plainWall.add(p.wall() / 1e6);
                mirrorWall.add(m.wall() / 1e6);
            }
        }
        double copyRatio = median(ratios);
        out.printf(Locale.ROOT, "  copy of 256 MiB: plain loop %.0f ms CPU (%.0f ms wall), mirror to READY %.0f ms CPU"
                + " (%.0f ms wall) -> bandwidth per CPU-second %.0f %% of the loop's (wall-clock: %.0f %%)%n",
                median(plain), median(plainWall), median(mirror), median(mirrorWall), 100 * copyRatio,
                100 * median(wallRatios));

        // Next-dirty scan of the empty bitmap.
        DirtyBitmap bitmap = new DirtyBitmap(1L << 40, 64 << 10);
        List<Double> scans = new ArrayList<>();
        long sink = 0;
        for (int i = -5; i < 20; i++) {
            long t0 = System.nanoTime();
            for (int k = 0; k < 200; k++) {
                sink += bitmap.nextDirty(0);
            }
            if (i >= 0) {
                scans.add((System.nanoTime() - t0) / 200 / 1e3);
            }
        }
        if (sink != -200L * 25) {
            throw new IllegalStateException("the empty bitmap had a dirty chunk");
        }
        double scan = median(scans);
        out.printf(Locale.ROOT, "  next-dirty scan, empty 16 M-chunk bitmap: %.1f µs%n", scan);
        return new Result(filter[0], filter[1], filter[2], fence[0], gate[0], mark[0], blocking[0], blocking[1], blocking[2], copyRatio,
                median(plain), median(mirror), median(wallRatios), scan);
    }

    /** One variant's write loop: {@code n} writes of 4 KiB. */
    private interface Loop {
        void run(int n) throws DeviceException;
    }

    private static final ByteBuffer DATA = ByteBuffer.allocateDirect(WRITE);

    /** The i-th write's offset: 64 writes apart, wrapping, so each write lands on another chunk. */
    private static long offsetOf(int i) {
        return (64L * WRITE * i) % (SIZE - WRITE);
    }

    private static ByteBuffer buffer(int i) {
        return DATA.clear();
    }

    /** Alternates {@code raw} and {@code filtered} in blocks of {@code writes}; {median ratio, raw ns, filtered ns}. */
    private double[] alternate(String what, int writes, Loop raw, Loop filtered) throws DeviceException {
        List<Double> ratios = new ArrayList<>();
        List<Double> rawNs = new ArrayList<>();
        List<Double> filterNs = new ArrayList<>();
        List<Double> rawWall = new ArrayList<>();
        List<Double> filterWall = new ArrayList<>();
        for (int i = -5; i < rounds; i++) {
            boolean rawFirst = (i & 1) == 0;
            Cost a = measure(rawFirst ? raw : filtered, writes);
            Cost b = measure(rawFirst ? filtered : raw, writes);
            Cost rn = rawFirst ? a : b;
            Cost fn = rawFirst ? b : a;
            if (i >= 0) {
                ratios.add(fn.cpu() / rn.cpu());
                rawNs.add(rn.cpu());
                filterNs.add(fn.cpu());
                rawWall.add(rn.wall());
                filterWall.add(fn.wall());
            }
        }
        double ratio = median(ratios);
        out.printf(Locale.ROOT, "  %s: raw %.0f ns, filter %.0f ns CPU per 4 KiB write (wall %.0f / %.0f ns)"
                + " -> %+.1f %%%n", what, median(rawNs), median(filterNs), median(rawWall), median(filterWall),
                100 * (ratio - 1));
        return new double[] {ratio, median(rawNs), median(filterNs)};
    }

    private static Cost measure(Loop loop, int n) throws DeviceException {
        long c0 = THREADS.getCurrentThreadCpuTime();
        long t0 = System.nanoTime();
        loop.run(n);
        long t1 = System.nanoTime();
        return new Cost((THREADS.getCurrentThreadCpuTime() - c0) / (double) n, (t1 - t0) / (double) n);
    }

    private static Cost plainCopy(MemoryDevice source, MemoryDevice target) throws DeviceException {
        ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
        long c0 = THREADS.getCurrentThreadCpuTime();
        long t0 = System.nanoTime();
        for (long off = 0; off < SIZE; off += buf.capacity()) {
            buf.clear();
            source.read(off, buf);
            buf.flip();
            target.write(off, buf);
        }
        long t1 = System.nanoTime();
        return new Cost(THREADS.getCurrentThreadCpuTime() - c0, t1 - t0);
    }

    /**
     * A job from start to READY on the default runtime's shape ({@link JobRuntime#of(java.util.concurrent.Executor,
     * int)} over a pool of {@link MirrorJob#DEFAULT_THREADS} threads), adding up the CPU time of every task it runs.
     */
    private static Cost mirrorCopy(MemoryDevice source, MemoryDevice target) throws Exception {
        LongAdder taskCpu = new LongAdder();
        ExecutorService pool = Executors.newFixedThreadPool(MirrorJob.DEFAULT_THREADS, r -> {
            Thread t = new Thread(r, "counted-copier");
            t.setDaemon(true);
            return t;
        });
        JobRuntime runtime = JobRuntime.of(task -> pool.execute(() -> {
            long c0 = THREADS.getCurrentThreadCpuTime();
            try {
                task.run();
            } finally {
                taskCpu.add(THREADS.getCurrentThreadCpuTime() - c0);
            }
        }), MirrorJob.DEFAULT_THREADS);
        try {
            long c0 = THREADS.getCurrentThreadCpuTime();
            long t0 = System.nanoTime();
            MirrorJob job = MirrorJob.create(source, target, MirrorOptions.defaults(), runtime);
            job.start();
            if (!job.awaitReady(Duration.ofMinutes(2))) {
                throw new IllegalStateException("not READY: " + job.state());
            }
            long t1 = System.nanoTime();
            long cpu = THREADS.getCurrentThreadCpuTime() - c0 + taskCpu.sum();
            job.cancel();
            job.awaitConclusion(Duration.ofMinutes(1));
            return new Cost(cpu, t1 - t0);
        } finally {
            pool.shutdown();
        }
    }

    private static double median(List<Double> v) {
        return Stats.median(v.stream().mapToDouble(Double::doubleValue).toArray());
    }
}
