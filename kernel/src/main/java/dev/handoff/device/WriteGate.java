package dev.handoff.device;

import java.nio.ByteBuffer;
import java.util.Objects;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A device in front of a switchable route, whose writes can be refused: what an exporting server
 * puts between its clients and the image. {@link #route(BlockDevice)} moves every later operation
 * onto another device (a mirror job's guest device, when a job starts on the exported image), and
 * {@link #refuseWrites} refuses writes from now on (before a handoff); each returns only once no
 * write is in flight on the old setting, and none starts on it afterwards.
 *
 * <p>That drain is what makes a switch safe (DESIGN §2.9, §4.2): a mirror job started on the image
 * sees every client write either done before its guest device takes over (its bulk copy then
 * copies it) or going through the guest device (which tracks it); a handoff flushes only once no
 * client write is left that could land after it.
 *
 * <h2>Protocol</h2>
 * Writes, write-zeroes, discards and flushes hold the read side of one read-write lock from their
 * check until the device returns ({@link #mutate}); {@link #route(BlockDevice)} and
 * {@link #refuseWrites} take the write side, so each waits for the operations inside and excludes
 * new ones while it changes the setting: the same drain {@code OwnedImage}'s transitions take on
 * its writes. {@code route} and {@code refusal} are volatile: written under the write side, read
 * under the read side (where the lock already orders them; the volatile is for the lock-free
 * readers: stronger than the locked readers need) and by reads and the allocation map
 * ({@link #nextData}, {@link #nextHole}, which NBD block status answers from), which take no lock
 * since both routes read the same bytes.
 *
 * <p>Threading: every method may be called from any thread. Closing the gate closes nothing: the
 * routes belong to the caller.
 */
public final class WriteGate extends ForwardingBlockDevice {
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final long size;
    private volatile BlockDevice route;
    /** Why writes are refused, or null while they are accepted. */
    private volatile String refusal;

    /** A gate routing to {@code initial}, accepting writes. */
    public WriteGate(BlockDevice initial) {
        super(initial);
        this.route = initial;
        this.size = initial.size();
    }

    /**
     * Refuses writes, write-zeroes, discards and flushes from now on with
     * {@link DeviceException.Kind#INACTIVE} and {@code reason}; returns once those in flight are done.
     */
    public void refuseWrites(String reason) {
        Objects.requireNonNull(reason, "reason");
        Lock w = lock.writeLock();
        w.lock();
        try {
            refusal = reason;
        } finally {
            w.unlock();
        }
    }

    /** Accepts writes again (after a handoff that failed or was aborted). */
    public void acceptWrites() {
        refusal = null;
    }

    /** Whether writes are refused now. */
    public boolean refusesWrites() {
        return refusal != null;
    }

    /**
     * Sends every later operation to {@code next}, of the same size; returns once the writes in
     * flight on the old route are done.
     */
    public void route(BlockDevice next) {
        if (next.size() != size) {
            throw new IllegalArgumentException("a route of " + next.size() + " bytes for a gate of " + size);
        }
        Lock w = lock.writeLock();
        w.lock();
        try {
            route = next;
        } finally {
            w.unlock();
        }
    }

    /** Where operations go now. */
    public BlockDevice route() {
        return route;
    }

    @Override
    protected BlockDevice delegate() {
        return route;
    }

    @Override
    public long size() {
        return size;
    }

    /** A write-like operation on the route it finds inside the gate. */
    private interface Mutation {
        void run(BlockDevice device) throws DeviceException;
    }

    private void mutate(Mutation m) throws DeviceException {
        Lock r = lock.readLock();
        r.lock();
        try {
            String refused = refusal;
            if (refused != null) {
                throw new DeviceException(DeviceException.Kind.INACTIVE, refused);
            }
            m.run(route);
        } finally {
            r.unlock();
        }
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        mutate(d -> d.write(offset, src));
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        mutate(d -> d.writeZeroes(offset, length));
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        mutate(d -> d.discard(offset, length));
    }

    @Override
    public void flush() throws DeviceException {
        mutate(BlockDevice::flush);
    }

    /** Closes nothing: the routes belong to the caller. */
    @Override
    public void close() {
    }
}
