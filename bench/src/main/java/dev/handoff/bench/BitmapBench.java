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
 * The dirty bitmap's operations on a 1 TiB device at 64 KiB granularity (16 M chunks, 2 MiB of
 * words), single-threaded.
 *
 * <ul>
 *   <li>{@code markClean}: a guest write dirtying a clean chunk (fence, read, RMW on the word,
 *       summary check). Successive calls walk all 16 M chunks with a stride of 65 chunks, so each
 *       call touches another word, as scattered guest writes do; after a full pass (16 M calls)
 *       the bitmap is cleared again, which adds well under 1 ns per call.</li>
 *   <li>{@code markAlreadyDirty}: the guest's steady state (fence and read, no shared write).</li>
 *   <li>{@code testAndClearDirty}: the copier's clear of a dirty chunk (one RMW); the same walk over
 *       a bitmap that is marked in full again after each pass.</li>
 *   <li>{@code markThenClear}: a clean chunk's full cycle (mark by the guest, clear by the copier).</li>
 *   <li>{@code nextDirtyFromStart}: the copier's scan from chunk 0 to the first dirty chunk (to the
 *       end when empty) over an {@code empty}, a {@code sparse} (one chunk in 64 Ki) and a
 *       {@code dense} (every chunk) bitmap. Target: at most 50 µs on the empty bitmap.</li>
 *   <li>{@code walkAllDirty}: every dirty chunk found in turn from chunk 0, as the copier's cursor
 *       does (256 on the sparse bitmap; capped at 1024 steps on the dense one).</li>
 * </ul>
 *
 * <p>Run: {@code java -jar bench/target/benchmarks.jar BitmapBench}
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class BitmapBench {
    static final long DEVICE = 1L << 40;
    static final int GRANULARITY = 64 << 10;
    /** Odd, so a walk visits each of the 2^24 chunks once per pass; above 64, so each step changes word. */
    static final long STRIDE = 65;

    /** A bitmap filled as {@link #fill} says, for the scans. */
    @State(Scope.Thread)
    public static class Filled {
        @Param({"empty", "sparse", "dense"})
        public String fill;

        DirtyBitmap bitmap;

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
    }

    /** A walk over every chunk of a bitmap that starts each pass all clean ({@code dirty == false}) or all dirty. */
    abstract static class Walk {
        final DirtyBitmap bitmap = new DirtyBitmap(DEVICE, GRANULARITY);
        final long mask = bitmap.chunkCount() - 1;
        long chunk;
        long left;

        abstract void resetPass();

        long next() {
            if (left-- == 0) {
                resetPass();
                left = bitmap.chunkCount() - 1;
            }
            return chunk = (chunk + STRIDE) & mask;
        }
    }

    @State(Scope.Thread)
    public static class CleanWalk extends Walk {
        @Override
        void resetPass() {
            bitmap.clearAll();
        }
    }

    @State(Scope.Thread)
    public static class DirtyWalk extends Walk {
        @Override
        void resetPass() {
            bitmap.markAll();
        }
    }

    @Benchmark
    public boolean markClean(CleanWalk w) {
        return w.bitmap.mark(w.next());
    }

    @Benchmark
    public boolean markAlreadyDirty(DirtyWalk w) {
        return w.bitmap.mark(12_345); // dirty from the first call on
    }

    @Benchmark
    public boolean testAndClearDirty(DirtyWalk w) {
        return w.bitmap.testAndClear(w.next());
    }

    @Benchmark
    public boolean markThenClear(CleanWalk w) {
        long c = w.next();
        w.bitmap.mark(c);
        return w.bitmap.testAndClear(c);
    }

    /** A full scan from chunk 0 to the first dirty chunk (to the end when empty). */
    @Benchmark
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public long nextDirtyFromStart(Filled f) {
        return f.bitmap.nextDirty(0);
    }

    /** Walks every dirty chunk from chunk 0, as the copier's cursor does. */
    @Benchmark
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    public long walkAllDirty(Filled f) {
        DirtyBitmap bitmap = f.bitmap;
        long n = 0;
        long count = bitmap.chunkCount();
        for (long c = bitmap.nextDirty(0); c >= 0 && n < 1024; c = c + 1 < count ? bitmap.nextDirty(c + 1) : -1) {
            n++;
        }
        return n;
    }
}
