package dev.handoff.ownership;

import dev.handoff.device.DeviceException;
import dev.handoff.ownership.OwnedImage.State;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The I/O side of an {@link OwnedImage}: whether a write, write-zeroes, discard or flush may reach
 * the device (the handle's state, its epoch, the newest epoch it has seen in the record), and the
 * drain that lets a transition wait for the operations in flight (DESIGN §4.1, §4.3).
 *
 * <p>An operation {@link #enterWrite enters} (or {@link #enterFlush}) before it touches the device
 * and {@link #exit exits} once the device returned; between the two the state it was admitted in
 * cannot change, because a transition takes the {@link #drain} first. So a refused operation never
 * reaches the device, and a transition never sees an operation half done.
 *
 * <h2>Protocol overview</h2>
 * Who races with whom:
 * <ul>
 *  <li>I/O threads hold io.readLock() from the admission check until the device returns
 *    (enterWrite/enterFlush ... exit), so a transition (drain() = io.writeLock()) sees no write in
 *    flight and none can start until it finishes. That is the drain of inactivate() and the
 *    reason a refused write cannot reach the device: the state a write checked cannot change
 *    before it is done.
 *  <li>Transitions (OwnedImage's Transitions) hold their own lock and then the drain, in that
 *    order; I/O never takes the transitions lock: no lock-order cycle.
 *  <li>Readers take no lock: they read {@code state} (acquire) to decide whether the header cache may
 *    serve them. A read racing with a transition is ordered either way, as a read racing with
 *    a write to the same bytes is (BlockDevice contract).
 *  <li>Record reads on several I/O threads at once (a write's timed recheck, a flush's recheck)
 *    raise newestEpoch concurrently: it is a max-register.
 * </ul>
 *
 * <h2>Access modes</h2>
 * Every field read or written lock-free is touched only through an accessor named by its mode
 * (CONTRIBUTING, "One accessor convention"): {@code lp} plain load, {@code lv} volatile load,
 * {@code la} acquire load, {@code lpo} opaque load; {@code sv} volatile store, {@code so} release
 * store, {@code spo} opaque store; {@code cas} compare-and-set.
 * <ul>
 *  <li>{@code state}: soState in transitions (under the transitions lock and the drain); laState by
 *    read(), state(), and by I/O under io.readLock (stronger than needed there: the read lock
 *    already orders it after the last soState; the acquire is for the lock-free callers, and
 *    one accessor serves both); lpState under the transitions lock, which every soState holds.
 *  <li>{@code epoch}: soEpoch in activation before soState; laEpoch in epoch(); lpEpoch under a lock
 *    (io.readLock or the transitions lock: soEpoch runs under both the drain and the
 *    transitions lock, so the lock hand-off orders it; activation is the only writer).
 *  <li>{@code newestEpoch}: a max-register, raised by observeEpoch (a casNewestEpoch loop) from record
 *    reads in several I/O threads at once; laNewestEpoch pairs with that cas (a volatile cas is
 *    stronger than the acquire readers need; CAS has no weaker form that still orders the
 *    record read before it).
 *  <li>{@code lastRecheckAt}: lpo/spo (opaque: atomic, no ordering). Benign race: a thread that sees an
 *    older value reads the record once more than needed; the value only ever moves forward in
 *    time, so no thread skips a read it owes by more than the interval. Nothing else is
 *    published through it.
 *    Its times come from the handle's {@link MonotonicClock} ({@code System.nanoTime} unless a
 *    simulator gives it a virtual one), which is also what admitWrite compares them with.
 *  <li>{@code closed}: svClosed under the transitions lock and the drain; lvClosed by every operation
 *    (lock-free by read()). Stronger than needed: a read racing with close may go either way,
 *    and the admitted operations hold the read side of the drain, which orders them after it;
 *    an acquire load would do.
 * </ul>
 */
final class WriteAdmission {
    private static final VarHandle STATE;
    private static final VarHandle EPOCH;
    private static final VarHandle NEWEST_EPOCH;
    private static final VarHandle LAST_RECHECK_AT;
    private static final VarHandle CLOSED;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            STATE = l.findVarHandle(WriteAdmission.class, "state", State.class);
            EPOCH = l.findVarHandle(WriteAdmission.class, "epoch", long.class);
            NEWEST_EPOCH = l.findVarHandle(WriteAdmission.class, "newestEpoch", long.class);
            LAST_RECHECK_AT = l.findVarHandle(WriteAdmission.class, "lastRecheckAt", long.class);
            CLOSED = l.findVarHandle(WriteAdmission.class, "closed", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final ReentrantReadWriteLock io = new ReentrantReadWriteLock();
    private final RecordStore records;
    private final String name;
    private final long recheckNanos;
    private final MonotonicClock clock;
    /** Null unless the handle is traced (OwnershipTrace, a test seam); {@code image} is then what each step names. */
    private final OwnershipTrace trace;
    private final OwnedImage image;

    @SuppressWarnings("unused") // accessed through STATE
    private State state = State.INACTIVE;
    @SuppressWarnings("unused") // accessed through EPOCH
    private long epoch;
    @SuppressWarnings("unused") // accessed through NEWEST_EPOCH
    private long newestEpoch;
    @SuppressWarnings("unused") // accessed through LAST_RECHECK_AT
    private long lastRecheckAt;
    @SuppressWarnings("unused") // through CLOSED
    private boolean closed;

    WriteAdmission(RecordStore records, String name, long recheckNanos, MonotonicClock clock, OwnershipTrace trace,
            OwnedImage image) {
        this.records = records;
        this.name = name;
        this.recheckNanos = recheckNanos;
        this.clock = clock;
        this.trace = trace;
        this.image = image;
    }

    /* ---- Entering and leaving (I/O threads) ---- */

    /**
     * Admits a write, write-zeroes or discard: open, ACTIVE, the record re-read if the recheck
     * interval has passed, not fenced. On success the caller is inside until {@link #exit()}; on
     * failure it is not, and nothing may reach the device.
     */
    void enterWrite(String op) throws DeviceException {
        Lock r = io.readLock();
        r.lock();
        try {
            admitWrite(op);
        } catch (DeviceException | RuntimeException | Error e) {
            r.unlock();
            throw e;
        }
    }

    /** The admission of a write: one traced step. */
    private void admitWrite(String op) throws DeviceException {
        OwnershipTrace t = trace;
        if (t != null) {
            t.begin();
        }
        boolean admitted = false;
        boolean reread = false;
        try {
            admitState(op);
            if (clock.nanoTime() - lpoLastRecheckAt() >= recheckNanos) {
                reread = true;
                recheckRecord();
            }
            checkNotFenced(op);
            admitted = true;
        } finally {
            if (t != null) {
                t.end(image, OwnershipTrace.Step.WRITE_ADMIT, admitted, reread ? 1 : 0, null);
            }
        }
    }

    /** Admits a flush: open, ACTIVE, and not fenced by the record as it is now (always re-read). */
    void enterFlush(String op) throws DeviceException {
        Lock r = io.readLock();
        r.lock();
        try {
            admitFlush(op);
        } catch (DeviceException | RuntimeException | Error e) {
            r.unlock();
            throw e;
        }
    }

    /** The admission of a flush: one traced step. */
    private void admitFlush(String op) throws DeviceException {
        OwnershipTrace t = trace;
        if (t != null) {
            t.begin();
        }
        boolean admitted = false;
        try {
            admitState(op);
            recheckRecord();
            checkNotFenced(op);
            admitted = true;
        } finally {
            if (t != null) {
                t.end(image, OwnershipTrace.Step.FLUSH_READ, admitted, 0, null);
            }
        }
    }


    /** Leaves after {@link #enterWrite} or {@link #enterFlush}, once the device returned. */
    void exit() {
        io.readLock().unlock();
    }

    /**
     * Waits for the operations in flight and holds new ones out until the returned lock is
     * unlocked: a transition's exclusive section. Callers hold the transitions lock first.
     */
    Lock drain() {
        Lock l = io.writeLock();
        l.lock();
        return l;
    }

    /* ---- Checks ---- */

    private void admitState(String op) throws DeviceException {
        ensureOpen(op);
        if (laState() != State.ACTIVE) {
            throw new ImageInactiveException(op + " refused: " + name
                    + " is INACTIVE (another holder may own it); nothing was written");
        }
    }

    void ensureOpen(String op) throws DeviceException {
        if (lvClosed()) {
            throw new DeviceException(DeviceException.Kind.CLOSED, op + " on " + name + ": the handle is closed");
        }
    }

    boolean isClosed() {
        return lvClosed();
    }

    /** From now on every operation fails as closed. Caller holds the transitions lock and the drain. */
    void markClosed() {
        svClosed(true);
    }

    /** Reads the record and raises the newest epoch seen. Safe from several threads at once. */
    void recheckRecord() throws DeviceException {
        OwnershipRecord r = records.read();
        observeEpoch(r.epoch());
        spoLastRecheckAt(clock.nanoTime());
    }

    /** Marks the record as read now: an activation that just wrote it knows the newest epoch. */
    void markRecheckedNow() {
        spoLastRecheckAt(clock.nanoTime());
    }

    /** Whether the record has shown an epoch newer than the one this handle activated with. */
    boolean isFenced() {
        return laNewestEpoch() > lpEpoch();
    }

    void checkNotFenced(String op) throws ImageFencedException {
        if (isFenced()) {
            throw fenced(op, " refused; nothing was written");
        }
    }

    ImageFencedException fenced(String op, String tail) {
        long mine = lpEpoch();
        long newest = laNewestEpoch();
        return new ImageFencedException(op + " of " + name + tail + ": this handle activated with epoch " + mine
                + " but the ownership record shows epoch " + newest + " (another owner took over)", mine, newest);
    }

    /* ---- Ordered accessors (the modes and their partners: see the overview) ---- */

    State laState() {
        return (State) STATE.getAcquire(this); // pairs with soState
    }

    State lpState() {
        return (State) STATE.get(this); // plain: caller holds the transitions lock, which every soState holds too
    }

    void soState(State s) {
        STATE.setRelease(this, s); // publishes the epoch and the cached record written before it
    }

    long laEpoch() {
        return (long) EPOCH.getAcquire(this); // pairs with soEpoch; atomic on every platform
    }

    long lpEpoch() {
        return (long) EPOCH.get(this); // plain: callers hold io.readLock or the transitions lock (see the overview)
    }

    void soEpoch(long e) {
        EPOCH.setRelease(this, e); // pairs with laEpoch in epoch()
    }

    long laNewestEpoch() {
        return (long) NEWEST_EPOCH.getAcquire(this); // pairs with the cas in observeEpoch
    }

    /** Raises newestEpoch to at least {@code e}: a max-register, so concurrent record reads never lower it. */
    void observeEpoch(long e) {
        long seen;
        do {
            seen = laNewestEpoch();
            if (seen >= e) {
                return;
            }
        } while (!casNewestEpoch(seen, e));
    }

    private long lpoLastRecheckAt() {
        return (long) LAST_RECHECK_AT.getOpaque(this); // benign race: see the overview
    }

    private void spoLastRecheckAt(long t) {
        LAST_RECHECK_AT.setOpaque(this, t); // benign race: see the overview
    }

    /** Volatile CAS: raises the max-register; pairs with laNewestEpoch. */
    private boolean casNewestEpoch(long expected, long next) {
        return NEWEST_EPOCH.compareAndSet(this, expected, next);
    }

    private boolean lvClosed() {
        return (boolean) CLOSED.getVolatile(this); // pairs with svClosed; stronger than needed (see the overview)
    }

    private void svClosed(boolean c) {
        CLOSED.setVolatile(this, c); // under the transitions lock and the drain
    }
}
