package dev.handoff.device;

import dev.handoff.sim.PropertyViolation;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The device contract catches broken devices: each decorator below breaks one clause of the
 * contract the way a real driver might (a {@link ForwardingBlockDevice} that overrides one
 * method), and {@link BlockDeviceProperties#check} must fail on it.
 */
class BrokenDeviceTest {

    private static void assertCaught(BlockDevice broken, String property) {
        assertThatThrownBy(() -> BlockDeviceProperties.check(broken, 1, 400, true))
                .isInstanceOfSatisfying(PropertyViolation.class,
                        v -> org.assertj.core.api.Assertions.assertThat(v.property()).isEqualTo(property));
    }

    @Test
    void aWriteThatDropsItsLastByteAcrossA64KiBBoundaryIsCaught() {
        assertCaught(new ForwardingBlockDevice(new MemoryDevice(3 << 20)) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                long end = offset + src.remaining();
                if (offset >>> 16 != (end - 1) >>> 16 && src.remaining() > 1) {
                    src.limit(src.limit() - 1);
                    super.write(offset, src);
                    src.limit(src.limit() + 1).position(src.limit());
                    return;
                }
                super.write(offset, src);
            }
        }, "read-matches-model");
    }

    @Test
    void writeZeroesThatSkipsAPartialTailIsCaught() {
        assertCaught(new ForwardingBlockDevice(new MemoryDevice(3 << 20)) {
            @Override
            public void writeZeroes(long offset, long length) throws DeviceException {
                super.writeZeroes(offset, length & ~511L);
            }
        }, "read-matches-model");
    }

    @Test
    void aReadThatIgnoresTheBufferPositionIsCaught() {
        assertCaught(new ForwardingBlockDevice(new MemoryDevice(1 << 20)) {
            @Override
            public void read(long offset, ByteBuffer dst) throws DeviceException {
                int limit = dst.limit();
                ByteBuffer fresh = ByteBuffer.allocate(dst.remaining());
                super.read(offset, fresh);
                dst.clear();
                dst.put(fresh.array(), 0, Math.min(fresh.capacity(), dst.capacity()));
                dst.limit(limit).position(limit);
            }
        }, "read-matches-model");
    }
}
