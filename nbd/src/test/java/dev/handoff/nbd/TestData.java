package dev.handoff.nbd;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;

final class TestData {
    private TestData() {
    }

    /** {@code length} pseudo-random bytes determined by {@code seed}. */
    static byte[] pattern(long seed, int length) {
        byte[] b = new byte[length];
        new SplittableRandom(seed * 0x9E3779B97F4A7C15L + 1).nextBytes(b);
        return b;
    }

    static byte[] read(BlockDevice device, long offset, int length) throws DeviceException {
        ByteBuffer b = ByteBuffer.allocate(length);
        device.read(offset, b);
        return b.array();
    }

    /** Fills a device with pseudo-random bytes, 1 MiB at a time. */
    static void fill(BlockDevice device, long seed) throws DeviceException {
        int piece = 1 << 20;
        for (long off = 0; off < device.size(); off += piece) {
            int n = (int) Math.min(piece, device.size() - off);
            device.write(off, ByteBuffer.wrap(pattern(seed + off, n)));
        }
    }

    /** The first offset where the two devices differ, or -1. */
    static long firstDifference(BlockDevice a, BlockDevice b) throws DeviceException {
        if (a.size() != b.size()) {
            return Math.min(a.size(), b.size());
        }
        int piece = 1 << 20;
        for (long off = 0; off < a.size(); off += piece) {
            int n = (int) Math.min(piece, a.size() - off);
            byte[] x = read(a, off, n);
            byte[] y = read(b, off, n);
            int i = java.util.Arrays.mismatch(x, y);
            if (i >= 0) {
                return off + i;
            }
        }
        return -1;
    }
}
