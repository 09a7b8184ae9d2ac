package dev.handoff.bench;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.MemoryDevice;
import dev.handoff.mirror.CopyMode;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;

/**
 * A 4 KiB guest write through the mirror filter against the same write on the raw device, in
 * memory, with 1 and 2 writer threads.
 *
 * <ul>
 *   <li>{@code path=raw}: the device alone (the baseline).</li>
 *   <li>{@code path=idle}: through the filter of a job that is not copying (created, not
 *       started): gate, write, fence, dirty mark.</li>
 *   <li>{@code path=copying}: through the filter of a running job whose copier is busy with a
 *       speed-limited bulk copy of the whole device.</li>
 * </ul>
 * The filter overhead is {@code idle / raw - 1}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class FilterBench {
    private static final long SIZE = 256L << 20;
    private static final int WRITE = 4096;

    @Param({"raw", "idle", "copying"})
    public String path;

    @Param({"BACKGROUND", "WRITE_BLOCKING"})
    public CopyMode mode;

    private MemoryDevice source;
    private MemoryDevice target;
    private MirrorJob job;
    private BlockDevice device;

    @Setup(Level.Trial)
    public void setUp() throws DeviceException {
        source = new MemoryDevice(SIZE);
        target = new MemoryDevice(SIZE);
        ByteBuffer ones = ByteBuffer.allocate(1 << 20);
        for (long off = 0; off < SIZE; off += ones.capacity()) {
            ones.clear();
            source.write(off, ones); // allocate every segment on both sides
            ones.clear();
            target.write(off, ones);
        }
        if (path.equals("raw")) {
            device = source;
            return;
        }
        job = MirrorJob.create(source, target, MirrorOptions.builder().copyMode(mode)
                .speed(path.equals("copying") ? 64L << 20 : 0).build());
        device = job.guestDevice();
        if (path.equals("copying")) {
            job.start();
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (job != null && !job.state().isConcluded()) {
            job.cancel(true);
        }
    }

    @State(Scope.Thread)
    public static class Writer {
        final ByteBuffer data = ByteBuffer.allocateDirect(WRITE);
        long next;

        @Setup(Level.Trial)
        public void setUp() {
            next = Thread.currentThread().getId() * 7919L * WRITE;
        }
    }

    @Benchmark
    @Threads(1)
    public void write1(Writer w) throws DeviceException {
        write(w);
    }

    @Benchmark
    @Threads(2)
    public void write2(Writer w) throws DeviceException {
        write(w);
    }

    private void write(Writer w) throws DeviceException {
        long off = w.next;
        w.next = (off + 64L * WRITE) % (SIZE - WRITE);
        w.data.clear();
        device.write(off, w.data);
    }
}
