package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.MemoryDevice;

/** The kit on {@link MemoryDevice}, whose 1 MiB segments the slots and random ranges straddle. */
class MemoryDeviceKitTest extends DeviceKit {
    @Override
    public BlockDevice create(long size) {
        return new MemoryDevice(size);
    }

    @Override
    public boolean discardReadsZeroes() {
        return true;
    }
}
