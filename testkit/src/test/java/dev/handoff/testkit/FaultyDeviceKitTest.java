package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.FaultyDevice;
import dev.handoff.device.MemoryDevice;

/** The kit on {@link FaultyDevice} with no fault armed: the decorator is transparent, and passes faults of what it wraps through. */
class FaultyDeviceKitTest extends DeviceKit {
    @Override
    public BlockDevice create(long size) {
        return new FaultyDevice(new MemoryDevice(size), 42);
    }

    @Override
    public boolean discardReadsZeroes() {
        return true;
    }

    @Override
    public Layering layering() {
        return backing -> new FaultyDevice(backing, 7);
    }
}
