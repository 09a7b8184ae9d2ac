package dev.handoff.coordination;

import dev.handoff.device.DeviceException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.ZooKeeper;

/**
 * How long the holder of a ZooKeeper lock may still acknowledge writes: the lease that stops a
 * holder that lost contact with the ensemble <em>before</em> the ensemble can expire its session
 * and let another holder take the lock.
 *
 * <h2>The bound</h2>
 * The ensemble expires a session no sooner than the negotiated session timeout {@code T} after it
 * last heard from it. A renewal is a request that must pass the leader in the lock's own session
 * (a check-only multi on the lock znode); when it succeeds, the session was alive at the leader
 * after the renewal was <em>sent</em>. So the lease runs until
 * <pre>
 *   deadline = send time of the last successful renewal + B,   B = T - margin = 0.6 T
 * </pre>
 * on this process's monotonic clock. The margin of 0.4 T covers: the leader learns of a session's
 * activity at a follower only at the follower's next ping (every tickTime / 2, at most T / 4, since
 * ZooKeeper negotiates T at least twice the tickTime); the renewal period (T / 10); and 5 % for
 * clock rates and scheduling. Renewals go out every T / 10 while the lock is held.
 *
 * <p>A holder checks the lease before a write or flush reaches the device and again before it
 * acknowledges it ({@link LeasedDevice}). Once the deadline has passed, nothing more is
 * acknowledged: a write that started before and finished after it fails (it may have reached the
 * device, as any failed write may), and so does every later one. If the same session is later
 * confirmed alive, the lease runs again (no other holder can have taken the lock meanwhile: its
 * ephemeral znode lives as long as the session). If the session ended, or its lock znode is gone,
 * the lease is <em>lost</em> for good: listeners hear of it once, and the holder stays fenced.
 *
 * <h2>Protocol</h2>
 * The current {@link Term} is one immutable object in one field: {@link #arm} and
 * {@link #disarm} set it (under the lock's monitor), a renewal's callback CASes a longer deadline
 * into the term it renewed, {@link #lose} CASes the lost reason into it. I/O threads read it with
 * one volatile load ({@link #admit}, {@link #acknowledge}), which pairs with those writes; a term
 * is never mutated after publication. A renewal that completes after its term was replaced changes
 * nothing (the CAS expects the term object it renewed).
 *
 * <h2>Access modes</h2>
 * {@code term} and {@code renewalInFlight} are touched only through accessors named by mode
 * (CONTRIBUTING, "One accessor convention"): {@code lv} volatile load, {@code sv} volatile store,
 * {@code cas} compare-and-set.
 * <ul>
 *   <li>{@code term}: {@link #svTerm} by {@link #arm} (publishes the new term to the I/O threads)
 *       and {@link #disarm}, under this monitor; {@link #casTerm} by {@link #extend} and
 *       {@link #lose}; {@link #lvTerm} by {@link #current}, pairing with all three. The store in
 *       {@link #arm} needs only release and the loads only acquire (a term is immutable and nothing
 *       else is published through it); volatile is stronger than needed, and costs one fence per
 *       arm, off the I/O path.</li>
 *   <li>{@code renewalInFlight}: {@link #casRenewalInFlight} by the lease thread before a renewal
 *       goes out, {@link #svRenewalInFlight} by its callback (or its failure). It only keeps
 *       renewals from piling up and orders nothing: a release store would do.</li>
 * </ul>
 */
final class SessionLease implements AutoCloseable {
    /** B = T * 6 / 10. */
    static final int BOUND_TENTHS = 6;
    /** Renewal period: T / 10. */
    static final int RENEWALS_PER_TIMEOUT = 10;

    /**
     * One holding of the lock.
     *
     * @param sessionId    the session that created the lock znode
     * @param lockVersion  the lock znode's version (renewals check it)
     * @param timeoutNanos the negotiated session timeout T
     * @param deadline     nanoTime after which nothing is acknowledged
     * @param lost         null, or why the lease is lost for good
     */
    record Term(long sessionId, int lockVersion, long timeoutNanos, long deadline, String lost) {
        long boundNanos() {
            return SessionLease.boundNanos(timeoutNanos);
        }

        Term extendedTo(long newDeadline) {
            return new Term(sessionId, lockVersion, timeoutNanos, Math.max(deadline, newDeadline), lost);
        }

        Term lostBecause(String why) {
            return new Term(sessionId, lockVersion, timeoutNanos, deadline, why);
        }
    }

    private final ZkSession session;
    private final String lockPath;
    private final String imageName;
    private static final VarHandle TERM;
    private static final VarHandle RENEWAL_IN_FLIGHT;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            TERM = l.findVarHandle(SessionLease.class, "term", Term.class);
            RENEWAL_IN_FLIGHT = l.findVarHandle(SessionLease.class, "renewalInFlight", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @SuppressWarnings("unused") // through TERM
    private volatile Term term;
    @SuppressWarnings("unused") // through RENEWAL_IN_FLIGHT: only so that renewals do not pile up
    private volatile boolean renewalInFlight;
    private final List<Consumer<String>> lostListeners = new CopyOnWriteArrayList<>();
    private final ScheduledExecutorService timer;
    private ScheduledFuture<?> renewals; // guarded by this

    SessionLease(ZkSession session, String imageName) {
        this.session = session;
        this.lockPath = session.address().lockPath();
        this.imageName = imageName;
        this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "handoff-zk-lease");
            t.setDaemon(true);
            return t;
        });
    }

    static long boundNanos(long timeoutNanos) {
        return timeoutNanos / 10 * BOUND_TENTHS;
    }

    /** Starts a term: the lock znode was created in {@code sessionId} by a request sent at {@code sentAt}. */
    synchronized void arm(long sessionId, int lockVersion, long timeoutNanos, long sentAt) {
        Term t = new Term(sessionId, lockVersion, timeoutNanos, sentAt + boundNanos(timeoutNanos), null);
        svTerm(t); // publishes the term to admit/acknowledge
        if (renewals != null) {
            renewals.cancel(false);
        }
        long period = Math.max(1, timeoutNanos / RENEWALS_PER_TIMEOUT);
        renewals = timer.scheduleWithFixedDelay(this::renew, period, period, TimeUnit.NANOSECONDS);
    }

    /** Ends the term (the lock is being released). */
    synchronized void disarm() {
        svTerm(null); // admit now refuses, as no lock is held
        if (renewals != null) {
            renewals.cancel(false);
            renewals = null;
        }
    }

    Term current() {
        return lvTerm();
    }

    /** Registers a listener told once per term, on the lease thread, that the lease is lost for good. */
    void onLost(Consumer<String> listener) {
        lostListeners.add(listener);
    }

    /**
     * Refuses an operation before it reaches the device if the lease has lapsed or is lost.
     *
     * @throws DeviceException of kind {@link DeviceException.Kind#FENCED}; nothing was done
     */
    void admit(String op) throws DeviceException {
        Term t = current();
        String why = refusal(t, System.nanoTime());
        if (why != null) {
            throw fenced(t, op + " refused: " + why + "; nothing was written");
        }
    }

    /**
     * Refuses to acknowledge an operation that completed on the device if the lease lapsed or was
     * lost meanwhile.
     *
     * @throws DeviceException of kind {@link DeviceException.Kind#FENCED}
     */
    void acknowledge(String op) throws DeviceException {
        Term t = current();
        String why = refusal(t, System.nanoTime());
        if (why != null) {
            throw fenced(t, op + " is not acknowledged: " + why
                    + " before it completed (it may have reached the device, as any failed write may)");
        }
    }

    private String refusal(Term t, long now) {
        if (t == null) {
            return imageName + " holds no ZooKeeper lock";
        }
        if (t.lost() != null) {
            return "the ZooKeeper session that held " + imageName + "'s lock is lost (" + t.lost()
                    + "); this holder is fenced";
        }
        if (now - t.deadline() >= 0) {
            return imageName + "'s ownership lease lapsed " + millis(now - t.deadline()) + " ms ago (no confirmed contact"
                    + " with the ZooKeeper ensemble for " + millis(now - t.deadline() + t.boundNanos()) + " ms; the bound is "
                    + millis(t.boundNanos()) + " ms of the " + millis(t.timeoutNanos()) + " ms session timeout)";
        }
        return null;
    }

    private static DeviceException fenced(Term t, String message) {
        if (t != null && t.lost() != null) {
            return new CoordinationException(CoordinationException.Reason.SESSION_LOST, message);
        }
        return new DeviceException(DeviceException.Kind.FENCED, message);
    }

    /** The lease thread's periodic step: one renewal at a time, in the term's own session. */
    private void renew() {
        Term t = current();
        if (t == null || t.lost() != null) {
            return;
        }
        ZooKeeper zk;
        try {
            zk = session.handle();
        } catch (DeviceException closed) {
            return;
        }
        if (zk.getSessionId() != t.sessionId()) {
            lose(t, "session 0x" + Long.toHexString(t.sessionId()) + " ended: the ensemble expired it (no contact for its "
                    + millis(t.timeoutNanos()) + " ms timeout) or it was closed, and deleted its lock znode");
            return;
        }
        if (!casRenewalInFlight(false, true)) {
            return;
        }
        long sent = System.nanoTime();
        try {
            zk.multi(List.of(Op.check(lockPath, t.lockVersion())), (rc, path, ctx, results) -> {
                svRenewalInFlight(false);
                KeeperException.Code code = KeeperException.Code.get(rc);
                if (code == KeeperException.Code.OK) {
                    extend(t, sent + t.boundNanos());
                } else if (code == KeeperException.Code.SESSIONEXPIRED || code == KeeperException.Code.NONODE
                        || code == KeeperException.Code.BADVERSION || code == KeeperException.Code.SESSIONMOVED) {
                    lose(t, "renewal of session 0x" + Long.toHexString(t.sessionId()) + " failed: " + code);
                }
                // Anything else (connection loss): no renewal; the deadline runs out on its own.
            }, null);
        } catch (RuntimeException e) {
            svRenewalInFlight(false);
        }
    }

    /** Moves the deadline of term {@code t} (if it is still the current term) forward. */
    private void extend(Term t, long newDeadline) {
        Term cur = current();
        while (cur != null && cur.sessionId() == t.sessionId() && cur.lost() == null && cur.deadline() - newDeadline < 0) {
            if (casTerm(cur, cur.extendedTo(newDeadline))) { // publishes the new deadline
                return;
            }
            cur = current();
        }
    }

    /** Marks term {@code t} (if current) lost for good and tells the listeners, once. */
    void lose(Term t, String why) {
        Term cur = current();
        while (cur != null && cur.sessionId() == t.sessionId() && cur.lost() == null) {
            if (casTerm(cur, cur.lostBecause(why))) { // admit refuses from here on
                for (Consumer<String> l : lostListeners) {
                    try {
                        l.accept(why);
                    } catch (RuntimeException ignored) {
                        // a listener's failure is its own
                    }
                }
                return;
            }
            cur = current();
        }
    }

    private static long millis(long nanos) {
        return TimeUnit.NANOSECONDS.toMillis(nanos);
    }

    @Override
    public void close() {
        disarm();
        timer.shutdownNow();
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private Term lvTerm() {
        return (Term) TERM.getVolatile(this); // pairs with svTerm and casTerm
    }

    private void svTerm(Term t) {
        TERM.setVolatile(this, t); // under this monitor; a release would do
    }

    private boolean casTerm(Term expected, Term next) {
        return TERM.compareAndSet(this, expected, next); // a renewal's extension or the loss: one wins
    }

    private boolean casRenewalInFlight(boolean expected, boolean next) {
        return RENEWAL_IN_FLIGHT.compareAndSet(this, expected, next); // one renewal at a time
    }

    private void svRenewalInFlight(boolean inFlight) {
        RENEWAL_IN_FLIGHT.setVolatile(this, inFlight); // orders nothing; a release would do
    }
}
