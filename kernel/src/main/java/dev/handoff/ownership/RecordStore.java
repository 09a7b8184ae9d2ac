package dev.handoff.ownership;

import dev.handoff.device.DeviceException;

/**
 * Where an image's {@link OwnershipRecord} lives. An {@link OwnedImage} changes it only while it
 * holds the image's {@link OwnershipLock}, and only with {@link #compareAndWrite}, so that even
 * holders whose locks failed cannot both move the epoch from the same value; anyone may read it
 * at any time.
 *
 * <p>Implementations make writes atomic and durable: a concurrent or later {@link #read} (in any
 * thread, process or host that shares the store) sees the old record or the new one, never a mix,
 * and after a crash the record is one that some write wrote completely. A read returns a record
 * at least as new as every write that completed before the read started (the kernel's fencing
 * re-reads the record to learn of a newer epoch).
 *
 * <p>The kernel's stores are the sidecar file of an image file ({@link OwnedImage#openFile}) and
 * an in-memory record ({@link OwnedImage#openMemory}); another module supplies its own (a
 * coordination service, say) to {@link OwnedImage#open}.
 *
 * <p>Threading: an {@link OwnedImage} calls {@link #read} from any of its I/O threads at once, and
 * {@link #compareAndWrite} under its transition lock; implementations are safe for both.
 */
public interface RecordStore {

    /** The current record, or {@link OwnershipRecord#ABSENT} if none was ever written. */
    OwnershipRecord read() throws DeviceException;

    /**
     * Replaces the record with {@code next} if, and only if, its epoch is {@code expectedEpoch},
     * atomically with respect to every other {@code compareAndWrite} on the same record (in any
     * thread or process). Returns the record found: the write happened iff its epoch is
     * {@code expectedEpoch}.
     */
    OwnershipRecord compareAndWrite(long expectedEpoch, OwnershipRecord next) throws DeviceException;

    /** Names the store in messages. */
    String describe();
}
