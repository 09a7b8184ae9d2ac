package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.nio.ByteBuffer;
import java.util.Arrays;

/** Small I/O helpers shared by the checks. */
final class Io {
    private Io() {
    }

    static byte[] read(BlockDevice d, long offset, int length) throws DeviceException {
        ByteBuffer b = ByteBuffer.allocate(length);
        d.read(offset, b);
        return b.array();
    }

    static void write(BlockDevice d, long offset, byte[] data) throws DeviceException {
        d.write(offset, ByteBuffer.wrap(data));
    }

    static byte[] filled(int length, int value) {
        byte[] b = new byte[length];
        Arrays.fill(b, (byte) value);
        return b;
    }

    @FunctionalInterface
    interface Call {
        void run() throws Exception;
    }

    /** Runs {@code call}, which must fail with a DeviceException of {@code kind}; {@code what} names it. */
    static void expectKind(DeviceException.Kind kind, String what, Call call) throws Exception {
        try {
            call.run();
        } catch (DeviceException e) {
            if (e.kind() != kind) {
                throw Violation.of("%s failed with %s (%s), expected %s", what, e.kind(), e.getMessage(), kind);
            }
            return;
        } catch (RuntimeException e) {
            throw Violation.of("%s threw %s, expected a DeviceException of kind %s", what, e, kind);
        }
        throw Violation.of("%s succeeded, expected a DeviceException of kind %s", what, kind);
    }

    /** Closes quietly, for clean-up after a failure already being reported. */
    static void closeQuietly(AutoCloseable c) {
        if (c == null) {
            return;
        }
        try {
            c.close();
        } catch (Exception ignored) {
            // the check's own failure, if any, is what the user needs to see
        }
    }
}
