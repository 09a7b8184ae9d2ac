package dev.handoff.ownership;

import dev.handoff.device.MemoryDevice;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** A busy lock is told apart from an inactive handle by type, not by message. */
class LockRefusalTest {
    @TempDir
    Path dir;

    @Test
    void activatingAnImageAnotherHandleHoldsIsALockRefusal() throws Exception {
        MemoryDevice device = new MemoryDevice(1 << 20);
        try (OwnedImage a = OwnedImage.openMemory(device, "a", OwnedImage.State.ACTIVE);
             OwnedImage b = OwnedImage.openMemory(device, "b", OwnedImage.State.INACTIVE)) {
            assertThatThrownBy(b::activate).isInstanceOf(ImageLockedException.class)
                    .hasMessageContaining("lock");
            assertThat(b.state()).isEqualTo(OwnedImage.State.INACTIVE);
            assertThat(a.state()).isEqualTo(OwnedImage.State.ACTIVE);
        }
    }

    @Test
    void writingThroughAnInactiveHandleIsNotALockRefusal() throws Exception {
        MemoryDevice device = new MemoryDevice(1 << 20);
        try (OwnedImage b = OwnedImage.openMemory(device, "b", OwnedImage.State.INACTIVE)) {
            assertThatThrownBy(() -> b.write(0, ByteBuffer.allocate(1)))
                    .isInstanceOf(ImageInactiveException.class)
                    .isNotInstanceOf(ImageLockedException.class);
        }
    }
}
