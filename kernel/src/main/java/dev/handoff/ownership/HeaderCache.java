package dev.handoff.ownership;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The metadata cache of an {@link OwnedImage}: a copy of the image's first {@code length} bytes,
 * where a format driver keeps its header and the tables it reads most. Serves reads that lie
 * entirely inside it while the handle is ACTIVE; {@link #drop()} on activation is what keeps a
 * copy read before another owner's writes from outliving the handoff.
 */
final class HeaderCache {
    /*
     * Protocol. One AtomicReference to an immutable Snapshot(generation, bytes); bytes == null means
     * "not loaded". Every invalidation (a write overlapping the range, or drop()) installs a new
     * snapshot with generation + 1 and no bytes. A load reads the device, then installs its bytes
     * with compareAndSet against the snapshot it started from; if any invalidation happened in
     * between, the generation differs and the load's bytes are served to that one read only, never
     * cached. Hence a cached copy never predates a write that returned (the writer invalidates after
     * the device write and before returning) nor a drop().
     *
     * Memory effects: get() and compareAndSet()/getAndUpdate() are volatile accesses
     * (VarHandle#getVolatile / #compareAndSet); the Snapshot's final fields and its array,
     * written before publication and never changed, are visible to whoever loads the snapshot.
     */

    private static final class Snapshot {
        final long generation;
        final byte[] bytes;

        Snapshot(long generation, byte[] bytes) {
            this.generation = generation;
            this.bytes = bytes;
        }
    }

    private final int length;
    private final AtomicReference<Snapshot> snapshot = new AtomicReference<>(new Snapshot(0, null));

    HeaderCache(int length) {
        if (length < 0) {
            throw new IllegalArgumentException("cache length must be >= 0, got " + length);
        }
        this.length = length;
    }

    /**
     * Serves {@code dst.remaining()} bytes at {@code offset} from the cache, loading it from
     * {@code device} first if needed. Returns false, touching nothing, if the range is not entirely
     * inside the cached region.
     */
    boolean read(BlockDevice device, long offset, ByteBuffer dst) throws DeviceException {
        int n = dst.remaining();
        if (offset < 0 || n == 0 || offset > length - (long) n) {
            return false;
        }
        Snapshot s = snapshot.get(); // volatile load; pairs with the CAS / getAndUpdate below
        byte[] bytes = s.bytes;
        if (bytes == null) {
            bytes = new byte[length];
            device.read(0, ByteBuffer.wrap(bytes));
            // Loses, harmlessly, to any invalidation since s was read: then the copy is not kept.
            snapshot.compareAndSet(s, new Snapshot(s.generation, bytes));
        }
        dst.put(bytes, (int) offset, n);
        return true;
    }

    /** Forgets the copy if {@code [offset, offset + n)} overlaps it; called after a device write. */
    void invalidate(long offset, long n) {
        if (n > 0 && offset < length && offset + n > 0) {
            drop();
        }
    }

    /** Forgets the copy. */
    void drop() {
        snapshot.getAndUpdate(s -> new Snapshot(s.generation + 1, null)); // volatile CAS loop
    }

    /** Whether a copy is held (for tests). */
    boolean isLoaded() {
        return snapshot.get().bytes != null;
    }
}
