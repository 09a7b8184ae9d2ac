package dev.handoff.ownership;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import java.nio.ByteBuffer;

/**
 * Logs every operation that reaches the wrapped device (begin and end of each mutation), so a
 * test can prove that nothing reached it, or in which order things did.
 */
final class RecordingDevice implements BlockDevice {
    private final BlockDevice inner;
    private final EventLog log;

    RecordingDevice(BlockDevice inner, EventLog log) {
        this.inner = inner;
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

    @Override
    public long size() {
        return inner.size();
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        log.add("read@" + offset);
        inner.read(offset, dst);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        log.add("write:begin@" + offset);
        try {
            inner.write(offset, src);
        } finally {
            log.add("write:end@" + offset);
        }
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        log.add("zero:begin@" + offset);
        try {
            inner.writeZeroes(offset, length);
        } finally {
            log.add("zero:end@" + offset);
        }
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        log.add("discard:begin@" + offset);
        try {
            inner.discard(offset, length);
        } finally {
            log.add("discard:end@" + offset);
        }
    }

    @Override
    public void flush() throws DeviceException {
        log.add("flush:begin");
        try {
            inner.flush();
        } finally {
            log.add("flush:end");
        }
    }

    @Override
    public void close() throws DeviceException {
        log.add("close");
        inner.close();
    }
}
