package dev.handoff.bench;

import dev.handoff.device.DeviceException;
import dev.handoff.device.MemoryDevice;
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
 * {@code plainLoop / mirrorToReady} (times per copy).
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

    @Benchmark
    public JobState mirrorToReady() throws Exception {
        MemoryDevice target = new MemoryDevice(SIZE);
        MirrorJob job = MirrorJob.create(source, target, MirrorOptions.defaults());
        job.start();
        if (!job.awaitReady(Duration.ofMinutes(2))) {
            throw new IllegalStateException("not ready: " + job.state());
        }
        job.cancel();
        return job.awaitConclusion(Duration.ofMinutes(1));
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
