package dev.handoff.properties.mirror;

import dev.handoff.mirror.DirtyBitmap;
import dev.handoff.properties.sim.ByteCodec;
import dev.handoff.properties.sim.PropertyViolation;

import java.util.BitSet;
import java.util.SplittableRandom;

/**
 * {@link DirtyBitmap} against {@link BitSet}: every operation of a sequence must give the same
 * answer as on the model, and the state must agree after it ({@code count}, {@code dirtyBytes},
 * a full {@code nextDirty} walk, which exercises the summary level and its lazy repair).
 *
 * <p>The bitmap is reached through {@link Bitmap} so that a deliberately broken decorator can show
 * that the property fails on it ({@code DirtyBitmapModelTest}). Sequences come from a seed or from
 * fuzzer bytes; geometries span several summary words (4096 chunks each) and a partial last
 * chunk.
 */
final class DirtyBitmapModel {

    /** The operations under test; {@link #of(DirtyBitmap)} is the real one. */
    interface Bitmap {
        long chunkCount();

        boolean markRange(long offset, long length);

        boolean mark(long chunk);

        boolean testAndClear(long chunk);

        boolean isDirty(long chunk);

        boolean anyDirty(long offset, long length);

        long nextDirty(long from);

        long count();

        long dirtyBytes();

        void markAll();

        void clearAll();

        static Bitmap of(DirtyBitmap b) {
            return new Bitmap() {
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
            };
        }
    }

    /** Makes the bitmap under test for a geometry. */
    interface Factory {
        Bitmap create(long deviceSize, int granularity);
    }

    static final Factory REAL = (size, g) -> Bitmap.of(new DirtyBitmap(size, g));

    private DirtyBitmapModel() {
    }

    /** A random sequence from {@code seed}. */
    static void check(Factory factory, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int g = 1 << r.nextInt(13);
        long chunks = r.nextInt(4) == 0 ? 1 + r.nextInt(20_000) : 1 + r.nextInt(300);
        long size = chunks * g - (r.nextBoolean() ? r.nextInt(g) : 0);
        int ops = 50 + r.nextInt(300);
        byte[] script = new byte[ops * 9];
        r.nextBytes(script);
        run(factory, size, g, new ByteCodec.Reader(script));
    }

    /** A sequence decoded from fuzzer bytes: geometry first, then operations. */
    static void check(Factory factory, byte[] input) {
        ByteCodec.Reader in = new ByteCodec.Reader(input);
        int g = 1 << (in.u8() % 13);
        long chunks = 1 + in.u16() % 20_000;
        long size = Math.max(1, chunks * g - in.u16() % g);
        run(factory, size, g, in);
    }

    private static void run(Factory factory, long size, int g, ByteCodec.Reader in) {
        Bitmap b = factory.create(size, g);
        long chunks = (size + g - 1) / g;
        if (b.chunkCount() != chunks) {
            throw new PropertyViolation("bitmap-model", -1, "chunkCount " + b.chunkCount() + ", expected " + chunks);
        }
        BitSet model = new BitSet();
        int i = 0;
        while (in.remaining() > 0 && i < 5_000) {
            int op = in.u8() % 10;
            long c = in.u32() % chunks;
            long off = in.u32() % (size + 1);
            long len = Math.min(size - off, in.u32() % (4L * g * 70 + 1));
            String what;
            Object got;
            Object want;
            switch (op) {
                case 0, 1 -> {
                    what = "markRange(" + off + ", " + len + ")";
                    int first = (int) (off / g);
                    int last = len == 0 ? first - 1 : (int) ((off + len - 1) / g);
                    boolean newly = len > 0 && model.get(first, last + 1).cardinality() < last - first + 1;
                    got = b.markRange(off, len);
                    want = newly;
                    if (len > 0) {
                        model.set(first, last + 1);
                    }
                }
                case 2 -> {
                    what = "mark(" + c + ")";
                    want = !model.get((int) c);
                    got = b.mark(c);
                    model.set((int) c);
                }
                case 3, 4 -> {
                    what = "testAndClear(" + c + ")";
                    want = model.get((int) c);
                    got = b.testAndClear(c);
                    model.clear((int) c);
                }
                case 5 -> {
                    what = "isDirty(" + c + ")";
                    want = model.get((int) c);
                    got = b.isDirty(c);
                }
                case 6 -> {
                    what = "anyDirty(" + off + ", " + len + ")";
                    int first = (int) (off / g);
                    int last = len == 0 ? first - 1 : (int) ((off + len - 1) / g);
                    want = len > 0 && !model.get(first, last + 1).isEmpty();
                    got = b.anyDirty(off, len);
                }
                case 7 -> {
                    what = "nextDirty(" + c + ")";
                    int next = model.nextSetBit((int) c);
                    want = next < 0 ? -1L : (long) next;
                    got = b.nextDirty(c);
                }
                case 8 -> {
                    what = "markAll()";
                    b.markAll();
                    model.set(0, (int) chunks);
                    got = want = null;
                }
                default -> {
                    what = "clearAll()";
                    b.clearAll();
                    model.clear();
                    got = want = null;
                }
            }
            if (want != null && !want.equals(got)) {
                throw new PropertyViolation("bitmap-model", i, what + " returned " + got + ", BitSet says " + want
                        + " (size " + size + ", granularity " + g + ")");
            }
            checkState(b, model, size, g, chunks, i, what);
            i++;
        }
    }

    private static void checkState(Bitmap b, BitSet model, long size, int g, long chunks, int i, String after) {
        if (b.count() != model.cardinality()) {
            throw new PropertyViolation("bitmap-model", i, "after " + after + " count() is " + b.count()
                    + ", BitSet has " + model.cardinality());
        }
        long bytes = (long) model.cardinality() * g;
        if (model.get((int) chunks - 1)) {
            bytes -= chunks * g - size;
        }
        if (b.dirtyBytes() != bytes) {
            throw new PropertyViolation("bitmap-model", i, "after " + after + " dirtyBytes() is " + b.dirtyBytes()
                    + ", expected " + bytes + " (size " + size + ", granularity " + g + ")");
        }
        // The copier's scan: walk with nextDirty from 0; it must visit exactly the set bits.
        long from = 0;
        int expected = model.nextSetBit(0);
        for (int steps = 0; steps < 256; steps++) {
            long found = from < chunks ? b.nextDirty(from) : -1;
            if (found != (expected < 0 ? -1 : expected)) {
                throw new PropertyViolation("bitmap-model", i, "after " + after + " the scan from " + from
                        + " found " + found + ", BitSet says " + expected);
            }
            if (found < 0) {
                break;
            }
            from = found + 1;
            expected = model.nextSetBit((int) from);
        }
    }
}
