package dev.handoff.ownership;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.FileDevice;
import dev.handoff.ownership.OwnedImage.State;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import java.util.WeakHashMap;

/**
 * Where {@link OwnedImage} handles come from: a file with its sidecar record and QEMU's file lock,
 * a memory device with an in-memory record and an in-process lock, or parts another module
 * brings (a coordination service's record and lock). Keeps the process-wide registry that makes
 * handles opened on one memory device holders of one image.
 */
final class ImageOpener {
    /**
     * In-memory records, one per memory device (by identity for devices that keep Object.equals).
     * Every access is under its monitor.
     */
    private static final Map<BlockDevice, MemoryRecordStore> MEMORY_RECORDS = new WeakHashMap<>();

    private ImageOpener() {
    }

    /** See {@link OwnedImage#openFile(Path, Path, String, State)}; {@code record} null: the sidecar. */
    static OwnedImage file(Path image, Path record, String ownerId, State initial) throws DeviceException {
        return file(image, record, ownerId, initial, null);
    }

    /**
     * As above, recording the handle's spec-level steps in {@code trace} (the trace-validation
     * seam, for tests; null: untraced).
     */
    static OwnedImage file(Path image, Path record, String ownerId, State initial, OwnershipTrace trace)
            throws DeviceException {
        Objects.requireNonNull(initial, "initial");
        ImageFiles.Lease lease = ImageFiles.open(image);
        try {
            FileDevice file = lease.device();
            // The sidecar of the path the file was first opened by: every handle on it meets one record.
            Path at = record != null ? record : OwnershipRecord.sidecarOf(file.path());
            return assemble(file, lease, new SidecarRecordStore(at, file.path()), new QemuFileLock(file), ownerId,
                    image.toString(), initial, ImageTuning.DEFAULT, trace);
        } catch (DeviceException | RuntimeException e) {
            closeQuietly(lease, e);
            throw e;
        }
    }

    /** See {@link OwnedImage#openMemory}. */
    static OwnedImage memory(BlockDevice device, String ownerId, State initial) throws DeviceException {
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(initial, "initial");
        String name = "memory image@" + Integer.toHexString(System.identityHashCode(device));
        MemoryRecordStore store;
        synchronized (MEMORY_RECORDS) {
            store = MEMORY_RECORDS.computeIfAbsent(device, d -> new MemoryRecordStore(name));
        }
        return assemble(device, () -> { }, store, new InProcessOwnershipLock(device, name), ownerId, name, initial,
                ImageTuning.DEFAULT);
    }

    /**
     * Builds a handle from its parts. Reads the record (a read, even for INACTIVE); activates if
     * asked, closing the handle again (which writes nothing) if that fails.
     */
    static OwnedImage assemble(BlockDevice device, AutoCloseable deviceRelease, RecordStore records,
            OwnershipLock lock, String ownerId, String name, State initial, ImageTuning tuning) throws DeviceException {
        return assemble(device, deviceRelease, records, lock, ownerId, name, initial, tuning, null);
    }

    /** As above, traced ({@code trace} null: not). */
    static OwnedImage assemble(BlockDevice device, AutoCloseable deviceRelease, RecordStore records,
            OwnershipLock lock, String ownerId, String name, State initial, ImageTuning tuning, OwnershipTrace trace)
            throws DeviceException {
        Objects.requireNonNull(initial, "initial");
        OwnedImage image = new OwnedImage(device, deviceRelease, records, lock, ownerId, name, tuning, trace);
        try {
            image.transitions.readRecord();
            if (initial == State.ACTIVE) {
                image.activate();
            }
            return image;
        } catch (DeviceException | RuntimeException e) {
            try {
                image.close();
            } catch (DeviceException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    private static void closeQuietly(AutoCloseable c, Exception primary) {
        try {
            c.close();
        } catch (Exception e) {
            primary.addSuppressed(e);
        }
    }
}
