package dev.handoff.device;

import dev.handoff.sim.SimDevice;

/** The contract on the simulators' own {@link SimDevice}: the model they trust must be a device. */
class SimDevicePropertiesTest extends BlockDeviceProperties {
    @Override
    protected long[] sizes() {
        return new long[] {1, 4095, 65_536, (1 << 20) + 3};
    }

    @Override
    protected BlockDevice create(long size) {
        return new SimDevice("sim", (int) size, 7);
    }
}
