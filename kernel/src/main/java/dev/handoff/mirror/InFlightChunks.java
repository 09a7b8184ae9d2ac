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
 * anything. Within one word a claim takes every free chunk below the first held one in one CAS
 * (the same ascending order, taken at once), and a release clears a word's chunks in one RMW.
 * Waiting is the one place with a lock: waiters register under {@link #lock} and re-try before
 * sleeping; {@link #release} clears the bits with a volatile RMW and then reads {@link #waiters}
 * (volatile). Waiter (write waiters, read bit) and releaser (write bit, read waiters) form a
 * store-load pair of volatile accesses, so at least one sees the other: either the waiter's
 * retry succeeds or the releaser signals.
 *
 * <h2>Access modes</h2>
 * Accessors named by mode (CONTRIBUTING, "One accessor convention"): {@code lv} volatile load,
 * {@code cas} compare-and-set, {@code getAndAnd}/{@code getAndAdd} volatile read-modify-writes.
 * <ul>
 *   <li>{@code bits}: {@link #casWord} claims, acquiring what the previous holder published with
 *       its release; {@link #getAndAndWord} releases, publishing the holder's target write to the
 *       next claimant's CAS; {@link #lvWord} reads. Stronger than needed in
 *       {@link #isClaimed}/{@link #anyClaimed} (a snapshot; an opaque load would do, but the
 *       read before a CAS needs no more than it either way).</li>
 *   <li>{@code waiters}: {@link #getAndAddWaiters} under {@link #lock} by waiters, before their
 *       retry; {@link #lvWaiters} by the releaser after its RMW (the store-load pair above).</li>
 * </ul>
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
        return tryClaimRun(chunk, chunk) == 1;
    }

    /**
     * Claims every chunk in {@code [first, last]}, in ascending order, waiting for held ones: per
     * word, one CAS for the free chunks below the first held one.
     */
    void claim(long first, long last) {
        long c = first;
        while (c <= last) {
            long wordLast = Math.min(last, c | 63);
            c += guestTryClaimRun(c, wordLast);
            if (c <= wordLast) { // chunk c is held: wait for it, then go on above it
                awaitClaim(c);
                c++;
            }
        }
    }

    /**
     * Claims, in one CAS, the chunks of {@code [from, to]} (within one word) from {@code from} up
     * to the first one held; returns how many (0 if {@code from} is held). Never blocks.
     */
    private long tryClaimRun(long from, long to) {
        int w = (int) (from >>> 6);
        long mask = (-1L << from) & (-1L >>> (63 - (to & 63)));
        while (true) {
            long word = lvWord(w);
            long held = word & mask;
            long take = held == 0 ? mask : mask & (Long.lowestOneBit(held) - 1);
            if (take == 0) {
                return 0;
            }
            if (casWord(w, word, word | take)) {
                return Long.bitCount(take);
            }
        }
    }

    /** A guest's claim attempt: {@link #tryClaimRun}, one traced step for the chunks it took. */
    private long guestTryClaimRun(long from, long to) {
        MirrorTrace t = trace;
        if (t == null) {
            return tryClaimRun(from, to);
        }
        t.begin();
        long claimed = tryClaimRun(from, to);
        t.end(claimed > 0 ? MirrorTrace.Step.WB_CLAIM : MirrorTrace.Step.NONE, 0, from, claimed);
        return claimed;
    }

    /** Releases {@code [first, last]}, one RMW per word, and wakes waiters. */
    void release(long first, long last) {
        MirrorTrace t = trace;
        for (long c = first; c <= last; ) {
            long wordLast = Math.min(last, c | 63);
            if (t != null) {
                t.begin();
            }
            getAndAndWord((int) (c >>> 6), ~((-1L << c) & (-1L >>> (63 - (wordLast & 63)))));
            if (t != null) {
                t.end(MirrorTrace.Step.RELEASE, 0, c, wordLast - c + 1);
            }
            c = wordLast + 1;
        }
        if (lvWaiters() > 0) { // after the release: pairs with the waiter's increment (class comment)
            lock.lock();
            try {
                released.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    /** Whether {@code chunk} is claimed. */
    boolean isClaimed(long chunk) {
        return (lvWord((int) (chunk >>> 6)) & (1L << chunk)) != 0;
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
            getAndAddWaiters(1); // before the retry: pairs with release's lvWaiters
            try {
                while (guestTryClaimRun(chunk, chunk) == 0) {
                    try {
                        released.await();
                    } catch (InterruptedException e) {
                        // A guest write cannot be abandoned half way: keep waiting, restore the flag.
                        interrupted = true;
                    }
                }
            } finally {
                getAndAddWaiters(-1);
            }
        } finally {
            lock.unlock();
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private long lvWord(int w) {
        return (long) LONGS.getVolatile(bits, w); // pairs with casWord and getAndAndWord
    }

    /** Volatile CAS: acquires what the previous holder published with its release. */
    private boolean casWord(int w, long expected, long next) {
        return LONGS.compareAndSet(bits, w, expected, next);
    }

    /** Volatile RMW: publishes the holder's target write to the next claimant's CAS. */
    private void getAndAndWord(int w, long keep) {
        LONGS.getAndBitwiseAnd(bits, w, keep);
    }

    private int lvWaiters() {
        return (int) WAITERS.getVolatile(this); // pairs with getAndAddWaiters
    }

    private void getAndAddWaiters(int delta) {
        WAITERS.getAndAdd(this, delta); // volatile RMW, under lock
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
     * The condition a waiter in {@link #awaitClaim} parks on (with {@link #waitLock}, what a
     * scheduler asks to know whether a thread sleeps here). Never used by the kernel.
     */
    Condition waitCondition() {
        return released;
    }
}
