package dev.handoff.ownership;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import java.nio.file.Path;
import java.util.Objects;
import java.util.function.LongSupplier;

/**
 * Handles assembled from parts a check gives, outside the process-wide registries that
 * {@link OwnedImage#openMemory} keeps, published in the kernel's test-jar: a check that restores
 * static state between runs (Lincheck's model checker does) would otherwise hand a lock held by one
 * run's handle to the next run's, and a simulator needs its own record store, lock and clock. The
 * handle is the kernel's own, built by the same factory ({@code ImageOpener.assemble}), with the
 * production tuning or a simulator's (the fencing recheck interval measured on a virtual clock);
 * only where its record and lock live, and what time it reads, is the check's choice.
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
     * The sidecar record store of {@link OwnedImage#openFile} at {@code sidecar}, on any file system
     * (a {@code dev.handoff.fs.CrashFileSystem}, to fail or cut its writes), its files with the
     * process's owner and umask.
     */
    public static RecordStore sidecarRecords(Path sidecar) {
        return new SidecarRecordStore(sidecar);
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

    /**
     * As {@link #assemble(BlockDevice, RecordStore, OwnershipLock, String, String, OwnedImage.State)},
     * with the recheck interval {@code recheckNanos} measured on {@code clock} (monotonic
     * nanoseconds, called on the handle's I/O threads) and a header cache of
     * {@code headerCacheBytes}: a simulator's handle in virtual time.
     */
    public static OwnedImage assemble(BlockDevice device, RecordStore records, OwnershipLock lock, String ownerId,
            String name, OwnedImage.State initial, long recheckNanos, int headerCacheBytes, LongSupplier clock)
            throws DeviceException {
        Objects.requireNonNull(clock, "clock");
        ImageTuning tuning = new ImageTuning(recheckNanos, headerCacheBytes, clock::getAsLong);
        return ImageOpener.assemble(device, () -> { }, records, lock, ownerId, name, initial, tuning);
    }
}
