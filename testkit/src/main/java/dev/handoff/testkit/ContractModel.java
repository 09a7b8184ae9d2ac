package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The model-based half of the sequential contract: random operations on a device and on a byte
 * array must agree. A disagreement names the property it breaks: {@code read-matches-model} (a
 * read returns the last write, write-zeroes or discard of each byte; a discarded byte is stable,
 * and zero where the factory says so), {@code buffer-positions} (read and write advance the
 * buffer's position to its limit and leave the limit alone), {@code size} (never changes).
 */
final class ContractModel {
    private ContractModel() {
    }

    static void check(BlockDevice device, long seed, int operations, boolean discardReadsZeroes)
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
                int limit = src.limit();
                device.write(off, src);
                if (src.position() != limit || src.limit() != limit) {
                    throw violation("buffer-positions", i, size, "write(%d, %d bytes) left position %d limit %d, expected both %d",
                            off, len, src.position(), src.limit(), limit);
                }
                System.arraycopy(data, 0, model, (int) off, len);
            } else if (op < 7) {
                ByteBuffer dst = buffer(r, new byte[len]);
                int pos = dst.position();
                int limit = dst.limit();
                device.read(off, dst);
                if (dst.position() != limit || dst.limit() != limit) {
                    throw violation("buffer-positions", i, size, "read(%d, %d bytes) left position %d limit %d, expected both %d",
                            off, len, dst.position(), dst.limit(), limit);
                }
                byte[] got = new byte[len];
                dst.position(pos);
                dst.get(got);
                int at = Arrays.mismatch(got, 0, len, model, (int) off, (int) off + len);
                if (at >= 0) {
                    throw violation("read-matches-model", i, size, "read(%d, %d bytes) returned %d at byte %d where the last write put %d",
                            off, len, got[at], off + at, model[(int) off + at]);
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
                    throw violation("read-matches-model", i, size, "discarded range %d+%d does not read back the same twice",
                            off, len);
                }
                if (discardReadsZeroes) {
                    Arrays.fill(model, (int) off, (int) off + len, (byte) 0);
                    int at = Arrays.mismatch(first.array(), 0, len, model, (int) off, (int) off + len);
                    if (at >= 0) {
                        throw violation("read-matches-model", i, size, "discarded byte %d reads %d, not zero", off + at,
                                first.array()[at]);
                    }
                } else {
                    System.arraycopy(first.array(), 0, model, (int) off, len);
                }
            } else {
                device.flush();
            }
            if (device.size() != size) {
                throw violation("size", i, size, "size changed to %d", device.size());
            }
        }
        ByteBuffer all = ByteBuffer.allocate((int) size);
        device.read(0, all);
        int at = Arrays.mismatch(all.array(), model);
        if (at >= 0) {
            throw violation("read-matches-model", operations, size, "at the end byte %d is %d where the last write put %d",
                    at, all.array()[at], model[at]);
        }
    }

    private static Violation violation(String property, int operation, long size, String format, Object... args) {
        return new Violation(property + " (device of " + size + " bytes, operation " + operation + "): "
                + String.format(java.util.Locale.ROOT, format, args));
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
