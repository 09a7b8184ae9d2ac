package dev.handoff.ownership;

import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * An {@link OwnershipLock} that excludes holders inside this JVM only: a process-wide registry
 * maps an image key to the instance holding it. Two instances exclude each other when their keys
 * are {@link Object#equals equal}; memory devices use the device object itself (identity).
 *
 * <p>For single-JVM embedders and tests. It does not see other processes: use
 * {@link QemuFileLock} for image files.
 */
public final class InProcessOwnershipLock implements OwnershipLock {
    /*
     * Protocol. The registry entry for a key *is* the lock: acquire is putIfAbsent(key, this),
     * release is remove(key, this). Both are atomic in ConcurrentHashMap and give the usual
     * happens-before from a successful remove to the putIfAbsent that observes the key absent, so
     * everything the previous holder did before releasing (its record write) is visible to the next
     * holder. An instance never removes another instance's entry (remove(key, value)).
     */

    private static final ConcurrentHashMap<Object, InProcessOwnershipLock> HOLDERS = new ConcurrentHashMap<>();

    private final Object key;
    private final String name;

    /**
     * @param key  what identifies the image (equal keys = same image)
     * @param name how to name the image in messages
     */
    public InProcessOwnershipLock(Object key, String name) {
        this.key = Objects.requireNonNull(key, "key");
        this.name = Objects.requireNonNull(name, "name");
    }

    @Override
    public void acquire() throws ImageLockedException {
        InProcessOwnershipLock holder = HOLDERS.putIfAbsent(key, this);
        if (holder != null && holder != this) {
            throw new ImageLockedException("Failed to get \"write\" lock: " + name
                    + " is locked by another holder in this process");
        }
    }

    @Override
    public void release() {
        HOLDERS.remove(key, this);
    }

    @Override
    public boolean isHeld() {
        return HOLDERS.get(key) == this;
    }

    @Override
    public String toString() {
        return "InProcessOwnershipLock[" + name + (isHeld() ? ", held" : "") + "]";
    }
}
