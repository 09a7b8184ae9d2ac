package dev.handoff.bench;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;
import dev.handoff.device.MemoryDevice;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import dev.handoff.mirror.MirrorProbe;
import dev.handoff.mirror.SyncMode;
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

import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * A 4 KiB guest write through the mirror filter against the same write on the raw device, in
 * memory (256 MiB devices, every segment allocated up front), with 1 and 2 writer threads.
 *
 * <table>
 *   <caption>{@code path}</caption>
 *   <tr><td>{@code raw}</td><td>the source device alone: the baseline of the background paths</td></tr>
 *   <tr><td>{@code raw+fence}</td><td>the source device, then a full fence: the store-load barrier the
 *       filter's dirty mark must issue after the data write (its share of the filter's cost)</td></tr>
 *   <tr><td>{@code raw+2fence}</td><td>the source device, then two full fences back to back: the two
 *       store-load barriers a guest path that orders each write by itself needs (the gate entry
 *       before the read of "closed", the data write before the read of the dirty word), with
 *       nothing else (docs/BENCHMARKS.md, "Filter overhead in memory")</td></tr>
 *   <tr><td>{@code raw+rmw+fence+rmw}</td><td>today's three serialising instructions alone: a volatile
 *       {@code getAndAdd(+1)} on a padded counter, the write, a full fence, a {@code getAndAdd(-1)}
 *       (with two threads the counter is shared, as the gate's word was before its cells)</td></tr>
 *   <tr><td>{@code raw+slot}</td><td>the floor in a per-thread-slot gate's order: a plain store to the
 *       thread's own padded slot and a full fence, the write, a full fence, a release store to the
 *       slot</td></tr>
 *   <tr><td>{@code raw+fence+load}</td><td>the source device, a full fence, a volatile load of one padded
 *       long: the dirty mark's minimum on an already-dirty chunk</td></tr>
 *   <tr><td>{@code raw+mark}</td><td>the source device, then the real {@code DirtyBitmap.markRange} on an
 *       all-dirty bitmap of the job's granularity: the dirty mark alone, no gate</td></tr>
 *   <tr><td>{@code raw+rmw+fence+load+rmw}</td><td>{@code raw+rmw+fence+rmw} with a volatile load of one
 *       padded long after the fence: the gate's two RMWs around the dirty mark's minimum, without
 *       {@code markRange}'s range check, mask, loop and summary read (between
 *       {@code raw+rmw+fence+rmw} and {@code raw+rmw+mark+rmw})</td></tr>
 *   <tr><td>{@code raw+rmw+or+rmw}</td><td>{@code raw+rmw+fence+load+rmw} with the fence and the load
 *       replaced by one unconditional {@code getAndBitwiseOr} of a set bit: the one-RMW dirty mark's
 *       instructions</td></tr>
 *   <tr><td>{@code raw+rmw+mark+rmw}</td><td>today's protocol without the filter: {@code getAndAdd(+1)},
 *       the write, the real {@code DirtyBitmap.markRange} on an all-dirty bitmap of the job's
 *       granularity (fence, word and summary reads), {@code getAndAdd(-1)}</td></tr>
 *   <tr><td>{@code raw+target}</td><td>the same write to the source, then to the target: the baseline of the
 *       write-blocking paths, which write both</td></tr>
 *   <tr><td>{@code gate}</td><td>the source device inside the kernel's real guest gate
 *       ({@code GuestGate.enter}, the write, {@code exit}, through the test-jar's {@code MirrorProbe}),
 *       no mark: the gate alone, shared by the writer threads as a job's guests share it</td></tr>
 *   <tr><td>{@code bg-idle}</td><td>background mode, no copy running (job created, not started): gate, write,
 *       fence, dirty mark</td></tr>
 *   <tr><td>{@code bg-ready}</td><td>background mode after READY (sync none): each write to a clean chunk
 *       wakes the copier, which copies it back in sync</td></tr>
 *   <tr><td>{@code bg-copying}</td><td>background mode during a bulk copy of the whole device (64 MiB/s, a
 *       fresh job each iteration so the copy never finishes under measurement)</td></tr>
 *   <tr><td>{@code wb-ready}</td><td>write-blocking after READY (sync none), no copy running: claim, source,
 *       target, release</td></tr>
 *   <tr><td>{@code wb-copying}</td><td>write-blocking during the same bulk copy: also waits for copies of
 *       the same chunk</td></tr>
 * </table>
 * Filter overhead, no copy running: {@code bg-idle / raw - 1} (target: at most 3 %) and
 * {@code wb-ready / raw+target - 1}. The instruction-cost paths ({@code raw+fence} to
 * {@code raw+rmw+mark+rmw}, built by {@link OrderedWrites}) take that overhead apart:
 * {@code raw+fence / raw - 1} is one store-load barrier; {@code raw+2fence} and {@code raw+slot}
 * the floor of a guest path that orders each write by itself (two barriers);
 * {@code raw+rmw+fence+rmw} today's instructions; {@code raw+fence+load} and {@code raw+mark} the
 * dirty mark; {@code raw+rmw+mark+rmw} today's protocol, and {@code bg-idle} over it the filter's
 * routing.
 *
 * <p>Run: {@code java -jar bench/target/benchmarks.jar FilterBench}
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
    private static final long COPY_SPEED = 64L << 20;

    @Param({"raw", "raw+fence", "raw+2fence", "raw+rmw+fence+rmw", "raw+slot", "raw+fence+load", "raw+mark",
            "raw+rmw+fence+load+rmw", "raw+rmw+or+rmw", "raw+rmw+mark+rmw", "raw+target", "gate", "bg-idle", "bg-ready", "bg-copying", "wb-ready", "wb-copying"})
    public String path;

    private MemoryDevice source;
    private MemoryDevice target;
    private MirrorJob job;
    private BlockDevice device;
    private boolean copying;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        source = new MemoryDevice(SIZE);
        target = new MemoryDevice(SIZE);
        ByteBuffer ones = ByteBuffer.allocate(1 << 20);
        while (ones.hasRemaining()) {
            ones.put((byte) 1);
        }
        for (long off = 0; off < SIZE; off += ones.capacity()) {
            ones.clear();
            source.write(off, ones); // allocate every segment on both sides
            ones.clear();
            target.write(off, ones);
        }
        copying = path.endsWith("-copying");
        switch (path) {
            case "raw":
                device = source;
                break;
            case "raw+fence":
                device = new Fenced(source);
                break;
            case "raw+2fence":
                device = OrderedWrites.twoFences(source);
                break;
            case "raw+rmw+fence+rmw":
                device = OrderedWrites.rmwFenceRmw(source);
                break;
            case "raw+slot":
                device = OrderedWrites.slot(source);
                break;
            case "raw+fence+load":
                device = OrderedWrites.fenceLoad(source);
                break;
            case "raw+mark":
                device = OrderedWrites.mark(source, MirrorOptions.defaults().granularity());
                break;
            case "raw+rmw+fence+load+rmw":
                device = OrderedWrites.rmwFenceLoadRmw(source);
                break;
            case "raw+rmw+or+rmw":
                device = OrderedWrites.rmwOrRmw(source);
                break;
            case "raw+rmw+mark+rmw":
                device = OrderedWrites.rmwMarkRmw(source, MirrorOptions.defaults().granularity());
                break;
            case "raw+target":
                device = new WriteBoth(source, target);
                break;
            case "gate":
                device = MirrorProbe.gatedWrites(source);
                break;
            case "bg-idle":
                job = MirrorJob.create(source, target, MirrorOptions.defaults());
                device = job.guestDevice();
                break;
            case "bg-ready":
            case "wb-ready":
                job = MirrorJob.create(source, target, MirrorOptions.builder().sync(SyncMode.NONE)
                        .copyMode(path.startsWith("wb") ? CopyMode.WRITE_BLOCKING : CopyMode.BACKGROUND).build());
                device = job.guestDevice();
                job.start();
                if (!job.awaitReady(Duration.ofSeconds(30))) {
                    throw new IllegalStateException("not READY: " + job);
                }
                break;
            default:
                break; // the copying paths start a job per iteration
        }
    }

    /** The copying paths: a fresh bulk copy for each iteration. */
    @Setup(Level.Iteration)
    public void startCopy() {
        if (copying) {
            job = MirrorJob.create(source, target, MirrorOptions.builder().speed(COPY_SPEED)
                    .copyMode(path.startsWith("wb") ? CopyMode.WRITE_BLOCKING : CopyMode.BACKGROUND).build());
            device = job.guestDevice();
            job.start();
        }
    }

    @TearDown(Level.Iteration)
    public void stopCopy() throws Exception {
        if (copying) {
            if (job.progress().ready()) {
                throw new IllegalStateException("the bulk copy finished within the iteration: raise SIZE or lower COPY_SPEED");
            }
            endJob();
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        if (job != null) {
            endJob();
        }
    }

    private void endJob() throws Exception {
        if (!job.state().isConcluded()) {
            job.cancel(true);
        }
        job.awaitConclusion(Duration.ofSeconds(30));
    }

    @State(Scope.Thread)
    public static class Writer {
        final ByteBuffer data = ByteBuffer.allocateDirect(WRITE);
        long next;

        @Setup(Level.Trial)
        public void setUp() {
            next = (Thread.currentThread().getId() * 7919L * WRITE) % (SIZE - WRITE);
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

    /** Writes, then a full fence (a locked instruction on x86: it waits for the write's stores to drain). */
    private static final class Fenced extends ForwardingBlockDevice {
        Fenced(BlockDevice device) {
            super(device);
        }

        @Override
        public void write(long offset, ByteBuffer src) throws DeviceException {
            super.write(offset, src);
            VarHandle.fullFence();
        }

        @Override
        public void writeZeroes(long offset, long length) throws DeviceException {
            super.writeZeroes(offset, length);
            VarHandle.fullFence();
        }

        @Override
        public void discard(long offset, long length) throws DeviceException {
            super.discard(offset, length);
            VarHandle.fullFence();
        }

        @Override
        public void close() {
            // the benchmark owns the device
        }
    }
}
