package dev.handoff.bench;

import dev.handoff.device.DeviceException;
import dev.handoff.device.MemoryDevice;
import dev.handoff.mirror.JobRuntime;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * In-memory bulk copy of 256 MiB of random data: the mirror job from start to READY against a
 * plain loop that reads and writes the same 1 MiB pieces on one thread. Bandwidth ratio =
 * {@code plainLoop / mirrorToReady} (times per copy; target: at least 80 %).
 *
 * <p>{@code mirrorToReady} runs with the default options (buf-size 16 MiB, so up to 16 copies of
 * 1 MiB in flight, on the default pool of {@value MirrorJob#DEFAULT_THREADS} threads) and, to
 * show where a difference comes from, with buf-size 1 MiB (one copy in flight: the plain loop's
 * working set) and with pools of 2 and 1 threads.
 *
 * <p>Run: {@code java -jar bench/target/benchmarks.jar CopyBench}
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3)
@Measurement(iterations = 9)
@Fork(1)
public class CopyBench {
    private static final long SIZE = 256L << 20;

    private MemoryDevice source;

    @Setup(Level.Trial)
    public void setUp() throws DeviceException {
        source = new MemoryDevice(SIZE);
        byte[] data = new byte[1 << 20];
        SplittableRandom r = new SplittableRandom(1);
        for (long off = 0; off < SIZE; off += data.length) {
            r.nextBytes(data);
            source.write(off, ByteBuffer.wrap(data));
        }
    }

    /** The job's shape: buf-size and pool threads. */
    @State(Scope.Benchmark)
    public static class Shape {
        @Param({"16M/4", "1M/4", "16M/2", "16M/1"})
        public String shape;

        int bufSize;
        int threads;

        @Setup(Level.Trial)
        public void setUp() {
            String[] p = shape.split("/");
            bufSize = Integer.parseInt(p[0].replace("M", "")) << 20;
            threads = Integer.parseInt(p[1]);
        }
    }

    @Benchmark
    public JobState mirrorToReady(Shape shape) throws Exception {
        MemoryDevice target = new MemoryDevice(SIZE);
        JobRuntime runtime = JobRuntime.threadPool(shape.threads);
        try {
            MirrorJob job = MirrorJob.create(source, target, MirrorOptions.builder().bufSize(shape.bufSize).build(),
                    runtime);
            job.start();
            if (!job.awaitReady(Duration.ofMinutes(2))) {
                throw new IllegalStateException("not ready: " + job.state());
            }
            job.cancel();
            return job.awaitConclusion(Duration.ofMinutes(1));
        } finally {
            runtime.shutdown();
        }
    }

    @Benchmark
    public MemoryDevice plainLoop() throws DeviceException {
        MemoryDevice target = new MemoryDevice(SIZE);
        ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
        for (long off = 0; off < SIZE; off += buf.capacity()) {
            buf.clear();
            source.read(off, buf);
            buf.flip();
            target.write(off, buf);
        }
        return target;
    }
}
