package dev.handoff.ownership;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

/**
 * Handles assembled from parts a check gives, outside the process-wide registries that
 * {@link OwnedImage#openMemory} keeps, published in the kernel's test-jar: a check that restores
 * static state between runs (Lincheck's model checker does) would otherwise hand a lock held by one
 * run's handle to the next run's. The handle is the kernel's own, built by the same factory
 * ({@code ImageOpener.assemble}) with the production tuning; only where its record and lock live
 * is the check's choice.
 *
 * <p>Threading: each method from any thread; the handles it returns are as thread-safe as any.
 */
public final class UnregisteredImages {
    private UnregisteredImages() {
    }

    /** A record store in memory, empty until a handle writes it; {@code name} is the image's. */
    public static RecordStore memoryRecords(String name) {
        return new MemoryRecordStore(name);
    }

    /**
     * A handle on {@code device} whose record is in {@code records} and whose lock is {@code lock},
     * having read the record; {@code initial} ACTIVE then activates it, as an opening does.
     * Closing the handle does not close the device.
     */
    public static OwnedImage assemble(BlockDevice device, RecordStore records, OwnershipLock lock, String ownerId,
            String name, OwnedImage.State initial) throws DeviceException {
        return ImageOpener.assemble(device, () -> { }, records, lock, ownerId, name, initial, ImageTuning.DEFAULT);
    }
}
