package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.nio.ByteBuffer;

/** A device that runs a hook once, just before the next write reaches the inner device. */
final class HookDevice implements BlockDevice {
    private final BlockDevice inner;
    private Runnable beforeNextWrite;

    HookDevice(BlockDevice inner) {
        this.inner = inner;
    }

    void beforeNextWrite(Runnable hook) {
        this.beforeNextWrite = hook;
    }

    @Override
    public long size() {
        return inner.size();
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        inner.read(offset, dst);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        Runnable hook = beforeNextWrite;
        beforeNextWrite = null;
        if (hook != null) {
            hook.run();
        }
        inner.write(offset, src);
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        inner.writeZeroes(offset, length);
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        inner.discard(offset, length);
    }

    @Override
    public void flush() throws DeviceException {
        inner.flush();
    }

    @Override
    public void close() throws DeviceException {
        inner.close();
    }
}
