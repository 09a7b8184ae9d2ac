package dev.handoff.device;

import dev.handoff.sim.PropertyViolation;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The device contract catches broken devices: each decorator below breaks one clause of the
 * contract the way a real driver might, and {@link BlockDeviceProperties#check} must fail on it.
 */
class BrokenDeviceTest {

    /** Forwards everything; subclasses break one method. */
    private static class Forwarding implements BlockDevice {
        final BlockDevice inner;

        Forwarding(BlockDevice inner) {
            this.inner = inner;
        }

        public long size() {
            return inner.size();
        }

        public void read(long offset, ByteBuffer dst) throws DeviceException {
            inner.read(offset, dst);
        }

        public void write(long offset, ByteBuffer src) throws DeviceException {
            inner.write(offset, src);
        }

        public void writeZeroes(long offset, long length) throws DeviceException {
            inner.writeZeroes(offset, length);
        }

        public void discard(long offset, long length) throws DeviceException {
            inner.discard(offset, length);
        }

        public void flush() throws DeviceException {
            inner.flush();
        }

        public void close() throws DeviceException {
            inner.close();
        }
    }

    private static void assertCaught(BlockDevice broken, String property) {
        assertThatThrownBy(() -> BlockDeviceProperties.check(broken, 1, 400, true))
                .isInstanceOfSatisfying(PropertyViolation.class,
                        v -> org.assertj.core.api.Assertions.assertThat(v.property()).isEqualTo(property));
    }

    @Test
    void aWriteThatDropsItsLastByteAcrossA64KiBBoundaryIsCaught() {
        assertCaught(new Forwarding(new MemoryDevice(3 << 20)) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                long end = offset + src.remaining();
                if (offset >>> 16 != (end - 1) >>> 16 && src.remaining() > 1) {
                    src.limit(src.limit() - 1);
                    inner.write(offset, src);
                    src.limit(src.limit() + 1).position(src.limit());
                    return;
                }
                inner.write(offset, src);
            }
        }, "read-matches-model");
    }

    @Test
    void writeZeroesThatSkipsAPartialTailIsCaught() {
        assertCaught(new Forwarding(new MemoryDevice(3 << 20)) {
            @Override
            public void writeZeroes(long offset, long length) throws DeviceException {
                inner.writeZeroes(offset, length & ~511L);
            }
        }, "read-matches-model");
    }

    @Test
    void aReadThatIgnoresTheBufferPositionIsCaught() {
        assertCaught(new Forwarding(new MemoryDevice(1 << 20)) {
            @Override
            public void read(long offset, ByteBuffer dst) throws DeviceException {
                int limit = dst.limit();
                ByteBuffer fresh = ByteBuffer.allocate(dst.remaining());
                inner.read(offset, fresh);
                dst.clear();
                dst.put(fresh.array(), 0, Math.min(fresh.capacity(), dst.capacity()));
                dst.limit(limit).position(limit);
            }
        }, "read-matches-model");
    }
}
