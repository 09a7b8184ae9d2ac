package dev.handoff.device;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** FileDevice's own promises; the device contract runs on it in the test kit (FileDeviceKitTest). */
class FileDeviceTest {
    @TempDir
    Path dir;

    @Test
    void createMakesAFileOfTheRightSizeAndRefusesToOverwrite() throws Exception {
        Path p = dir.resolve("a.raw");
        try (FileDevice d = FileDevice.create(p, 12345)) {
            assertThat(Files.size(p)).isEqualTo(12345);
            assertThat(d.size()).isEqualTo(12345);
        }
        assertThatThrownBy(() -> FileDevice.create(p, 10)).isInstanceOf(DeviceException.class)
                .hasMessageContaining("already exists");
        assertThat(Files.size(p)).isEqualTo(12345);
    }

    @Test
    void dataWrittenIsInTheFileAfterFlush() throws Exception {
        Path p = dir.resolve("b.raw");
        try (FileDevice d = FileDevice.create(p, 4096)) {
            d.write(100, ByteBuffer.wrap(new byte[] {42, 43}));
            d.flush();
        }
        byte[] bytes = Files.readAllBytes(p);
        assertThat(bytes[100]).isEqualTo((byte) 42);
        assertThat(bytes[101]).isEqualTo((byte) 43);
        try (FileDevice d = FileDevice.open(p)) {
            assertThat(d.size()).isEqualTo(4096);
            assertThat(read(d, 100, 2)).containsExactly(42, 43);
        }
    }

    @Test
    void readOnlyDeviceRefusesWritesWithReadOnlyKind() throws Exception {
        Path p = dir.resolve("c.raw");
        FileDevice.create(p, 4096).close();
        try (FileDevice d = FileDevice.open(p, true)) {
            assertThatThrownBy(() -> d.write(0, ByteBuffer.wrap(new byte[] {1}))).isInstanceOf(DeviceException.class)
                    .satisfies(e -> assertThat(((DeviceException) e).kind()).isEqualTo(DeviceException.Kind.READ_ONLY));
            d.flush(); // nothing to make durable, not an error
        }
        assertThat(Files.readAllBytes(p)).containsOnly(0);
    }

    @Test
    void openingAMissingImageSaysSo() {
        assertThatThrownBy(() -> FileDevice.open(dir.resolve("missing.raw"))).isInstanceOf(DeviceException.class)
                .hasMessageContaining("no such image");
    }

    private static byte[] read(BlockDevice d, long off, int len) throws DeviceException {
        ByteBuffer b = ByteBuffer.allocate(len);
        d.read(off, b);
        return b.array();
    }
}
