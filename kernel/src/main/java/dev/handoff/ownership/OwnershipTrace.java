package dev.handoff.ownership;

/**
 * The spec-level steps of an {@link OwnedImage}, for trace validation against
 * {@code Ownership.tla} (specs/README.md). A test seam, not an API: a handle gets one only through
 * the package-private {@link ImageOpener#file(java.nio.file.Path, java.nio.file.Path, String,
 * OwnedImage.State, OwnershipTrace)}; every other handle has none, and each step it would record
 * then costs one load of a final field and one never-taken branch. The steps are taken in
 * {@link Transitions} (the transitions), {@link WriteAdmission} (the admission of a write or a
 * flush) and {@link OwnedImage} (the device call of a write or a flush).
 *
 * <p>A step is one thing another holder can observe: an {@link OwnershipLock} acquire or release,
 * a {@link RecordStore} read or compare-and-write, a device write or flush, with the handle's
 * local bookkeeping around it. The handle calls {@link #begin()} just before and {@link #end} just
 * after; an implementation that validates several processes holds a lock shared by all of them
 * (a file lock) from {@code begin} to {@code end}, so that the steps of every holder are recorded
 * in the order they took effect. No step encloses a wait: {@code OwnershipLock.acquire} never
 * waits, and the handle's own locks are taken before {@code begin}.
 *
 * <p>Threading: called from any thread of the handle, under its transition or I/O locks.
 */
interface OwnershipTrace {

    /** Opens a step; every {@code begin} is followed by exactly one {@link #end}. */
    void begin();

    /**
     * Closes the step: what the handle did.
     *
     * @param image the handle
     * @param step  the step
     * @param ok    whether it went through (a lock taken, a compare that matched, a write admitted)
     * @param a     an argument: the token's epoch for an activation's lock step, else 0
     * @param owner the token's owner for an activation's lock step, else null
     */
    void end(OwnedImage image, Step step, boolean ok, long a, String owner);

    /** The steps, named after the Ownership.tla actions they are. */
    enum Step {
        /** Nothing another holder sees happened: record nothing. */
        NONE,
        /** activate / acceptHandoff / abortHandoff: OwnershipLock.acquire (ok: taken). */
        ACTIVATE_LOCK, ACCEPT_LOCK, ABORT_LOCK,
        /** activateLocked: caches dropped, the record read (ok: the token, if any, continues it). */
        ACT_READ,
        /** activateLocked: the compare-and-write of the new epoch (ok: it matched; the handle is ACTIVE). */
        ACT_CAS,
        /** activateLocked, refused: the lock released. */
        ACT_FAIL,
        /** inactivate / prepareHandoff: the record re-read (ok: not fenced). */
        INACTIVATE_READ, PREPARE_READ,
        /** fencedInactivation: INACTIVE and the lock released, nothing written. */
        IN_FENCED,
        /** inactivateLocked: the device flush. */
        IN_FLUSH,
        /** inactivateLocked: the compare-and-write of the clean record (ok: matched; INACTIVE). */
        IN_CAS,
        /** inactivateLocked: the lock released after the record. */
        IN_RELEASE,
        /** close of an INACTIVE handle: nothing written, closed. */
        CLOSE_INACTIVE,
        /** closeActiveLocked: the record re-read (ok: not fenced). */
        CLOSE_READ,
        /** closeActiveLocked: the device flush. */
        CLOSE_FLUSH,
        /** closeActiveLocked: the compare-and-write of the clean record. */
        CLOSE_CAS,
        /** close: closed, the lock released. */
        CLOSE_END,
        /** admitWrite (ok: admitted; a = 1 if it re-read the record). */
        WRITE_ADMIT,
        /** write, write-zeroes, discard: the device call. */
        WRITE_DEVICE,
        /** flush: the state check and the record re-read (ok: admitted). */
        FLUSH_READ,
        /** flush: the device flush. */
        FLUSH_DEVICE
    }
}
