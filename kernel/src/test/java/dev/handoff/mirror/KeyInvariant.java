package dev.handoff.mirror;

import dev.handoff.device.DeviceException;

import java.util.Arrays;

/** DESIGN §3.6: the key invariant as an executable check: a chunk neither dirty nor in flight is equal on both sides. */
final class KeyInvariant {
    private KeyInvariant() {
    }

    static void check(JobHarness h, DirtyBitmap bitmap, InFlightChunks claims) throws DeviceException {
        byte[] s = JobHarness.contents(h.source.inner());
        byte[] t = JobHarness.contents(h.target.inner());
        for (long c = 0; c < bitmap.chunkCount(); c++) {
            if (bitmap.isDirty(c) || claims.isClaimed(c)) {
                continue;
            }
            int from = (int) bitmap.offsetOf(c);
            int to = (int) Math.min(s.length, bitmap.offsetOf(c + 1));
            if (!Arrays.equals(s, from, to, t, from, to)) {
                throw new AssertionError("chunk " + c + " is clean and not in flight but differs on the target");
            }
        }
    }
}
