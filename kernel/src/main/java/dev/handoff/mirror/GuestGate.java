package dev.handoff.mirror;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Counts guest operations inside the mirror filter and can hold new ones out, so the job can
 * switch the guest's device (pivot) or stop mirroring with no guest operation half done.
 *
 * <h2>Protocol overview</h2>
 * One {@code long} holds both facts: the sign bit is "closed", the rest counts the operations
 * inside. {@link #enter()} is a single {@code getAndAdd(+1)}; if the gate turns out closed the
 * guest backs out and waits. {@link #exit()} is a single {@code getAndAdd(-1)}; the exit that
 * leaves a closed gate empty runs the {@code onDrained} callback. {@link #close()} sets the sign
 * bit with one RMW and reports whether the gate was already empty. All three are volatile RMWs
 * on the same variable, so they are totally ordered: an operation either entered before the
 * close (and is counted, so the closer waits for its exit) or sees the closed bit (and waits).
 * The exit RMW publishes everything the guest did inside (its source write, its dirty mark) to
 * the thread that observes the count reach zero. The open path publishes the new route
 * (written before {@link #open()}) to every guest's next {@code enter}.
 *
 * <p>The open fast path takes no lock and allocates nothing. Waiting for a closed gate uses a
 * lock and a condition: a waiter re-checks the closed bit under the lock before sleeping, and
 * {@link #open()} clears the bit before signalling under the same lock, so no wake-up is lost.
 *
 * <h2>Access modes</h2>
 * {@code state} is touched only through accessors named by mode (CONTRIBUTING, "One accessor
 * convention"): {@code lv} volatile load; {@code getAndAdd}, {@code getAndOr}, {@code getAndAnd}
 * volatile read-modify-writes.
 * <ul>
 *   <li>{@link #getAndAddState}: {@code +1} by {@link #tryEnter}, ordered against the closer's
 *       {@link #getAndOrState}; {@code -1} by {@link #exit}, publishing the guest's work to the
 *       thread that sees the count reach zero (the exit that runs {@code onDrained}, or a later
 *       {@link #lvState}).</li>
 *   <li>{@link #getAndOrState} by {@link #close}: one total order with every entry and exit.</li>
 *   <li>{@link #getAndAndState} by {@link #open}: publishes the opener's route switch to the
 *       next {@link #getAndAddState} of every guest.</li>
 *   <li>{@link #lvState} by {@link #isClosed}, {@link #isDrained}, {@link #inside} (snapshots) and
 *       by {@link #awaitOpen} under the lock. Stronger than needed in both: a snapshot would do
 *       with an opaque load, and the waiter's re-check is ordered by the lock that
 *       {@link #open} takes after its RMW (a plain load would not lose a wake-up); one volatile
 *       accessor serves them all, off the fast path.</li>
 * </ul>
 */
final class GuestGate {
    private static final long CLOSED = Long.MIN_VALUE;
    private static final VarHandle STATE;

    static {
        try {
            STATE = MethodHandles.lookup().findVarHandle(GuestGate.class, "state", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final Runnable onDrained;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition opened = lock.newCondition();
    /** Sign bit: closed. Low 63 bits: operations inside. Only through the accessors below. */
    @SuppressWarnings("unused")
    private volatile long state;

    /** {@code onDrained} runs on the thread whose exit empties a closed gate; it must not block. */
    GuestGate(Runnable onDrained) {
        this.onDrained = onDrained;
    }

    /** Enters, waiting while the gate is closed. */
    void enter() {
        while (!tryEnter()) {
            awaitOpen();
        }
    }

    /**
     * Enters if the gate is open; otherwise backs out (which may run the drained callback) and
     * returns false: the caller then {@link #awaitOpen() waits} and tries again.
     */
    boolean tryEnter() {
        long s = getAndAddState(1L); // orders this entry against close()
        if (s >= 0) {
            return true;
        }
        exit(); // back out: the closer must not wait for us
        return false;
    }

    /** Leaves; the last exit from a closed gate runs the drained callback. */
    void exit() {
        long s = getAndAddState(-1L) - 1; // publishes the guest's work to whoever sees zero
        if (s == CLOSED) {
            onDrained.run();
        }
    }

    /**
     * Holds new operations out. Returns true if none is inside (the gate is drained now);
     * otherwise the last exit runs the callback. The callback may also run for an entry that
     * backed out, so it must be idempotent.
     */
    boolean close() {
        long s = getAndOrState(CLOSED);
        return (s & ~CLOSED) == 0;
    }

    /** Lets operations in again and wakes those waiting. */
    void open() {
        getAndAndState(~CLOSED); // publishes the route switch to every later enter()
        lock.lock();
        try {
            opened.signalAll();
        } finally {
            lock.unlock();
        }
    }

    boolean isClosed() {
        return lvState() < 0;
    }

    /** Whether the gate is closed and empty. */
    boolean isDrained() {
        return lvState() == CLOSED;
    }

    /** Operations inside now. */
    long inside() {
        return lvState() & ~CLOSED;
    }

    /** Waits until the gate is open (it may close again before the caller's next try). */
    void awaitOpen() {
        boolean interrupted = false;
        lock.lock();
        try {
            while (lvState() < 0) {
                try {
                    opened.await();
                } catch (InterruptedException e) {
                    // A held guest operation is not abandoned; the interrupt is restored after.
                    interrupted = true;
                }
            }
        } finally {
            lock.unlock();
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private long lvState() {
        return (long) STATE.getVolatile(this); // pairs with every RMW below
    }

    /** Volatile RMW: an entry (+1) or an exit (-1), totally ordered with close and open. */
    private long getAndAddState(long delta) {
        return (long) STATE.getAndAdd(this, delta);
    }

    /** Volatile RMW: sets the closed bit (close). */
    private long getAndOrState(long bits) {
        return (long) STATE.getAndBitwiseOr(this, bits);
    }

    /** Volatile RMW: clears the closed bit (open), publishing the route switch written before it. */
    private long getAndAndState(long bits) {
        return (long) STATE.getAndBitwiseAnd(this, bits);
    }

    /* ---- For a scheduler that runs one thread at a time (the simulator, through MirrorProbe) ---- */

    /**
     * The lock a waiter sleeps under. A scheduler that holds it while it runs other work defers
     * every wake-up until it unlocks: the woken waiter queues for the lock. Never used by the kernel.
     */
    ReentrantLock waitLock() {
        return lock;
    }

    /**
     * The condition a waiter in {@link #awaitOpen} parks on (with {@link #waitLock}, what a
     * scheduler asks to know whether a thread sleeps here). Never used by the kernel.
     */
    Condition waitCondition() {
        return opened;
    }
}
