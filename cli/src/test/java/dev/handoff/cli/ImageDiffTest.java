package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.handoff.device.MemoryDevice;
import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The demo's comparison of target and source outside the ranges written after the pivot. */
class ImageDiffTest {
    private static final long SIZE = 3L << 20;

    private static MemoryDevice filled() throws Exception {
        MemoryDevice d = new MemoryDevice(SIZE);
        byte[] b = new byte[(int) SIZE];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) (i * 31 + 7);
        }
        d.write(0, ByteBuffer.wrap(b));
        return d;
    }

    private static void poke(MemoryDevice d, long at) throws Exception {
        ByteBuffer one = ByteBuffer.allocate(1);
        d.read(at, one);
        one.put(0, (byte) (one.get(0) ^ 0x40)).rewind();
        d.write(at, one);
    }

    @Test
    void equalDevicesHaveNoDifference() throws Exception {
        assertThat(ImageDiff.firstDifference(filled(), filled(), List.of())).isEqualTo(-1);
    }

    @Test
    void findsADifferenceOutsideTheExcludedRangesAndIgnoresThoseInside() throws Exception {
        MemoryDevice a = filled();
        MemoryDevice b = filled();
        long inside = (1L << 20) - 3; // in an excluded range that spans a block boundary
        poke(b, inside);
        List<long[]> excluded = List.of(new long[] {(1L << 20) - 10, 20}, new long[] {5, 1});
        assertThat(ImageDiff.firstDifference(a, b, excluded)).isEqualTo(-1);
        long outside = (2L << 20) + 12345;
        poke(b, outside);
        assertThat(ImageDiff.firstDifference(a, b, excluded)).isEqualTo(outside);
        poke(b, (1L << 20) + 10); // the first byte after the excluded range
        assertThat(ImageDiff.firstDifference(a, b, excluded)).isEqualTo((1L << 20) + 10);
    }

    @Test
    void mergesOverlappingRanges() {
        List<long[]> merged = ImageDiff.merge(List.of(new long[] {10, 5}, new long[] {0, 12}, new long[] {30, 1}));
        assertThat(merged).hasSize(2);
        assertThat(merged.get(0)).containsExactly(0, 15);
        assertThat(merged.get(1)).containsExactly(30, 31);
    }
}
