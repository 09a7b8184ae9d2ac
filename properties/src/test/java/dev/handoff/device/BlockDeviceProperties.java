package dev.handoff.device;

import dev.handoff.sim.PropertyViolation;
import dev.handoff.sim.Seeds;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.LongFunction;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The {@link BlockDevice} contract as model-based properties: random operation sequences on a
 * device and on a byte array must agree. Extend it with a factory for your own device and run
 * it (the jar {@code handoff-properties} with classifier {@code tests} holds this class):
 *
 * <pre>{@code
 * class MyDevicePropertiesTest extends BlockDeviceProperties {
 *     protected BlockDevice create(long size) throws Exception { return MyDevice.open(size); }
 * }
 * }</pre>
 *
 * <p>Properties (each named in a failure):
 * <ul>
 *   <li>{@code read-matches-model}: a read returns the bytes of the last write, write-zeroes or
 *       discard of each byte (a discarded byte: stable, and zero if {@link #discardReadsZeroes()});
 *       heap and direct buffers, at any buffer position;</li>
 *   <li>{@code buffer-positions}: read and write advance the buffer's position to its limit and
 *       leave the limit alone;</li>
 *   <li>{@code out-of-range}: an operation outside {@code [0, size)} fails with OUT_OF_RANGE and
 *       changes nothing;</li>
 *   <li>{@code closed}: after close every operation fails with CLOSED; a second close is harmless;</li>
 *   <li>{@code size}: size() is the size asked for and never changes.</li>
 * </ul>
 * Catches (see {@code BrokenDeviceTest}): a write that drops bytes at a segment boundary, a
 * write-zeroes that misses a partial tail, a read that ignores the buffer's position.
 */
public abstract class BlockDeviceProperties {

    /** A fresh device of {@code size} bytes whose contents are all zero. */
    protected abstract BlockDevice create(long size) throws Exception;

    /** Device sizes the random runs use; override to test larger geometry. */
    protected long[] sizes() {
        return new long[] {1, 4095, 65_536, (1 << 20) + 3, 3L * (1 << 20) - 17};
    }

    /** Whether discarded bytes read back as zeroes (else only stable); MemoryDevice: yes, FileDevice: no. */
    protected boolean discardReadsZeroes() {
        return true;
    }

    /** Operations per random run. */
    protected int operations() {
        return 200;
    }

    @Test
    void randomOperationsAgreeWithAByteArray() throws Exception {
        Long only = Seeds.single();
        int runs = only != null ? 1 : Math.max(5, Seeds.count(250) / 50);
        for (int run = 0; run < runs; run++) {
            long seed = only != null ? only : run + 1;
            long size = sizes()[run % sizes().length];
            try (BlockDevice d = create(size)) {
                check(d, seed, operations(), discardReadsZeroes());
            } catch (PropertyViolation v) {
                throw new AssertionError(getClass().getSimpleName() + " seed " + seed + " size " + size + ": "
                        + v.getMessage() + "\nreplay: " + Seeds.replayCommand(getClass().getSimpleName(), seed), v);
            }
        }
    }

    @Test
    void operationsOutsideTheDeviceFailAndTouchNothing() throws Exception {
        try (BlockDevice d = create(8192)) {
            byte[] before = new byte[8192];
            Arrays.fill(before, (byte) 7);
            d.write(0, ByteBuffer.wrap(before.clone()));
            long[][] ranges = {{8192, 1}, {8191, 2}, {-1, 1}, {0, 8193}, {Long.MAX_VALUE, 1}, {4096, Long.MAX_VALUE}};
            for (long[] r : ranges) {
                int n = (int) Math.min(r[1], 10_000);
                expectKind(DeviceException.Kind.OUT_OF_RANGE, () -> d.write(r[0], ByteBuffer.allocate(n)));
                expectKind(DeviceException.Kind.OUT_OF_RANGE, () -> d.read(r[0], ByteBuffer.allocate(n)));
                expectKind(DeviceException.Kind.OUT_OF_RANGE, () -> d.writeZeroes(r[0], r[1]));
                expectKind(DeviceException.Kind.OUT_OF_RANGE, () -> d.discard(r[0], r[1]));
            }
            ByteBuffer all = ByteBuffer.allocate(8192);
            d.read(0, all);
            assertThat(all.array()).as("out-of-range: nothing was touched").isEqualTo(before);
            assertThat(d.size()).as("size").isEqualTo(8192);
        }
    }

    @Test
    void aClosedDeviceFailsEveryOperationWithClosed() throws Exception {
        BlockDevice d = create(4096);
        d.close();
        d.close(); // harmless
        expectKind(DeviceException.Kind.CLOSED, () -> d.read(0, ByteBuffer.allocate(1)));
        expectKind(DeviceException.Kind.CLOSED, () -> d.write(0, ByteBuffer.allocate(1)));
        expectKind(DeviceException.Kind.CLOSED, () -> d.writeZeroes(0, 1));
        expectKind(DeviceException.Kind.CLOSED, () -> d.discard(0, 1));
        expectKind(DeviceException.Kind.CLOSED, d::flush);
    }

    private interface DeviceCall {
        void run() throws Exception;
    }

    private static void expectKind(DeviceException.Kind kind, DeviceCall call) {
        assertThatThrownBy(call::run).isInstanceOfSatisfying(DeviceException.class,
                e -> assertThat(e.kind()).as("kind of " + e.getMessage()).isEqualTo(kind));
    }

    /* ---- The model-based run, usable without JUnit ---- */

    /**
     * Runs {@code operations} random operations on {@code device} (all zero at start) and on a
     * byte array; throws {@link PropertyViolation} where they disagree.
     */
    public static void check(BlockDevice device, long seed, int operations, boolean discardReadsZeroes)
            throws DeviceException {
        long size = device.size();
        if (size > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("the model holds at most 2 GiB");
        }
        byte[] model = new byte[(int) size];
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < operations; i++) {
            long off = size == 0 ? 0 : r.nextLong(size);
            int max = (int) Math.min(size - off, r.nextInt(4) == 0 ? 3 << 20 : 70_000);
            int len = max == 0 ? 0 : r.nextInt(10) == 0 ? 0 : 1 + r.nextInt(max);
            int op = r.nextInt(10);
            if (op < 4) {
                byte[] data = new byte[len];
                r.nextBytes(data);
                ByteBuffer src = buffer(r, data);
                int pos = src.position();
                int limit = src.limit();
                device.write(off, src);
                if (src.position() != limit || src.limit() != limit) {
                    throw new PropertyViolation("buffer-positions", i, "write left position " + src.position()
                            + " limit " + src.limit() + ", expected both " + limit + " (started at " + pos + ")");
                }
                System.arraycopy(data, 0, model, (int) off, len);
            } else if (op < 7) {
                ByteBuffer dst = buffer(r, new byte[len]);
                int pos = dst.position();
                int limit = dst.limit();
                device.read(off, dst);
                if (dst.position() != limit || dst.limit() != limit) {
                    throw new PropertyViolation("buffer-positions", i, "read left position " + dst.position()
                            + " limit " + dst.limit() + ", expected both " + limit);
                }
                byte[] got = new byte[len];
                dst.position(pos);
                dst.get(got);
                int at = Arrays.mismatch(got, 0, len, model, (int) off, (int) off + len);
                if (at >= 0) {
                    throw new PropertyViolation("read-matches-model", i, "read " + off + "+" + len + " returned "
                            + got[at] + " at " + (off + at) + " where the model has " + model[(int) off + at]);
                }
            } else if (op < 8) {
                device.writeZeroes(off, len);
                Arrays.fill(model, (int) off, (int) off + len, (byte) 0);
            } else if (op < 9) {
                device.discard(off, len);
                ByteBuffer first = ByteBuffer.allocate(len);
                ByteBuffer second = ByteBuffer.allocate(len);
                device.read(off, first);
                device.read(off, second);
                if (!Arrays.equals(first.array(), second.array())) {
                    throw new PropertyViolation("read-matches-model", i, "discarded range " + off + "+" + len
                            + " does not read back the same twice");
                }
                if (discardReadsZeroes) {
                    Arrays.fill(model, (int) off, (int) off + len, (byte) 0);
                    int at = Arrays.mismatch(first.array(), 0, len, model, (int) off, (int) off + len);
                    if (at >= 0) {
                        throw new PropertyViolation("read-matches-model", i, "discarded byte " + (off + at)
                                + " reads " + first.array()[at] + ", not zero");
                    }
                } else {
                    System.arraycopy(first.array(), 0, model, (int) off, len);
                }
            } else {
                device.flush();
            }
            if (device.size() != size) {
                throw new PropertyViolation("size", i, "size changed from " + size + " to " + device.size());
            }
        }
        // A last full comparison: nothing outside the ranges read was disturbed.
        ByteBuffer all = ByteBuffer.allocate((int) size);
        device.read(0, all);
        int at = Arrays.mismatch(all.array(), model);
        if (at >= 0) {
            throw new PropertyViolation("read-matches-model", operations, "byte " + at + " is " + all.array()[at]
                    + " where the model has " + model[at]);
        }
    }

    /** The data in a heap or direct buffer, at a random position inside a larger buffer. */
    private static ByteBuffer buffer(SplittableRandom r, byte[] data) {
        int pad = r.nextInt(3) == 0 ? r.nextInt(16) : 0;
        ByteBuffer b = r.nextBoolean() ? ByteBuffer.allocate(pad + data.length + pad)
                : ByteBuffer.allocateDirect(pad + data.length + pad);
        b.position(pad);
        b.put(data);
        b.position(pad).limit(pad + data.length);
        return b;
    }
}
