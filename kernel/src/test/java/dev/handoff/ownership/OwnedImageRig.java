package dev.handoff.ownership;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import java.nio.file.Path;
import java.util.Objects;
import java.util.function.LongSupplier;

/**
 * The construction seam of {@link OwnedImage} for simulators, published in the kernel's test-jar:
 * a handle built from parts a checker controls (its device, record store, lock), with a test's
 * tuning (the fencing recheck interval, the header cache's size) and a virtual clock; and the
 * kernel's own record stores, which are package-private. Test code, in the handle's package, so
 * that the ownership simulator lives in a package of its own and the kernel's API stays what
 * {@link OwnedImage} offers. Inspection is {@link OwnedImageProbe}'s.
 */
public final class OwnedImageRig {
    private OwnedImageRig() {
    }

    /**
     * Builds a handle as {@link OwnedImage#open} does (reads the record, activates if asked), with
     * the recheck interval {@code recheckNanos} measured on {@code clock} (monotonic nanoseconds,
     * called on the handle's I/O threads) and a header cache of {@code headerCacheBytes}. Closing
     * it closes neither the device nor the store.
     */
    public static OwnedImage open(BlockDevice device, RecordStore records, OwnershipLock lock, String ownerId,
            String name, OwnedImage.State initial, long recheckNanos, int headerCacheBytes, LongSupplier clock)
            throws DeviceException {
        Objects.requireNonNull(clock, "clock");
        ImageTuning tuning = new ImageTuning(recheckNanos, headerCacheBytes, clock::getAsLong);
        return ImageOpener.assemble(device, () -> { }, records, lock, ownerId, name, initial, tuning);
    }

    /** The in-memory record store of {@link OwnedImage#openMemory}: atomic, durable, never fails. */
    public static RecordStore memoryRecords(String name) {
        return new MemoryRecordStore(name);
    }

    /**
     * The sidecar record store of {@link OwnedImage#openFile} at {@code sidecar} (on any file
     * system: a {@code dev.handoff.fs.CrashFileSystem} to crash it), its files with the process's
     * owner and umask.
     */
    public static RecordStore sidecarRecords(Path sidecar) {
        return new SidecarRecordStore(sidecar);
    }
}
