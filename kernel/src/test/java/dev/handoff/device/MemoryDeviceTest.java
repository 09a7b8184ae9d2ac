package dev.handoff.device;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** MemoryDevice's own promises; the device contract runs on it in the test kit (MemoryDeviceKitTest). */
class MemoryDeviceTest {

    @Test
    void allocatesOnlyWrittenSegments() throws Exception {
        MemoryDevice big = new MemoryDevice(1L << 40);
        assertThat(big.allocatedBytes()).isZero();
        big.write(5L << 30, ByteBuffer.wrap(new byte[] {1}));
        assertThat(big.allocatedBytes()).isEqualTo(MemoryDevice.SEGMENT_SIZE);
        big.writeZeroes(5L << 30, MemoryDevice.SEGMENT_SIZE);
        assertThat(big.allocatedBytes()).isZero();
    }

    @Test
    void discardReadsAsZeroes() throws Exception {
        MemoryDevice device = new MemoryDevice(4096);
        device.write(0, ByteBuffer.wrap(new byte[] {1, 2, 3}));
        device.discard(0, 2);
        assertThat(read(device, 0, 3)).containsExactly(0, 0, 3);
    }

    @Test
    void rejectsNegativeSize() {
        assertThatThrownBy(() -> new MemoryDevice(-1)).isInstanceOf(IllegalArgumentException.class);
    }

    private static byte[] read(BlockDevice d, long off, int len) throws DeviceException {
        ByteBuffer b = ByteBuffer.allocate(len);
        d.read(off, b);
        return b.array();
    }
}
