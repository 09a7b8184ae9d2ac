package dev.handoff.device;

import dev.handoff.device.FaultyDevice.Fault;
import dev.handoff.device.FaultyDevice.Op;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** FaultyDevice's rules; the device contract runs on it in the test kit (FaultyDeviceKitTest). */
class FaultyDeviceTest {

    @Test
    void errorOnOneOperationLeavesOthersAlone() throws Exception {
        FaultyDevice d = new FaultyDevice(new MemoryDevice(4096));
        d.inject(Fault.error(DeviceException.Kind.IO_ERROR).on(Op.WRITE));
        assertThatThrownBy(() -> d.write(0, ByteBuffer.wrap(new byte[] {1}))).isInstanceOf(DeviceException.class)
                .satisfies(e -> assertThat(((DeviceException) e).kind()).isEqualTo(DeviceException.Kind.IO_ERROR));
        d.read(0, ByteBuffer.allocate(1));
        d.flush();
        assertThat(read(d.inner(), 0, 1)).containsExactly(0); // nothing applied
    }

    @Test
    void rangeAfterAndTimesNarrowAFault() throws Exception {
        FaultyDevice d = new FaultyDevice(new MemoryDevice(8192));
        FaultyDevice.Armed a = d.inject(Fault.error(DeviceException.Kind.NO_SPACE).on(Op.WRITE).range(4096, 10).after(1).times(2));
        d.write(0, ByteBuffer.allocate(100));           // outside the range
        d.write(4090, ByteBuffer.allocate(10));         // first match: let through
        assertThatThrownBy(() -> d.write(4100, ByteBuffer.allocate(1))).isInstanceOf(DeviceException.class);
        assertThatThrownBy(() -> d.write(4100, ByteBuffer.allocate(1))).isInstanceOf(DeviceException.class);
        d.write(4100, ByteBuffer.allocate(1));          // used up
        assertThat(a.firedCount()).isEqualTo(2);
        assertThat(d.injectedCount()).isEqualTo(2);
    }

    @Test
    void probabilityIsReproducibleFromTheSeed() throws Exception {
        assertThat(pattern(99)).isEqualTo(pattern(99));
        assertThat(pattern(99)).isNotEqualTo(pattern(100));
        assertThat(pattern(99)).contains(true, false);
    }

    private static List<Boolean> pattern(long seed) throws Exception {
        FaultyDevice d = new FaultyDevice(new MemoryDevice(4096), seed);
        d.inject(Fault.error(DeviceException.Kind.IO_ERROR).on(Op.READ).probability(0.5));
        List<Boolean> failed = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            try {
                d.read(0, ByteBuffer.allocate(1));
                failed.add(false);
            } catch (DeviceException e) {
                failed.add(true);
            }
        }
        return failed;
    }

    @Test
    void tornWriteAppliesHalfThenFails() throws Exception {
        FaultyDevice d = new FaultyDevice(new MemoryDevice(4096));
        d.inject(Fault.error(DeviceException.Kind.IO_ERROR).on(Op.WRITE).torn().times(1));
        assertThatThrownBy(() -> d.write(0, ByteBuffer.wrap(new byte[] {1, 1, 1, 1}))).isInstanceOf(DeviceException.class);
        assertThat(read(d, 0, 4)).containsExactly(1, 1, 0, 0);
    }

    @Test
    void disarmedFaultStopsFiring() throws Exception {
        FaultyDevice d = new FaultyDevice(new MemoryDevice(4096));
        FaultyDevice.Armed a = d.inject(Fault.error(DeviceException.Kind.IO_ERROR).on(Op.FLUSH));
        assertThatThrownBy(d::flush).isInstanceOf(DeviceException.class);
        a.disarm();
        d.flush();
    }

    @Test
    void latencyDelaysTheOperation() throws Exception {
        FaultyDevice d = new FaultyDevice(new MemoryDevice(4096));
        d.inject(Fault.latency(Duration.ofMillis(30)).on(Op.READ).times(1));
        long t0 = System.nanoTime();
        d.read(0, ByteBuffer.allocate(1));
        assertThat(System.nanoTime() - t0).isGreaterThanOrEqualTo(Duration.ofMillis(30).toNanos());
        assertThat(d.injectedCount()).isEqualTo(1);
    }

    @Test
    void invalidRulesAreRejected() {
        assertThatThrownBy(() -> Fault.error(DeviceException.Kind.IO_ERROR).probability(0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Fault.error(DeviceException.Kind.IO_ERROR).times(0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Fault.error(DeviceException.Kind.IO_ERROR).range(-1, 5)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Fault.latency(Duration.ZERO)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Fault.latency(Duration.ofMillis(1)).torn()).isInstanceOf(IllegalStateException.class);
    }

    private static byte[] read(BlockDevice d, long off, int len) throws DeviceException {
        ByteBuffer b = ByteBuffer.allocate(len);
        d.read(off, b);
        return b.array();
    }
}
