package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;

import java.nio.ByteBuffer;

/** A device that runs a hook once, just before the next write reaches the inner device. */
final class HookDevice extends ForwardingBlockDevice {
    private Runnable beforeNextWrite;

    HookDevice(BlockDevice inner) {
        super(inner);
    }

    void beforeNextWrite(Runnable hook) {
        this.beforeNextWrite = hook;
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        Runnable hook = beforeNextWrite;
        beforeNextWrite = null;
        if (hook != null) {
            hook.run();
        }
        super.write(offset, src);
    }
}
