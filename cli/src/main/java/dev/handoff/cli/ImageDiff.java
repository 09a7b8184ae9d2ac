package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Collectors;

/** Compares two devices byte for byte outside some ranges: the demo's "target = source at the pivot". */
final class ImageDiff {
    private static final int BLOCK = 1 << 20;

    private ImageDiff() {
    }

    /** The first offset where {@code a} and {@code b} differ outside {@code excluded} ({offset, length} pairs), or -1. */
    static long firstDifference(BlockDevice a, BlockDevice b, List<long[]> excluded) throws DeviceException {
        List<long[]> ranges = merge(excluded);
        ByteBuffer x = ByteBuffer.allocateDirect(BLOCK);
        ByteBuffer y = ByteBuffer.allocateDirect(BLOCK);
        int r = 0;
        for (long off = 0; off < a.size(); off += BLOCK) {
            int n = (int) Math.min(BLOCK, a.size() - off);
            x.clear().limit(n);
            y.clear().limit(n);
            a.read(off, x);
            b.read(off, y);
            long end = off + n;
            while (r < ranges.size() && ranges.get(r)[1] <= off) {
                r++;
            }
            long pos = off;
            for (int k = r; k < ranges.size() && ranges.get(k)[0] < end && pos < end; k++) {
                long m = mismatch(x, y, off, pos, Math.min(end, ranges.get(k)[0]));
                if (m >= 0) {
                    return m;
                }
                pos = Math.max(pos, ranges.get(k)[1]);
            }
            long m = mismatch(x, y, off, pos, end);
            if (m >= 0) {
                return m;
            }
        }
        return -1;
    }

    /** The first offset in [from, to) where the blocks read at {@code base} differ, or -1. */
    private static long mismatch(ByteBuffer x, ByteBuffer y, long base, long from, long to) {
        if (to <= from) {
            return -1;
        }
        int a = (int) (from - base);
        int len = (int) (to - from);
        int m = x.slice(a, len).mismatch(y.slice(a, len));
        return m < 0 ? -1 : from + m;
    }

    /** Sorted, merged [start, end) ranges from {offset, length} pairs. */
    static List<long[]> merge(List<long[]> ranges) {
        List<long[]> sorted = ranges.stream().map(r -> new long[] {r[0], r[0] + r[1]})
                .sorted(Comparator.comparingLong(r -> r[0])).collect(Collectors.toList());
        List<long[]> merged = new ArrayList<>();
        for (long[] r : sorted) {
            if (!merged.isEmpty() && r[0] <= merged.get(merged.size() - 1)[1]) {
                long[] last = merged.get(merged.size() - 1);
                last[1] = Math.max(last[1], r[1]);
            } else {
                merged.add(r);
            }
        }
        return merged;
    }
}
