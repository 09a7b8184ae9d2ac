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
    /** Sign bit: closed. Low 63 bits: operations inside. Only accessed through {@link #STATE}. */
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
        // Volatile RMW: orders this entry against close() (see class comment).
        long s = (long) STATE.getAndAdd(this, 1L);
        if (s >= 0) {
            return true;
        }
        exit(); // back out: the closer must not wait for us
        return false;
    }

    /** Leaves; the last exit from a closed gate runs the drained callback. */
    void exit() {
        // Volatile RMW: publishes the guest's work to whoever sees the count reach zero.
        long s = (long) STATE.getAndAdd(this, -1L) - 1;
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
        long s = (long) STATE.getAndBitwiseOr(this, CLOSED);
        return (s & ~CLOSED) == 0;
    }

    /** Lets operations in again and wakes those waiting. */
    void open() {
        // Volatile RMW: publishes what the opener did (the route switch) to every later enter().
        STATE.getAndBitwiseAnd(this, ~CLOSED);
        lock.lock();
        try {
            opened.signalAll();
        } finally {
            lock.unlock();
        }
    }

    boolean isClosed() {
        return (long) STATE.getVolatile(this) < 0;
    }

    /** Whether the gate is closed and empty. */
    boolean isDrained() {
        return (long) STATE.getVolatile(this) == CLOSED;
    }

    /** Operations inside now. */
    long inside() {
        return (long) STATE.getVolatile(this) & ~CLOSED;
    }

    /** Waits until the gate is open (it may close again before the caller's next try). */
    void awaitOpen() {
        boolean interrupted = false;
        lock.lock();
        try {
            while ((long) STATE.getVolatile(this) < 0) {
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
}
