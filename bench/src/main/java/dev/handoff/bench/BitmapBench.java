package dev.handoff.bench;

import dev.handoff.mirror.DirtyBitmap;
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

import java.util.concurrent.TimeUnit;

/**
 * The dirty bitmap's operations on a 1 TiB device at 64 KiB granularity (16 M chunks).
 *
 * <p>{@code markAlreadyDirty} is the guest's steady state (read first, no shared write);
 * {@code markThenClear} is a clean chunk's full cycle (mark by the guest, test-and-clear by the
 * copier); {@code nextDirty*} is the copier's scan over an empty, a sparse (one chunk per 64 Ki)
 * and a dense (every chunk) bitmap.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class BitmapBench {
    private static final long DEVICE = 1L << 40;
    private static final int GRANULARITY = 64 << 10;

    @Param({"empty", "sparse", "dense"})
    public String fill;

    private DirtyBitmap bitmap;
    private long chunk;

    @Setup(Level.Trial)
    public void setUp() {
        bitmap = new DirtyBitmap(DEVICE, GRANULARITY);
        if (fill.equals("dense")) {
            bitmap.markAll();
        } else if (fill.equals("sparse")) {
            for (long c = 65_535; c < bitmap.chunkCount(); c += 65_536) {
                bitmap.mark(c);
            }
        }
    }

    @Benchmark
    public boolean markAlreadyDirty() {
        return bitmap.mark(12_345); // dirty since the first invocation
    }

    @Benchmark
    public boolean markThenClear() {
        long c = chunk = (chunk + 64 + 1) & ((1 << 20) - 1); // clean chunks away from the sparse marks
        bitmap.mark(c);
        return bitmap.testAndClear(c);
    }

    /** A full scan from chunk 0 to the first dirty chunk (to the end when empty). */
    @Benchmark
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public long nextDirtyFromStart() {
        return bitmap.nextDirty(0);
    }

    /** Walks every dirty chunk of the sparse bitmap (256 of them), as the copier's cursor does. */
    @Benchmark
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public long walkAllDirty() {
        long n = 0;
        long count = bitmap.chunkCount();
        for (long c = bitmap.nextDirty(0); c >= 0 && n < 1024; c = c + 1 < count ? bitmap.nextDirty(c + 1) : -1) {
            n++;
        }
        return n;
    }
}
