package dev.handoff.stress;

import dev.handoff.mirror.DirtyBitmap;
import org.jetbrains.lincheck.datastructures.IntGen;
import org.jetbrains.lincheck.datastructures.ModelCheckingOptions;
import org.jetbrains.lincheck.datastructures.Operation;
import org.jetbrains.lincheck.datastructures.Param;
import org.jetbrains.lincheck.datastructures.StressOptions;
import org.jetbrains.lincheck.datastructures.Validate;
import org.junit.jupiter.api.Test;

import java.util.BitSet;

/**
 * {@link DirtyBitmap} is linearizable against a sequential {@link BitSet} (DESIGN §5, "dirty bitmap
 * linearizable"). Four chunks in two words, two per word, so that marks and clears share words and
 * scans cross the summary level; word 1 starts with a stale summary bit (a chunk marked and
 * cleared), which is the state where a scan repairs the summary while a mark races it.
 *
 * <p>Scans are in a non-parallel group: the bitmap promises precise scans to one scanner at a time
 * (the copier scans under the job's lock). A scan's own result is not part of the linearizability
 * check: the bitmap promises that a <em>completed</em> mark is visible to a later scan, and the
 * validation function checks exactly that once all operations are done.
 *
 * <p>The bitmap claims to be lock-free (DESIGN §2.1): {@link #lockFreeUnderModelChecking()} runs
 * the same operations, plus a write-blocking write's clear of the chunks it covers and its
 * "anything dirty here?" test, with Lincheck's obstruction-freedom check, which fails on any lock,
 * wait or spin that lets one thread stop another.
 *
 * <p>Broken variants caught: clear-word-store-not-atomic and mark-word-store-not-atomic (a lost bit
 * update: model checking switches threads between the read and the store), bitmap-mark-takes-lock
 * (a mark serialized by a monitor: no lost update, but no longer lock-free). The catalog names this
 * test for the first and the last; for mark-word-store-not-atomic it names the jcstress harness
 * {@code BitmapWordMarkVsMark}, and this test was shown to catch it too by a catalog run with it
 * added as a check. Rerun:
 * {@code mvn -pl kernel,stress -am verify -Djcstress.skip -Dtest=DirtyBitmapLincheckTest -Dsurefire.failIfNoSpecifiedTests=false}
 */
@Param(name = "chunk", gen = IntGen.class, conf = "0:3")
public class DirtyBitmapLincheckTest {
    /** The chunks the operations touch: two in word 0, two in word 1. */
    static final long[] CHUNKS = {0, 1, 64, 65};
    static final int CHUNK_COUNT = 128;

    private final DirtyBitmap bitmap = new DirtyBitmap((long) CHUNK_COUNT * ChunkDevice.CHUNK, ChunkDevice.CHUNK);

    public DirtyBitmapLincheckTest() {
        bitmap.mark(64);
        bitmap.testAndClear(64); // word 1 empty, its summary bit stale
    }

    @Operation
    public boolean mark(@Param(name = "chunk") int i) {
        return bitmap.mark(CHUNKS[i]);
    }

    /** Marks both chunks of word {@code i / 2} with one range mark (one atomic word update). */
    @Operation
    public boolean markPair(@Param(name = "chunk") int i) {
        long first = CHUNKS[i & ~1];
        return bitmap.markRange(first * ChunkDevice.CHUNK, 2L * ChunkDevice.CHUNK);
    }

    @Operation
    public boolean testAndClear(@Param(name = "chunk") int i) {
        return bitmap.testAndClear(CHUNKS[i]);
    }

    @Operation
    public boolean isDirty(@Param(name = "chunk") int i) {
        return bitmap.isDirty(CHUNKS[i]);
    }

    /** A write-blocking write's clear of both chunks of word {@code i / 2}, which it covers completely. */
    @Operation
    public boolean clearPair(@Param(name = "chunk") int i) {
        long first = CHUNKS[i & ~1];
        return bitmap.clearCovered(first * ChunkDevice.CHUNK, 2L * ChunkDevice.CHUNK);
    }

    /** Whether either chunk of word {@code i / 2} is dirty (a write-blocking write's wake-up test). */
    @Operation
    public boolean anyDirtyPair(@Param(name = "chunk") int i) {
        long first = CHUNKS[i & ~1];
        return bitmap.anyDirty(first * ChunkDevice.CHUNK, 2L * ChunkDevice.CHUNK);
    }

    /**
     * A full scan, as the copier makes one: it repairs stale summary bits as it goes. Its result is
     * not compared with the model: a scan racing a mark that is still in progress may miss that
     * mark's chunks even after another operation saw them (the mark sets the word, then the
     * summary), which the bitmap allows; what it promises is checked by {@link #completedMarksAreVisibleToAScan()}.
     */
    @Operation(nonParallelGroup = "scanner")
    public void scan() {
        for (long c = bitmap.nextDirty(0); c >= 0 && c + 1 < CHUNK_COUNT; c = bitmap.nextDirty(c + 1)) {
            // walk on
        }
    }

    /**
     * DirtyBitmap point 3: once every mark has completed, a scan finds exactly the dirty chunks,
     * whatever concurrent scans did to the summary meanwhile.
     */
    @Validate
    public void completedMarksAreVisibleToAScan() {
        BitSet scanned = new BitSet();
        for (long c = bitmap.nextDirty(0); c >= 0; c = c + 1 < CHUNK_COUNT ? bitmap.nextDirty(c + 1) : -1) {
            scanned.set((int) c);
        }
        BitSet dirty = new BitSet();
        for (long c : CHUNKS) {
            if (bitmap.isDirty(c)) {
                dirty.set((int) c);
            }
        }
        if (!scanned.equals(dirty)) {
            throw new AssertionError("after all marks completed a scan found " + scanned + " but the dirty chunks are " + dirty);
        }
    }

    @Test
    void linearizableUnderModelChecking() {
        new ModelCheckingOptions()
                .iterations(30)
                .invocationsPerIteration(100)
                .threads(2)
                .actorsPerThread(3)
                .minimizeFailedScenario(false)
                .sequentialSpecification(BitSetModel.class)
                .check(getClass());
    }

    /**
     * The same operations with Lincheck's obstruction-freedom check: no lock, no wait, no spin that
     * depends on another thread (DESIGN §2.1: the bitmap is lock-free).
     */
    @Test
    void lockFreeUnderModelChecking() {
        new ModelCheckingOptions()
                .iterations(6)
                .invocationsPerIteration(100)
                .threads(2)
                .actorsPerThread(3)
                .checkObstructionFreedom(true)
                .minimizeFailedScenario(false)
                .sequentialSpecification(BitSetModel.class)
                .check(getClass());
    }

    @Test
    void linearizableUnderStress() {
        new StressOptions()
                .iterations(15)
                .invocationsPerIteration(100)
                .threads(2)
                .actorsPerThread(3)
                .minimizeFailedScenario(false)
                .sequentialSpecification(BitSetModel.class)
                .check(getClass());
    }

    /** The sequential specification: a plain bit set over the same chunks. */
    public static final class BitSetModel {
        private final BitSet bits = new BitSet(CHUNK_COUNT);

        public boolean mark(int i) {
            boolean was = bits.get((int) CHUNKS[i]);
            bits.set((int) CHUNKS[i]);
            return !was;
        }

        public boolean markPair(int i) {
            boolean a = mark(i & ~1);
            boolean b = mark((i & ~1) + 1);
            return a || b;
        }

        public boolean testAndClear(int i) {
            boolean was = bits.get((int) CHUNKS[i]);
            bits.clear((int) CHUNKS[i]);
            return was;
        }

        public boolean isDirty(int i) {
            return bits.get((int) CHUNKS[i]);
        }

        public boolean clearPair(int i) {
            boolean a = testAndClear(i & ~1);
            boolean b = testAndClear((i & ~1) + 1);
            return a || b;
        }

        public boolean anyDirtyPair(int i) {
            return isDirty(i & ~1) || isDirty((i & ~1) + 1);
        }

        public void scan() {
        }
    }
}
