package dev.handoff.ownership;

import dev.handoff.device.DeviceException;

/**
 * Where an image's {@link OwnershipRecord} lives. An {@link OwnedImage} changes it only while it
 * holds the image's {@link OwnershipLock}, and only with {@link #compareAndWrite}, so that even
 * holders whose locks failed cannot both move the epoch from the same value; anyone may read it
 * at any time.
 *
 * <p>Implementations make writes atomic and durable: a concurrent or later {@link #read} (in any
 * process) sees the old record or the new one, never a mix, and after a crash the record is one
 * that some write wrote completely.
 */
interface RecordStore {

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
