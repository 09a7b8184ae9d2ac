package dev.handoff.ownership;

import dev.handoff.device.DeviceException;

/**
 * The write lock of one image for one handle: at most one handle in the world may hold it at a
 * time (within the reach of the implementation: one JVM for {@link InProcessOwnershipLock}, every
 * process on the host, QEMU's included, for {@link QemuFileLock}, every host that shares a
 * coordination service for a lock kept there).
 *
 * <p>An {@link OwnedImage} holds its lock exactly while it is ACTIVE. The lock alone prevents a
 * second active holder; the epoch in the ownership record fences a holder whose lock was lost
 * anyway (see {@link OwnedImage}).
 *
 * <p>A lock may be lost without its holder knowing at once (a lease that ran out, a session that
 * expired while the holder was paused): {@link #isHeld} is the holder's belief, and
 * {@link OwnedImage} never trusts it to decide a write; the epoch does.
 *
 * <p>Threading: an instance belongs to one handle, which calls it under its own transition lock;
 * implementations must be safe against other instances on the same image, in any thread, process
 * or host, and {@link #isHeld} may be called from any thread.
 */
public interface OwnershipLock {

    /**
     * Takes the lock without waiting. Does nothing if this instance already holds it.
     *
     * @throws ImageLockedException if another holder has it; the message says who, if known
     * @throws DeviceException of another kind if the lock could not be asked for
     */
    void acquire() throws DeviceException;

    /** Releases the lock if this instance holds it; otherwise does nothing. Writes no data. */
    void release() throws DeviceException;

    /** Whether this instance holds the lock. */
    boolean isHeld();
}
