package dev.handoff.ownership;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import java.nio.ByteBuffer;

/**
 * A disk with a volatile write cache: writes are visible at once but durable only after a flush;
 * {@link #crash()} throws away everything written since the last flush, as a power loss or a
 * host crash under a migrating VM would.
 */
final class VolatileCacheDevice implements BlockDevice {
    private final byte[] durable;
    private final byte[] current;

    VolatileCacheDevice(int size) {
        durable = new byte[size];
        current = new byte[size];
    }

    synchronized void crash() {
        System.arraycopy(durable, 0, current, 0, current.length);
    }

    @Override
    public long size() {
        return current.length;
    }

    @Override
    public synchronized void read(long offset, ByteBuffer dst) throws DeviceException {
        DeviceException.checkRange(offset, dst.remaining(), current.length);
        dst.put(current, (int) offset, dst.remaining());
    }

    @Override
    public synchronized void write(long offset, ByteBuffer src) throws DeviceException {
        DeviceException.checkRange(offset, src.remaining(), current.length);
        src.get(current, (int) offset, src.remaining());
    }

    @Override
    public synchronized void writeZeroes(long offset, long length) throws DeviceException {
        DeviceException.checkRange(offset, length, current.length);
        java.util.Arrays.fill(current, (int) offset, (int) (offset + length), (byte) 0);
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        writeZeroes(offset, length);
    }

    @Override
    public synchronized void flush() {
        System.arraycopy(current, 0, durable, 0, current.length);
    }

    @Override
    public void close() {
    }
}
