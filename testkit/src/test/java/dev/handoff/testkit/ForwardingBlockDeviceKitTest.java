package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.ForwardingBlockDevice;
import dev.handoff.device.MemoryDevice;

/** The kit on a {@link ForwardingBlockDevice} with nothing overridden: the device it wraps, faults included. */
class ForwardingBlockDeviceKitTest extends DeviceKit {
    @Override
    public BlockDevice create(long size) {
        return new ForwardingBlockDevice(new MemoryDevice(size)) { };
    }

    @Override
    public boolean discardReadsZeroes() {
        return true;
    }

    @Override
    public Layering layering() {
        return backing -> new ForwardingBlockDevice(backing) { };
    }
}
