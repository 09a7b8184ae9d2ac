package dev.handoff.properties.device;

import dev.handoff.device.BlockDevice;
import dev.handoff.properties.sim.SimDevice;
import dev.handoff.testkit.DeviceKit;

/** The test kit on the simulators' own {@link SimDevice}: the model they trust must be a device. */
class SimDeviceKitTest extends DeviceKit {
    @Override
    public BlockDevice create(long size) {
        return new SimDevice("sim", Math.toIntExact(size), 7);
    }

    @Override
    public boolean discardReadsZeroes() {
        return true;
    }
}
