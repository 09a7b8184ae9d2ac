package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;

/**
 * How the kit gets the devices it checks: the one thing a user writes. {@link #create} is required;
 * the rest are capabilities a device may offer, and the checks that need a capability the factory
 * does not offer are skipped (reported as such, never passed).
 *
 * <p>Threading: the kit calls the factory from one thread at a time; the devices it returns are
 * then used from many threads at once, as {@link BlockDevice}'s contract allows.
 */
public interface DeviceFactory {

    /** A fresh, all-zero, writable device of {@code size} bytes. The kit closes it. */
    BlockDevice create(long size) throws Exception;

    /**
     * Whether discarded bytes read back as zeroes. If not, the kit only requires them to read back
     * the same until written again (what {@link BlockDevice#discard} promises).
     */
    default boolean discardReadsZeroes() {
        return false;
    }

    /**
     * The device's power loss, if it can simulate one: then the kit checks that every write flushed
     * before the loss survives it. Null (the default): the durability check is skipped.
     */
    default PowerLoss powerLoss() {
        return null;
    }

    /**
     * How to stack the device on a backing device the kit gives it, for devices that forward to
     * another one (a filter, a network client, an image format): then the kit injects faults into
     * the backing device and checks that they reach the caller with their kind. Null (the default):
     * the fault-propagation check is skipped.
     */
    default Layering layering() {
        return null;
    }

    /** A simulated power loss under a device. */
    @FunctionalInterface
    interface PowerLoss {
        /**
         * Cuts the power under {@code device} and opens it again. The returned device (of the same
         * size) must hold every write that was flushed before this call; a write not flushed may
         * survive whole, in part or not at all. The kit no longer uses {@code device}: this method
         * closes or abandons it. The kit closes the returned device.
         */
        BlockDevice reopen(BlockDevice device) throws Exception;
    }

    /** A device stacked on a backing device. */
    @FunctionalInterface
    interface Layering {
        /**
         * A writable device of {@code backing.size()} bytes whose reads, writes, write-zeroes and
         * flushes reach {@code backing} (all zero). The kit closes the returned device, then
         * {@code backing}.
         */
        BlockDevice over(BlockDevice backing) throws Exception;
    }
}
