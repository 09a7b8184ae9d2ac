package dev.handoff.ownership;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;
import java.nio.ByteBuffer;

/**
 * Logs every operation that reaches the wrapped device (begin and end of each mutation), so a
 * test can prove that nothing reached it, or in which order things did.
 */
final class RecordingDevice extends ForwardingBlockDevice {
    private final EventLog log;

    RecordingDevice(BlockDevice inner, EventLog log) {
        super(inner);
        this.log = log;
    }

    /** Mutations (write, write-zeroes, discard, flush) that reached the device. */
    long mutations() {
        return log.count("write:begin") + log.count("zero:begin") + log.count("discard:begin") + log.count("flush:begin");
    }

    long flushes() {
        return log.count("flush:begin");
    }

    long reads() {
        return log.count("read");
    }

    /** An operation between its begin and end entries; the end is logged whether it fails or not. */
    private interface Mutation {
        void run() throws DeviceException;
    }

    private void logged(String begin, String end, Mutation m) throws DeviceException {
        log.add(begin);
        try {
            m.run();
        } finally {
            log.add(end);
        }
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        log.add("read@" + offset);
        super.read(offset, dst);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        logged("write:begin@" + offset, "write:end@" + offset, () -> super.write(offset, src));
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        logged("zero:begin@" + offset, "zero:end@" + offset, () -> super.writeZeroes(offset, length));
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        logged("discard:begin@" + offset, "discard:end@" + offset, () -> super.discard(offset, length));
    }

    @Override
    public void flush() throws DeviceException {
        logged("flush:begin", "flush:end", super::flush);
    }

    @Override
    public void close() throws DeviceException {
        log.add("close");
        super.close();
    }
}
