package dev.handoff.device;

/** The contract on {@link FaultyDevice} with no fault armed: the decorator itself is transparent. */
class FaultyDevicePropertiesTest extends BlockDeviceProperties {
    @Override
    protected BlockDevice create(long size) {
        return new FaultyDevice(new MemoryDevice(size), 42);
    }
}
