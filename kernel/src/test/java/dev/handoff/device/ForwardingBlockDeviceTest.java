package dev.handoff.device;

import org.junit.jupiter.api.Test;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A forwarding device with nothing overridden is the device it wraps: every call forwarded (the
 * device contract runs on it in the test kit, ForwardingBlockDeviceKitTest).
 */
class ForwardingBlockDeviceTest {

    @Test
    void everyOperationOfTheInterfaceIsForwardedOnce() throws Exception {
        List<String> calls = new ArrayList<>();
        BlockDevice recording = new BlockDevice() {
            @Override
            public long size() {
                calls.add("size");
                return 8192;
            }

            @Override
            public void read(long offset, ByteBuffer dst) {
                calls.add("read " + offset + " " + dst.remaining());
            }

            @Override
            public void write(long offset, ByteBuffer src) {
                calls.add("write " + offset + " " + src.remaining());
            }

            @Override
            public void writeZeroes(long offset, long length) {
                calls.add("writeZeroes " + offset + " " + length);
            }

            @Override
            public void discard(long offset, long length) {
                calls.add("discard " + offset + " " + length);
            }

            @Override
            public long nextData(long offset) {
                calls.add("nextData " + offset);
                return 4096;
            }

            @Override
            public long nextHole(long offset) {
                calls.add("nextHole " + offset);
                return 4096;
            }

            @Override
            public void flush() {
                calls.add("flush");
            }

            @Override
            public void close() {
                calls.add("close");
            }
        };
        BlockDevice forwarding = new ForwardingBlockDevice(recording) { };

        assertThat(forwarding.size()).isEqualTo(8192);
        forwarding.read(1, ByteBuffer.allocate(2));
        forwarding.write(3, ByteBuffer.allocate(4));
        forwarding.writeZeroes(5, 6);
        forwarding.discard(7, 8);
        assertThat(forwarding.nextData(9)).isEqualTo(4096);
        assertThat(forwarding.nextHole(10)).isEqualTo(4096);
        forwarding.flush();
        forwarding.close();

        assertThat(calls).containsExactly("size", "read 1 2", "write 3 4", "writeZeroes 5 6", "discard 7 8",
                "nextData 9", "nextHole 10", "flush", "close");
    }

    /** A method added to the interface later, with a default, must be forwarded too, not answered by the default. */
    @Test
    void declaresEveryMethodOfTheInterface() {
        List<String> missing = new ArrayList<>();
        for (Method m : BlockDevice.class.getMethods()) {
            if (Modifier.isStatic(m.getModifiers())) {
                continue;
            }
            try {
                ForwardingBlockDevice.class.getDeclaredMethod(m.getName(), m.getParameterTypes());
            } catch (NoSuchMethodException e) {
                missing.add(m.getName() + Arrays.toString(m.getParameterTypes()));
            }
        }
        assertThat(missing).isEmpty();
    }
}
