package dev.handoff.properties.mirror;

import dev.handoff.mirror.DirtyBitmap;
import dev.handoff.properties.sim.PropertyViolation;
import dev.handoff.properties.sim.Seeds;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Model-based property of {@link DirtyBitmap} against {@link java.util.BitSet}
 * ({@link DirtyBitmapModel}) on seeds; {@code FuzzTargetsFuzzTest#bitmap} feeds it fuzzer input. Sequential semantics only: the
 * concurrent behaviour (lost marks, summary repair under races) is jcstress's and Lincheck's.
 *
 * <p>Catches: a markRange that misses the chunk of the range's last byte (below, and the mutant
 * catalog's word-mask and partial-chunk variants).
 */
class DirtyBitmapModelTest {

    @Test
    void dirtyBitmapAgreesWithBitSet() {
        Long only = Seeds.single();
        int n = only != null ? 1 : Math.max(50, Seeds.count(300) / 4);
        for (int i = 0; i < n; i++) {
            long seed = only != null ? only : i + 1;
            try {
                DirtyBitmapModel.check(DirtyBitmapModel.REAL, seed);
            } catch (PropertyViolation v) {
                throw new AssertionError("DirtyBitmap seed " + seed + ": " + v.getMessage() + "\nreplay: "
                        + Seeds.replayCommand("DirtyBitmapModelTest", seed), v);
            }
        }
    }

    @Test
    void aBitmapThatMissesTheLastChunkOfARangeIsCaught() {
        DirtyBitmapModel.Factory broken = (size, g) -> {
            DirtyBitmapModel.Bitmap real = DirtyBitmapModel.Bitmap.of(new DirtyBitmap(size, g));
            return new ForwardingBitmap(real) {
                @Override
                public boolean markRange(long offset, long length) {
                    // Computes the last chunk from offset + length, not offset + length - 1, minus one.
                    long end = offset + length;
                    return super.markRange(offset, length > 1 && end % g == 1 ? length - 1 : length);
                }
            };
        };
        int caught = 0;
        for (long seed = 1; seed <= 100; seed++) {
            try {
                DirtyBitmapModel.check(broken, seed);
            } catch (PropertyViolation v) {
                assertThat(v.property()).isEqualTo("bitmap-model");
                caught++;
            }
        }
        assertThat(caught).as("seeds that catch the broken markRange").isGreaterThan(0);
    }

    /** Forwards to a bitmap; a broken variant overrides one method. */
    private static class ForwardingBitmap implements DirtyBitmapModel.Bitmap {
        private final DirtyBitmapModel.Bitmap b;

        ForwardingBitmap(DirtyBitmapModel.Bitmap b) {
            this.b = b;
        }

        public long chunkCount() {
            return b.chunkCount();
        }

        public boolean markRange(long offset, long length) {
            return b.markRange(offset, length);
        }

        public boolean mark(long chunk) {
            return b.mark(chunk);
        }

        public boolean testAndClear(long chunk) {
            return b.testAndClear(chunk);
        }

        public boolean isDirty(long chunk) {
            return b.isDirty(chunk);
        }

        public boolean anyDirty(long offset, long length) {
            return b.anyDirty(offset, length);
        }

        public long nextDirty(long from) {
            return b.nextDirty(from);
        }

        public long count() {
            return b.count();
        }

        public long dirtyBytes() {
            return b.dirtyBytes();
        }

        public void markAll() {
            b.markAll();
        }

        public void clearAll() {
            b.clearAll();
        }
    }
}
