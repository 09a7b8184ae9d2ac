package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.MemoryDevice;
import dev.handoff.ownership.OwnedImage;

/**
 * The kit on an active {@link OwnedImage} (over a memory device, with the in-process record and
 * lock): ownership adds admission, epochs and fencing to every operation, and must keep the device
 * contract for its holder. Its layering opens the image on the kit's backing device.
 */
class OwnedImageKitTest extends DeviceKit {
    @Override
    public BlockDevice create(long size) throws Exception {
        return OwnedImage.openMemory(new MemoryDevice(size), "kit", OwnedImage.State.ACTIVE);
    }

    @Override
    public boolean discardReadsZeroes() {
        return true;
    }

    @Override
    public Layering layering() {
        return backing -> OwnedImage.openMemory(backing, "kit", OwnedImage.State.ACTIVE);
    }
}
