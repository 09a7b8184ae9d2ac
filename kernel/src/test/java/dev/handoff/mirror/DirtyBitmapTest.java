package dev.handoff.mirror;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class DirtyBitmapTest {
    private static final int G = 4096;

    @Test
    void markRangeMarksEveryChunkItTouchesIncludingUnalignedEnds() {
        DirtyBitmap b = new DirtyBitmap(100 * G, G);
        assertThat(b.markRange(G - 1, 2)).isTrue(); // straddles chunks 0 and 1
        assertThat(b.isDirty(0)).isTrue();
        assertThat(b.isDirty(1)).isTrue();
        assertThat(b.isDirty(2)).isFalse();
        assertThat(b.count()).isEqualTo(2);
    }

    @Test
    void markingAnAlreadyDirtyRangeReportsNothingNew() {
        DirtyBitmap b = new DirtyBitmap(100 * G, G);
        assertThat(b.markRange(0, 3 * G)).isTrue();
        assertThat(b.markRange(G, 10)).isFalse();
        assertThat(b.markRange(2 * G, 2 * G)).isTrue(); // chunk 3 is new
    }

    @Test
    void zeroLengthMarksNothing() {
        DirtyBitmap b = new DirtyBitmap(100 * G, G);
        assertThat(b.markRange(5 * G, 0)).isFalse();
        assertThat(b.count()).isZero();
    }

    @Test
    void rangesOutsideTheDeviceAreRejected() {
        DirtyBitmap b = new DirtyBitmap(100 * G, G);
        assertThatThrownBy(() -> b.markRange(100 * G - 1, 2)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> b.testAndClear(100)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> new DirtyBitmap(G, 3000)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void testAndClearReportsWhetherTheChunkWasDirty() {
        DirtyBitmap b = new DirtyBitmap(100 * G, G);
        b.mark(64);
        assertThat(b.testAndClear(64)).isTrue();
        assertThat(b.testAndClear(64)).isFalse();
        assertThat(b.isDirty(64)).isFalse();
    }

    @Test
    void clearCoveredClearsOnlyTheChunksTheRangeCoversCompletely() {
        DirtyBitmap b = new DirtyBitmap(200 * G, G);
        b.markAll();
        assertThat(b.clearCovered(3 * G - 1, 2 * G + 2)).isTrue(); // 2 and 5 in part, 3 and 4 whole
        assertThat(b.isDirty(2)).isTrue();
        assertThat(b.isDirty(3)).isFalse();
        assertThat(b.isDirty(4)).isFalse();
        assertThat(b.isDirty(5)).isTrue();
        assertThat(b.clearCovered(10 * G + 1, G)).as("two halves, no whole chunk").isFalse();
        assertThat(b.isDirty(10)).isTrue();
        assertThat(b.isDirty(11)).isTrue();
        assertThat(b.clearCovered(60 * G, 10 * G)).as("across a word boundary").isTrue();
        for (long c = 60; c < 70; c++) {
            assertThat(b.isDirty(c)).isFalse();
        }
        assertThat(b.isDirty(59)).isTrue();
        assertThat(b.isDirty(70)).isTrue();
        assertThat(b.count()).isEqualTo(200 - 2 - 10);
        assertThat(b.clearCovered(3 * G, G)).as("already clean").isFalse();
        assertThat(b.clearCovered(7 * G, 0)).isFalse();
        assertThat(b.isDirty(7)).isTrue();
    }

    @Test
    void clearCoveredTreatsTheShortLastChunkAsCoveredByARangeToTheDeviceEnd() {
        DirtyBitmap b = new DirtyBitmap(10 * G - 100, G);
        b.markAll();
        assertThat(b.clearCovered(9 * G, G - 101)).as("one byte short of the end").isFalse();
        assertThat(b.isDirty(9)).isTrue();
        assertThat(b.clearCovered(9 * G, G - 100)).isTrue();
        assertThat(b.isDirty(9)).isFalse();
        assertThat(b.isDirty(8)).isTrue();
        assertThatThrownBy(() -> b.clearCovered(9 * G, G)).isInstanceOf(IndexOutOfBoundsException.class);
    }

    @Test
    void nextDirtyFindsChunksAcrossWordsAndSummaryWords() {
        long chunks = 3 * 4096 + 17; // more than two summary words
        DirtyBitmap b = new DirtyBitmap(chunks * G, G);
        assertThat(b.nextDirty(0)).isEqualTo(-1);
        long[] marks = {0, 63, 64, 4095, 4096, 8191, 12_000, chunks - 1};
        for (long c : marks) {
            b.mark(c);
        }
        List<Long> found = new ArrayList<>();
        for (long c = b.nextDirty(0); c >= 0; c = c + 1 < chunks ? b.nextDirty(c + 1) : -1) {
            found.add(c);
        }
        assertThat(found).containsExactly(0L, 63L, 64L, 4095L, 4096L, 8191L, 12_000L, chunks - 1);
    }

    @Test
    void nextDirtySeesAChunkMarkedAfterItsWordWasScannedEmpty() {
        DirtyBitmap b = new DirtyBitmap(10_000L * G, G);
        b.mark(5000);
        b.testAndClear(5000);
        assertThat(b.nextDirty(0)).isEqualTo(-1); // repairs the stale summary bit
        b.mark(5001);
        assertThat(b.nextDirty(0)).isEqualTo(5001);
    }

    @Test
    void matchesABitSetModelUnderRandomOperations() {
        SplittableRandom r = new SplittableRandom(3);
        int chunks = 9000;
        DirtyBitmap b = new DirtyBitmap((long) chunks * G - 100, G); // partial last chunk
        BitSet model = new BitSet();
        for (int i = 0; i < 20_000; i++) {
            switch (r.nextInt(5)) {
                case 0 -> {
                    long off = r.nextLong(b.deviceSize());
                    long len = Math.min(b.deviceSize() - off, r.nextLong(10L * G));
                    b.markRange(off, len);
                    if (len > 0) {
                        model.set((int) (off / G), (int) ((off + len - 1) / G) + 1);
                    }
                }
                case 1 -> {
                    int c = r.nextInt(chunks);
                    assertThat(b.testAndClear(c)).isEqualTo(model.get(c));
                    model.clear(c);
                }
                case 2 -> {
                    int c = r.nextInt(chunks);
                    assertThat(b.nextDirty(c)).isEqualTo((long) model.nextSetBit(c) < 0 ? -1 : model.nextSetBit(c));
                }
                case 3 -> assertThat(b.count()).isEqualTo(model.cardinality());
                default -> {
                    int c = r.nextInt(chunks);
                    assertThat(b.isDirty(c)).isEqualTo(model.get(c));
                }
            }
        }
    }

    @Test
    void markAllAndClearAllCoverExactlyTheChunks() {
        DirtyBitmap b = new DirtyBitmap(130L * G + 5, G);
        b.markAll();
        assertThat(b.count()).isEqualTo(131);
        assertThat(b.dirtyBytes()).isEqualTo(130L * G + 5);
        b.clearAll();
        assertThat(b.count()).isZero();
        assertThat(b.nextDirty(0)).isEqualTo(-1);
    }

    @Test
    void oneTebibyteAtDefaultGranularityFitsInOneBitPerChunkPlusSummary() {
        DirtyBitmap b = new DirtyBitmap(1L << 40, 64 << 10);
        assertThat(b.chunkCount()).isEqualTo(16L << 20);
        long oneBitPerChunk = (16L << 20) / 8;
        assertThat(b.memoryBytes()).isLessThanOrEqualTo(oneBitPerChunk + oneBitPerChunk / 64);
        assertThat(b.nextDirty(0)).isEqualTo(-1);
        b.mark((16L << 20) - 1);
        assertThat(b.nextDirty(0)).isEqualTo((16L << 20) - 1);
    }

    @Test
    void concurrentMarksOfChunksInOneWordAreNeverLost() throws Exception {
        for (int round = 0; round < 200; round++) {
            DirtyBitmap b = new DirtyBitmap(64L * G, G);
            Thread[] threads = new Thread[4];
            for (int t = 0; t < threads.length; t++) {
                int id = t;
                threads[t] = new Thread(() -> {
                    for (int c = id; c < 64; c += 4) {
                        b.mark(c);
                    }
                });
            }
            for (Thread t : threads) {
                t.start();
            }
            for (Thread t : threads) {
                t.join();
            }
            assertThat(b.count()).isEqualTo(64);
        }
    }
}
