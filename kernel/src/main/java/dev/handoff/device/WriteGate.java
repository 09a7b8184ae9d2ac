package dev.handoff.device;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
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
 * its writes. Reads and the allocation map ({@link #nextData}, {@link #nextHole}, which NBD block
 * status answers from) take no lock, since both routes read the same bytes.
 *
 * <h2>Access modes</h2>
 * {@code route} and {@code refusal} are touched only through accessors named by mode
 * (CONTRIBUTING, "One accessor convention"): {@code lp} plain load, {@code lv} volatile load,
 * {@code sv} volatile store.
 * <ul>
 *   <li>{@code route}: {@link #svRoute} under the write side (the constructor aside);
 *       {@link #lpRoute} by a write-like operation under the read side, which the lock orders
 *       after the last store; {@link #lvRoute} by reads, the allocation map and
 *       {@link #route()}, lock-free, pairing with {@link #svRoute}. The store is stronger than
 *       the locked readers need; it is volatile for the lock-free ones (a release would do:
 *       they need only the device the route names).</li>
 *   <li>{@code refusal}: {@link #svRefusal} under the write side by {@link #refuseWrites} (the
 *       drain), and without the lock by {@link #acceptWrites} (accepting needs no drain);
 *       {@link #lvRefusal} under the read side and by {@link #refusesWrites}. Under the read
 *       side a plain load would do after a locked store, but not after {@link #acceptWrites}'s
 *       unlocked one, which the volatile pair publishes.</li>
 * </ul>
 *
 * <p>Threading: every method may be called from any thread. Closing the gate closes nothing: the
 * routes belong to the caller.
 */
public final class WriteGate extends ForwardingBlockDevice {
    private static final VarHandle ROUTE;
    private static final VarHandle REFUSAL;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            ROUTE = l.findVarHandle(WriteGate.class, "route", BlockDevice.class);
            REFUSAL = l.findVarHandle(WriteGate.class, "refusal", String.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final long size;
    @SuppressWarnings("unused") // through ROUTE
    private BlockDevice route;
    /** Why writes are refused, or null while they are accepted. */
    @SuppressWarnings("unused") // through REFUSAL
    private String refusal;

    /** A gate routing to {@code initial}, accepting writes. */
    public WriteGate(BlockDevice initial) {
        super(initial);
        svRoute(initial);
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
            svRefusal(reason);
        } finally {
            w.unlock();
        }
    }

    /** Accepts writes again (after a handoff that failed or was aborted). */
    public void acceptWrites() {
        svRefusal(null);
    }

    /** Whether writes are refused now. */
    public boolean refusesWrites() {
        return lvRefusal() != null;
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
            svRoute(next);
        } finally {
            w.unlock();
        }
    }

    /** Where operations go now. */
    public BlockDevice route() {
        return lvRoute();
    }

    @Override
    protected BlockDevice delegate() {
        return lvRoute();
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
            String refused = lvRefusal();
            if (refused != null) {
                throw new DeviceException(DeviceException.Kind.INACTIVE, refused);
            }
            m.run(lpRoute());
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

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private BlockDevice lpRoute() {
        return (BlockDevice) ROUTE.get(this); // plain: under the read side, ordered by the lock
    }

    private BlockDevice lvRoute() {
        return (BlockDevice) ROUTE.getVolatile(this); // lock-free; pairs with svRoute
    }

    private void svRoute(BlockDevice next) {
        ROUTE.setVolatile(this, next); // under the write side; stronger than the locked readers need
    }

    private String lvRefusal() {
        return (String) REFUSAL.getVolatile(this); // pairs with svRefusal, locked or not
    }

    private void svRefusal(String reason) {
        REFUSAL.setVolatile(this, reason);
    }
}
