package dev.handoff.mirror;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Claims on chunks: a chunk with its bit set has one operation on its way to the target, either
 * a background copy or a write-blocking guest write. At most one claim per chunk exists at any
 * time (DESIGN §3.3), which also orders two write-blocking guest writes to the same chunk
 * identically on source and target.
 *
 * <h2>Protocol overview</h2>
 * The copier {@link #tryClaim tries} chunk by chunk and never waits: a chunk it cannot claim is
 * skipped and found again later. A write-blocking guest write {@link #claim claims} its whole
 * range and waits for chunks held by a copy; it claims in ascending chunk order, so two guests
 * waiting on each other cannot form a cycle, and the copier holds no claim while waiting for
 * anything. Waiting is the one place with a lock: waiters register under {@link #lock} and
 * re-try before sleeping; {@link #release} clears the bits with a volatile RMW and then reads
 * {@link #waiters} (volatile). Waiter (write waiters, read bit) and releaser (write bit, read
 * waiters) form a store-load pair of volatile accesses, so at least one sees the other: either
 * the waiter's retry succeeds or the releaser signals.
 *
 * <p>Layout: {@code bits[w]} bit {@code b} = chunk {@code 64*w + b} is claimed.
 */
final class InFlightChunks {
    private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);
    private static final VarHandle WAITERS;

    static {
        try {
            WAITERS = MethodHandles.lookup().findVarHandle(InFlightChunks.class, "waiters", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final long chunkCount;
    private final long[] bits;
    /** Null unless the job is traced (MirrorTrace): then each guest claim and each release is a step. */
    private final MirrorTrace trace;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition released = lock.newCondition();
    /** Threads waiting in {@link #claim}; written under {@link #lock} with volatile semantics. */
    @SuppressWarnings("unused")
    private volatile int waiters;

    InFlightChunks(long chunkCount) {
        this(chunkCount, null);
    }

    InFlightChunks(long chunkCount, MirrorTrace trace) {
        this.chunkCount = chunkCount;
        this.bits = new long[(int) ((chunkCount + 63) >>> 6)];
        this.trace = trace;
    }

    /** Claims {@code chunk} if no one holds it. Never blocks. */
    boolean tryClaim(long chunk) {
        int w = (int) (chunk >>> 6);
        long bit = 1L << chunk;
        while (true) {
            long word = (long) LONGS.getVolatile(bits, w);
            if ((word & bit) != 0) {
                return false;
            }
            // Volatile CAS: acquires what the previous holder published with its release.
            if (LONGS.compareAndSet(bits, w, word, word | bit)) {
                return true;
            }
        }
    }

    /** Claims every chunk in {@code [first, last]}, in ascending order, waiting for held ones. */
    void claim(long first, long last) {
        for (long c = first; c <= last; c++) {
            if (!guestTryClaim(c)) {
                awaitClaim(c);
            }
        }
    }

    /** A guest's claim attempt: {@link #tryClaim}, one traced step when it succeeds. */
    private boolean guestTryClaim(long chunk) {
        MirrorTrace t = trace;
        if (t == null) {
            return tryClaim(chunk);
        }
        t.begin();
        boolean claimed = tryClaim(chunk);
        t.end(claimed ? MirrorTrace.Step.WB_CLAIM : MirrorTrace.Step.NONE, 0, chunk, 0);
        return claimed;
    }

    /** Releases {@code [first, last]} and wakes waiters. */
    void release(long first, long last) {
        MirrorTrace t = trace;
        for (long c = first; c <= last; c++) {
            if (t != null) {
                t.begin();
            }
            // Volatile RMW: publishes the holder's target write to the next claimant's CAS.
            LONGS.getAndBitwiseAnd(bits, (int) (c >>> 6), ~(1L << c));
            if (t != null) {
                t.end(MirrorTrace.Step.RELEASE, 0, c, 0);
            }
        }
        // Volatile read after the release: pairs with the waiter's volatile increment (class comment).
        if ((int) WAITERS.getVolatile(this) > 0) {
            lock.lock();
            try {
                released.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    /** Whether {@code chunk} is claimed (volatile read). */
    boolean isClaimed(long chunk) {
        return ((long) LONGS.getVolatile(bits, (int) (chunk >>> 6)) & (1L << chunk)) != 0;
    }

    /** Whether any chunk in {@code [first, last]} is claimed. */
    boolean anyClaimed(long first, long last) {
        for (long c = first; c <= last; c++) {
            if (isClaimed(c)) {
                return true;
            }
        }
        return false;
    }

    long chunkCount() {
        return chunkCount;
    }

    private void awaitClaim(long chunk) {
        boolean interrupted = false;
        lock.lock();
        try {
            // Volatile increment before the retry: pairs with release's volatile read of waiters.
            WAITERS.getAndAdd(this, 1);
            try {
                while (!guestTryClaim(chunk)) {
                    try {
                        released.await();
                    } catch (InterruptedException e) {
                        // A guest write cannot be abandoned half way: keep waiting, restore the flag.
                        interrupted = true;
                    }
                }
            } finally {
                WAITERS.getAndAdd(this, -1);
            }
        } finally {
            lock.unlock();
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
