package dev.handoff.ownership;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.ownership.OwnedImage.State;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Objects;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The transition protocol of an {@link OwnedImage}: activate, inactivate, the three steps of a
 * handoff and close, serialized with each other and excluding writes and flushes through the
 * handle's {@link WriteAdmission#drain drain} (DESIGN §4.2, §4.3). What each transition does and
 * how it fails is documented on {@link OwnedImage}'s public methods; this class keeps the order.
 */
final class Transitions {
    /*
     * Protocol overview.
     *
     * Every method holds `lock`, then the drain (WriteAdmission's io write lock), in that order;
     * I/O never takes `lock`. Other holders of the same image (threads, processes) meet only at the
     * OwnershipLock and the RecordStore.
     *
     * The order that makes it safe:
     *  - activate: ownership.acquire -> drop caches -> read record (epoch e) -> compare-and-write
     *    record(max(e, newest) + 1, unclean) expecting e -> epoch := that -> state := ACTIVE
     *    (release store publishing the epoch and the cached record). The compare is what decides
     *    between two activations whose locks both "succeeded" (a lost lock): one moves the epoch,
     *    the other finds it moved and stays INACTIVE.
     *  - inactivate: (drained) -> reread record, fenced? -> device.flush -> compare-and-write
     *    record(clean) expecting our epoch -> state := INACTIVE -> ownership.release. The data
     *    flush precedes the record write that tells the next owner it may go: a newly active
     *    holder sees every write acknowledged before the handoff.
     *  - a record write happens only while the ownership lock is held (activate, inactivate, close
     *    of ACTIVE), and always as a compare-and-write of the epoch.
     *
     * Fields: cachedRecord, pending, continued, continuedByAbort and cacheDrops are guarded by
     * `lock`. cachedRecord and cacheDrops are also read without it, by the kernel tests' probe,
     * so they are touched only through accessors named by mode (CONTRIBUTING, "One accessor
     * convention"): svCachedRecord / svCacheDrops under the lock (volatile stores), lpCacheDrops
     * under the lock (plain: the lock orders it), lvCachedRecord / lvCacheDrops by the probe
     * (volatile loads, pairing with those stores). Stronger than needed: the probe reads after
     * the transition it checks has returned on its own thread, and a release store would do for
     * another thread's snapshot; volatile, off the I/O path, costs nothing that matters.
     */

    private static final VarHandle CACHED_RECORD;
    private static final VarHandle CACHE_DROPS;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            CACHED_RECORD = l.findVarHandle(Transitions.class, "cachedRecord", OwnershipRecord.class);
            CACHE_DROPS = l.findVarHandle(Transitions.class, "cacheDrops", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final ReentrantLock lock = new ReentrantLock();
    private final WriteAdmission admission;
    private final BlockDevice device;
    private final AutoCloseable deviceRelease;
    private final RecordStore records;
    private final OwnershipLock ownership;
    private final HeaderCache header;
    private final String ownerId;
    private final String name;
    /** Null unless the handle is traced (OwnershipTrace, a test seam); {@code image} is then what each step names. */
    private final OwnershipTrace trace;
    private final OwnedImage image;

    @SuppressWarnings("unused")            // through CACHED_RECORD
    private OwnershipRecord cachedRecord;  // guarded by lock; read by the probe (lvCachedRecord)
    @SuppressWarnings("unused")            // through CACHE_DROPS
    private int cacheDrops;                // guarded by lock; read by the probe (lvCacheDrops)
    private HandoffToken pending;          // guarded by lock: prepared, not yet resolved here
    private HandoffToken continued;        // guarded by lock: token the current activation continued
    private boolean continuedByAbort;      // guarded by lock

    Transitions(WriteAdmission admission, BlockDevice device, AutoCloseable deviceRelease, RecordStore records,
            OwnershipLock ownership, HeaderCache header, String ownerId, String name, OwnershipTrace trace,
            OwnedImage image) {
        this.admission = admission;
        this.device = device;
        this.deviceRelease = deviceRelease;
        this.records = records;
        this.ownership = ownership;
        this.header = header;
        this.ownerId = ownerId;
        this.name = name;
        this.trace = trace;
        this.image = image;
    }

    /** The first read of the record, when the handle is opened: caches it and its epoch. Writes nothing. */
    void readRecord() throws DeviceException {
        lock.lock();
        try {
            OwnershipRecord r = records.read();
            svCachedRecord(r);
            admission.observeEpoch(r.epoch());
        } finally {
            lock.unlock();
        }
    }

    /* ---- The transitions (see OwnedImage's methods of the same names) ---- */

    void activate() throws DeviceException {
        lock.lock();
        Lock drain = admission.drain();
        try {
            admission.ensureOpen("activate");
            if (admission.lpState() == State.ACTIVE) {
                admission.checkNotFenced("activate");
                return;
            }
            activateLocked(null, "activate", OwnershipTrace.Step.ACTIVATE_LOCK);
            continued = null;
        } finally {
            drain.unlock();
            lock.unlock();
        }
    }

    void inactivate() throws DeviceException {
        lock.lock();
        Lock drain = admission.drain();
        try {
            admission.ensureOpen("inactivate");
            if (admission.lpState() == State.INACTIVE) {
                return;
            }
            inactivateLocked("inactivate", false);
        } finally {
            drain.unlock();
            lock.unlock();
        }
    }

    HandoffToken prepareHandoff() throws DeviceException {
        lock.lock();
        Lock drain = admission.drain();
        try {
            admission.ensureOpen("prepareHandoff");
            if (admission.lpState() == State.INACTIVE) {
                if (pending != null) {
                    return pending;
                }
                throw new IllegalStateException(name + " is INACTIVE: there is nothing to hand off");
            }
            inactivateLocked("prepareHandoff", true);
            return pending;
        } finally {
            drain.unlock();
            lock.unlock();
        }
    }

    void acceptHandoff(HandoffToken token) throws DeviceException {
        Objects.requireNonNull(token, "token");
        lock.lock();
        Lock drain = admission.drain();
        try {
            admission.ensureOpen("acceptHandoff");
            if (admission.lpState() == State.ACTIVE) {
                if (token.equals(continued) && !continuedByAbort) {
                    return;
                }
                throw new IllegalStateException(name + " is ACTIVE with epoch " + admission.lpEpoch()
                        + "; acceptHandoff is for an INACTIVE destination");
            }
            activateLocked(token, "acceptHandoff", OwnershipTrace.Step.ACCEPT_LOCK);
            continued = token;
            continuedByAbort = false;
        } finally {
            drain.unlock();
            lock.unlock();
        }
    }

    void abortHandoff() throws DeviceException {
        lock.lock();
        Lock drain = admission.drain();
        try {
            admission.ensureOpen("abortHandoff");
            if (admission.lpState() == State.ACTIVE) {
                if (continued != null && continuedByAbort) {
                    return;
                }
                throw new IllegalStateException(name + " is ACTIVE with no handoff prepared");
            }
            HandoffToken token = pending;
            if (token == null) {
                throw new IllegalStateException(name + " has no handoff prepared: call prepareHandoff() first");
            }
            activateLocked(token, "abortHandoff", OwnershipTrace.Step.ABORT_LOCK);
            continued = token;
            continuedByAbort = true;
        } finally {
            drain.unlock();
            lock.unlock();
        }
    }

    void close() throws DeviceException {
        lock.lock();
        Lock drain = admission.drain();
        try {
            if (admission.isClosed()) {
                return;
            }
            DeviceException failure = null;
            boolean wasActive = admission.lpState() == State.ACTIVE;
            if (wasActive) {
                failure = closeActiveLocked();
            }
            OwnershipTrace t = trace;
            if (t != null) {
                t.begin();
            }
            try {
                admission.soState(State.INACTIVE);
                admission.markClosed();
                header.drop();
                try {
                    ownership.release(); // writes nothing; a no-op unless held
                } catch (DeviceException e) {
                    failure = addOrSet(failure, e);
                }
            } finally {
                if (t != null) {
                    t.end(image, wasActive ? OwnershipTrace.Step.CLOSE_END : OwnershipTrace.Step.CLOSE_INACTIVE, true, 0,
                            null);
                }
            }
            try {
                deviceRelease.close();
            } catch (Exception e) {
                failure = addOrSet(failure, e instanceof DeviceException ? (DeviceException) e
                        : new DeviceException(DeviceException.Kind.IO_ERROR, "close of " + name + ": " + e, e));
            }
            if (failure != null) {
                throw failure;
            }
        } finally {
            drain.unlock();
            lock.unlock();
        }
    }

    /* ---- Internals (callers hold lock and the drain) ---- */

    private void activateLocked(HandoffToken expected, String op, OwnershipTrace.Step lockStep) throws DeviceException {
        OwnershipTrace t = trace;
        if (t != null) {
            t.begin();
        }
        boolean locked = false;
        try {
            ownership.acquire(); // throws ImageInactiveException: still INACTIVE, nothing held
            locked = true;
        } finally {
            if (t != null) {
                t.end(image, lockStep, locked, expected == null ? 0 : expected.epoch(),
                        expected == null ? null : expected.ownerId());
            }
        }
        try {
            if (t != null) {
                t.begin();
            }
            OwnershipRecord current;
            boolean continues = true;
            try {
                dropCaches();
                current = records.read();
                svCachedRecord(current);
                admission.observeEpoch(current.epoch());
                continues = expected == null || continues(expected, current);
            } finally {
                if (t != null) {
                    t.end(image, OwnershipTrace.Step.ACT_READ, continues, 0, null);
                }
            }
            if (!continues) {
                throw staleToken(expected, current, op);
            }
            long next = Math.max(current.epoch(), admission.laNewestEpoch()) + 1;
            OwnershipRecord mine = new OwnershipRecord(next, ownerId, false);
            if (t != null) {
                t.begin();
            }
            OwnershipRecord found = current;
            try {
                found = records.compareAndWrite(current.epoch(), mine);
                if (found.epoch() == current.epoch()) {
                    svCachedRecord(mine);
                    admission.soEpoch(next);
                    admission.observeEpoch(next);
                    admission.markRecheckedNow();
                    pending = null;
                    admission.soState(State.ACTIVE); // release: publishes the epoch and cachedRecord to laState readers
                } else {
                    admission.observeEpoch(found.epoch());
                }
            } finally {
                if (t != null) {
                    t.end(image, OwnershipTrace.Step.ACT_CAS, found.epoch() == current.epoch(), 0, null);
                }
            }
            if (found.epoch() != current.epoch()) {
                // Someone moved the epoch between our read and our write: only possible if the
                // lock failed to exclude them. The compare makes exactly one of us win.
                throw new ImageFencedException(op + " refused for " + name + ": another holder activated concurrently "
                        + "(record epoch " + found.epoch() + ", owner '" + found.ownerId() + "'); " + name
                        + " remains INACTIVE", current.epoch(), found.epoch());
            }
        } catch (DeviceException | RuntimeException | Error e) {
            if (t != null) {
                t.begin();
            }
            try {
                ownership.release();
            } catch (DeviceException suppressed) {
                e.addSuppressed(suppressed);
            } finally {
                if (t != null) {
                    t.end(image, OwnershipTrace.Step.ACT_FAIL, true, 0, null);
                }
            }
            if (e instanceof ImageInactiveException || e instanceof ImageFencedException || !(e instanceof DeviceException)) {
                throw e;
            }
            DeviceException d = (DeviceException) e;
            throw new DeviceException(d.kind(), op + " failed; " + name
                    + " remains INACTIVE and its lock is released: " + d.getMessage(), d);
        }
    }

    private static boolean continues(HandoffToken token, OwnershipRecord current) {
        return current.epoch() == token.epoch() && current.ownerId().equals(token.ownerId()) && current.clean();
    }

    private ImageFencedException staleToken(HandoffToken token, OwnershipRecord current, String op) {
        String why = current.epoch() > token.epoch()
                ? "another holder activated since (record epoch " + current.epoch() + ", owner '" + current.ownerId() + "')"
                : "the record (epoch " + current.epoch() + ", owner '" + current.ownerId() + "', "
                        + (current.clean() ? "clean" : "unclean") + ") does not continue it";
        return new ImageFencedException(op + " refused for " + name + ": the handoff token (epoch " + token.epoch()
                + ", owner '" + token.ownerId() + "') is stale: " + why + "; " + name + " remains INACTIVE",
                token.epoch(), current.epoch());
    }

    /** Inactivates an ACTIVE handle. */
    private void inactivateLocked(String op, boolean handoff) throws DeviceException {
        OwnershipTrace t = trace;
        if (t != null) {
            t.begin();
        }
        try {
            recheckOrStayActive(op);
        } finally {
            if (t != null) {
                t.end(image, handoff ? OwnershipTrace.Step.PREPARE_READ : OwnershipTrace.Step.INACTIVATE_READ,
                        !admission.isFenced(), 0, null);
            }
        }
        if (admission.isFenced()) {
            throw fencedInactivation(op, "nothing was flushed or written");
        }
        if (t != null) {
            t.begin();
        }
        try {
            device.flush();
        } catch (DeviceException e) {
            throw stillActive(op, "flush", e);
        } finally {
            if (t != null) {
                t.end(image, OwnershipTrace.Step.IN_FLUSH, true, 0, null);
            }
        }
        long epoch = admission.lpEpoch();
        OwnershipRecord clean = new OwnershipRecord(epoch, ownerId, true);
        OwnershipRecord found = null;
        ImageFencedException refused = null;
        if (t != null) {
            t.begin();
        }
        try {
            try {
                found = records.compareAndWrite(epoch, clean);
            } catch (DeviceException e) {
                throw stillActive(op, "writing the ownership record", e);
            }
            if (found.epoch() != epoch) {
                admission.observeEpoch(found.epoch());
                refused = fencedInactivation(op, "the data was flushed but the record was not written");
            } else {
                svCachedRecord(clean);
                if (handoff) {
                    pending = new HandoffToken(clean.epoch(), ownerId);
                }
                admission.soState(State.INACTIVE);
            }
        } finally {
            if (t != null) {
                t.end(image, OwnershipTrace.Step.IN_CAS, found != null && refused == null, 0, null);
            }
        }
        if (refused != null) {
            throw refused;
        }
        if (t != null) {
            t.begin();
        }
        try {
            ownership.release();
        } catch (DeviceException e) {
            throw new DeviceException(e.kind(), op + ": " + name + " is INACTIVE (data and record flushed), "
                    + "but its ownership lock could not be released: " + e.getMessage(), e);
        } finally {
            if (t != null) {
                t.end(image, OwnershipTrace.Step.IN_RELEASE, true, 0, null);
            }
        }
    }

    private void recheckOrStayActive(String op) throws DeviceException {
        try {
            admission.recheckRecord();
        } catch (DeviceException e) {
            throw stillActive(op, "reading the ownership record", e);
        }
    }

    private DeviceException stillActive(String op, String step, DeviceException cause) {
        return new DeviceException(cause.kind(), op + " failed at " + step + "; " + name
                + " remains ACTIVE and still holds its lock: " + cause.getMessage(), cause);
    }

    /** A fenced handle writes nothing on its way out: INACTIVE, lock released, then report. */
    private ImageFencedException fencedInactivation(String op, String what) {
        OwnershipTrace t = trace;
        if (t != null) {
            t.begin();
        }
        try {
            return fencedInactivationStep(op, what);
        } finally {
            if (t != null) {
                t.end(image, OwnershipTrace.Step.IN_FENCED, true, 0, null);
            }
        }
    }

    private ImageFencedException fencedInactivationStep(String op, String what) {
        admission.soState(State.INACTIVE);
        ImageFencedException e = admission.fenced(op, ": " + what + "; " + name
                + " is now INACTIVE and writes since its last successful flush may be lost");
        try {
            ownership.release();
        } catch (DeviceException suppressed) {
            e.addSuppressed(suppressed);
        }
        return e;
    }

    /**
     * Close of an ACTIVE handle: returns the failure to report, never throws. The caller marks it
     * INACTIVE and closed and releases the lock.
     */
    private DeviceException closeActiveLocked() {
        OwnershipTrace t = trace;
        DeviceException failure = null;
        try {
            if (t != null) {
                t.begin();
            }
            try {
                admission.recheckRecord();
            } finally {
                if (t != null) {
                    t.end(image, OwnershipTrace.Step.CLOSE_READ, !admission.isFenced(), 0, null);
                }
            }
            if (admission.isFenced()) {
                failure = admission.fenced("close", ": nothing was flushed or written");
            } else {
                if (t != null) {
                    t.begin();
                }
                try {
                    device.flush();
                } finally {
                    if (t != null) {
                        t.end(image, OwnershipTrace.Step.CLOSE_FLUSH, true, 0, null);
                    }
                }
                long epoch = admission.lpEpoch();
                OwnershipRecord clean = new OwnershipRecord(epoch, ownerId, true);
                if (t != null) {
                    t.begin();
                }
                boolean written = false;
                try {
                    OwnershipRecord found = records.compareAndWrite(epoch, clean);
                    if (found.epoch() != epoch) {
                        admission.observeEpoch(found.epoch());
                        failure = admission.fenced("close", ": the record was not written");
                    } else {
                        svCachedRecord(clean);
                        written = true;
                    }
                } finally {
                    if (t != null) {
                        t.end(image, OwnershipTrace.Step.CLOSE_CAS, written, 0, null);
                    }
                }
            }
        } catch (DeviceException e) {
            failure = new DeviceException(e.kind(), "close of ACTIVE " + name
                    + " could not flush and mark the record clean; the record is left unclean and the handle is closed: "
                    + e.getMessage(), e);
        }
        return failure;
    }

    private void dropCaches() {
        header.drop();
        svCachedRecord(null);
        svCacheDrops(lpCacheDrops() + 1);
    }

    private static DeviceException addOrSet(DeviceException failure, DeviceException e) {
        if (failure == null) {
            return e;
        }
        failure.addSuppressed(e);
        return failure;
    }

    /* ---- Accessors (modes and partners: see "Fields" in the overview) ---- */

    /** The record cached by the last transition (a volatile load, for the probe). */
    OwnershipRecord lvCachedRecord() {
        return (OwnershipRecord) CACHED_RECORD.getVolatile(this); // pairs with svCachedRecord
    }

    private void svCachedRecord(OwnershipRecord r) {
        CACHED_RECORD.setVolatile(this, r); // under lock; stronger than needed
    }

    /** How often the caches were dropped (a volatile load, for the probe). */
    int lvCacheDrops() {
        return (int) CACHE_DROPS.getVolatile(this); // pairs with svCacheDrops
    }

    private int lpCacheDrops() {
        return (int) CACHE_DROPS.get(this); // plain: under lock, as every store
    }

    private void svCacheDrops(int n) {
        CACHE_DROPS.setVolatile(this, n); // under lock; stronger than needed
    }
}
