package dev.handoff.device;

/** The contract on {@link MemoryDevice}, whose sizes straddle its 1 MiB segments. */
class MemoryDevicePropertiesTest extends BlockDeviceProperties {
    @Override
    protected BlockDevice create(long size) {
        return new MemoryDevice(size);
    }
}
