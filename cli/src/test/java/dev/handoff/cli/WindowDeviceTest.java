package dev.handoff.cli;

import dev.handoff.device.DeviceException;
import dev.handoff.device.MemoryDevice;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The windows {@code handoff verify} gives the test kit over one image: those open at once never
 * share a byte (a mirror's source and target are two of them), a closed one's place is taken again,
 * and each is zeroed when made.
 */
class WindowDeviceTest {

    @Test
    void windowsOpenAtOnceNeverShareAByteAndAClosedOnesPlaceIsReused() throws Exception {
        MemoryDevice base = new MemoryDevice(1 << 20);
        WindowDevice.Placer placer = new WindowDevice.Placer(base, 1 << 20);
        WindowDevice a = placer.zeroed(300_000);
        WindowDevice b = placer.zeroed(300_000);
        a.write(0, ByteBuffer.wrap(filled(300_000, 1)));
        b.write(0, ByteBuffer.wrap(filled(300_000, 2)));
        assertThat(read(a, 300_000)).isEqualTo(filled(300_000, 1));
        assertThat(read(b, 300_000)).isEqualTo(filled(300_000, 2));
        assertThat(b.nextData(0)).isZero();
        assertThat(b.nextHole(0)).isEqualTo(300_000);

        a.close();
        a.close(); // a second close changes nothing
        WindowDevice c = placer.zeroed(200_000); // fits where a was, before b
        assertThat(read(c, 200_000)).isEqualTo(new byte[200_000]);
        assertThat(read(b, 300_000)).isEqualTo(filled(300_000, 2));
        assertThatThrownBy(() -> a.read(0, ByteBuffer.allocate(1))).isInstanceOfSatisfying(DeviceException.class,
                e -> assertThat(e.kind()).isEqualTo(DeviceException.Kind.CLOSED));
    }

    @Test
    void aWindowThatDoesNotFitBesideTheOpenOnesIsRefusedWithTheReason() throws Exception {
        WindowDevice.Placer placer = new WindowDevice.Placer(new MemoryDevice(1 << 20), 1 << 20);
        placer.zeroed(600_000);
        assertThatThrownBy(() -> placer.zeroed(600_000)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("no room for a window of 600000 bytes");
    }

    private static byte[] filled(int n, int value) {
        byte[] b = new byte[n];
        java.util.Arrays.fill(b, (byte) value);
        return b;
    }

    private static byte[] read(WindowDevice d, int n) throws DeviceException {
        ByteBuffer b = ByteBuffer.allocate(n);
        d.read(0, b);
        return b.array();
    }
}
