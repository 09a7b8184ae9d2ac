package dev.handoff.mirror;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Counts guest operations inside the mirror filter and can hold new ones out, so the job can
 * switch the guest's device (pivot) or stop mirroring with no guest operation half done.
 *
 * <h2>Protocol overview</h2> Specified, one action per volatile access, in specs/tla/GuestGate/GuestGate.tla.
 * The count is striped (as {@link java.util.concurrent.atomic.LongAdder} stripes a sum): each
 * thread counts its operations in a cell of its own ({@link #stripe}: its thread id masked), and
 * the operations inside are the sum of the cells. "Closed" is a separate flag. So two guest
 * threads on different cells never write the same cache line: an entry and an exit are one
 * read-modify-write each on the thread's own cell, and one read of the flag, a line every guest
 * only reads while the gate stays open.
 * <ul>
 *   <li>{@link #tryEnter}: add 1 to the thread's cell (announce), then read the flag; if it is
 *       set, back out through {@link #exit} (the closer must not wait for us) and return false:
 *       the caller {@link #awaitOpen waits} and tries again.</li>
 *   <li>{@link #exit}: subtract 1 from the thread's cell, then read the flag and, if it is set,
 *       sum the cells: a closed gate found empty runs the {@code onDrained} callback.</li>
 *   <li>{@link #close}: set the flag, then sum the cells: true if the gate is empty (drained now);
 *       otherwise an exit runs the callback.</li>
 *   <li>{@link #open}: clear the flag, then wake the waiters.</li>
 * </ul>
 * An exit must run on the thread that entered: it takes 1 from that thread's cell (the filter
 * enters and exits around each operation on the guest's thread). A cell then never drops below
 * zero: it counts the operations of its threads that have announced and not yet left.
 *
 * <p>Why it is correct. Every access to the cells and the flag is volatile, so they all lie in one
 * synchronization order that agrees with each thread's program order; each side writes first and
 * reads the other's variable after (a Dekker pair), so at least one sees the other:
 * <ul>
 *   <li><b>Entry vs close.</b> The guest adds to its cell, then reads the flag; the closer sets the
 *       flag, then reads every cell. Either the guest reads the flag set (and backs out), or the
 *       closer's read of the guest's cell comes after the guest's add and counts it. So neither
 *       {@link #close} nor {@link #isDrained} says "drained" while a guest that passed the check is
 *       inside. The sum is not one atomic snapshot, but it can only miss an entry that announced
 *       after the sum read its cell, and that entry, by the same order, reads the flag set and
 *       backs out: a guest the sum misses never passes.</li>
 *   <li><b>Last exits vs each other.</b> Of the exits from a closed gate, the one whose subtract
 *       comes last in the order reads the flag set and sums after every other subtract, so it
 *       finds the gate empty: a drain is never lost. Two exits may both find it empty and both run
 *       the callback, which is why {@code onDrained} must be idempotent (it already had to be: an
 *       entry that backs out also runs it).</li>
 *   <li><b>Exit vs close.</b> Either the exit reads the flag set (and sums after its own subtract),
 *       or the closer's sum comes after the subtract and returns true.</li>
 *   <li><b>Open.</b> Clearing the flag is a volatile store: the opener's route switch, written
 *       before it, reaches every entry whose read of the flag sees it clear.</li>
 *   <li><b>Publication.</b> A guest's work inside (its source write, its dirty mark) comes before
 *       its subtract, and the thread that sums to zero reads that cell after it.</li>
 * </ul>
 *
 * <p>Cost on x86-64: entry and exit each keep one {@code lock xadd}, now on a line no other writer
 * uses, and add one load of the flag (a line all guests share read-only while the gate is open).
 * Closing, draining and {@link #inside} read every cell: they are the job's, off the guest's path.
 *
 * <p>Layout: cell {@code i} is {@code cells[(i + 1) * PAD]}, {@link #PAD} longs (128 bytes) apart,
 * with a leading block of padding and a trailing one after the last cell: no two cells share a
 * cache line or an adjacent-line prefetch pair, nor does a cell share one with another object's
 * field. {@link #STRIPES} cells: a power of two, twice the processors (thread ids are handed out in
 * sequence, so the threads that run at once spread over the cells), at least 4 and at most 64
 * (8 KiB per gate; more threads than that sharing a few cells cost only what the one word cost).
 *
 * <p>The open fast path takes no lock and allocates nothing. Waiting for a closed gate uses a
 * lock and a condition: a waiter re-checks the flag under the lock before sleeping, and
 * {@link #open()} clears the flag before signalling under the same lock, so no wake-up is lost.
 *
 * <h2>Access modes</h2>
 * {@code cells} and {@code closed} are touched only through accessors named by mode (CONTRIBUTING,
 * "One accessor convention"): {@code lv} volatile load, {@code sv} volatile store; {@code getAndAdd}
 * a volatile read-modify-write.
 * <ul>
 *   <li>{@link #getAndAddCell}: {@code +1} by {@link #tryEnter} (announce), before its
 *       {@link #lvClosed}: the guest's side of the pair with the closer's {@link #svClosed} then
 *       {@link #lvCell}; {@code -1} by {@link #exit}, publishing the guest's work to the thread
 *       whose sum reads the cell after it, and before the exit's own {@link #lvClosed} and sum
 *       (the last exit's side of the drain). A read-modify-write where a store would not do: a
 *       cell is shared by every thread whose id has the same stripe.</li>
 *   <li>{@link #lvCell} by {@link #sumCells}: in {@link #close} and {@link #isDrained} after the
 *       flag (pairs with the guest's add then {@link #lvClosed}), in {@link #exit} after its
 *       subtract (pairs with the other exits' subtracts), and in {@link #inside} (a snapshot;
 *       stronger than needed there, an opaque load would do).</li>
 *   <li>{@link #svClosed}: {@code true} by {@link #close}, before its sum (the closer's side of
 *       the pair); {@code false} by {@link #open}, publishing the opener's route switch to every
 *       later {@link #lvClosed} that reads it. A release store would do for open; one accessor
 *       serves both, off the guest's path.</li>
 *   <li>{@link #lvClosed} by {@link #tryEnter} after its add, by {@link #exit} after its
 *       subtract, by {@link #isClosed} and {@link #isDrained} (before the sum), and by
 *       {@link #awaitOpen} under the lock. Stronger than needed in the waiter's re-check, which
 *       is ordered by the lock that {@link #open} takes after its store.</li>
 * </ul>
 */
final class GuestGate {
    private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);
    private static final VarHandle CLOSED;
    /** Longs between two cells: 128 bytes, two cache lines (the adjacent-line prefetcher's pair). */
    static final int PAD = 16;
    /** Cells: twice the processors rounded up to a power of two, at least 4, at most 64. */
    static final int STRIPES = stripesFor(Runtime.getRuntime().availableProcessors());
    private static final int MASK = STRIPES - 1;

    static {
        try {
            CLOSED = MethodHandles.lookup().findVarHandle(GuestGate.class, "closed", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final Runnable onDrained;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition opened = lock.newCondition();
    /** Cell {@code i} at {@code (i + 1) * PAD}: operations inside counted by the threads of stripe i. */
    private final long[] cells = new long[(STRIPES + 1) * PAD];
    /** Whether new operations are held out. Only through the accessors below. */
    @SuppressWarnings("unused")
    private volatile boolean closed;

    /**
     * {@code onDrained} runs on a thread whose exit finds a closed gate empty; it must not block,
     * and must be idempotent (it may run more than once per close).
     */
    GuestGate(Runnable onDrained) {
        this.onDrained = onDrained;
    }

    /** The stripe count for {@code processors}: a power of two, {@code 2 * processors}, in [4, 64]. */
    static int stripesFor(int processors) {
        int wanted = Math.max(4, Math.min(64, 2 * Math.max(1, processors)));
        return Integer.highestOneBit(wanted - 1) << 1; // the next power of two (wanted >= 4)
    }

    /** The cell of the thread with id {@code threadId}: stable per thread, adjacent ids apart. */
    static int stripe(long threadId) {
        return (int) threadId & MASK;
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
        getAndAddCell(stripe(Thread.currentThread().getId()), 1L); // announce, then check: vs close()
        if (!lvClosed()) {
            return true;
        }
        exit(); // back out: the closer must not wait for us
        return false;
    }

    /**
     * Leaves, on the thread that entered; an exit that finds a closed gate empty runs the drained
     * callback.
     */
    void exit() {
        getAndAddCell(stripe(Thread.currentThread().getId()), -1L); // publishes the guest's work to the summer
        if (lvClosed() && sumCells() == 0) {
            onDrained.run();
        }
    }

    /**
     * Holds new operations out. Returns true if none is inside (the gate is drained now);
     * otherwise an exit runs the callback. The callback may also run for an entry that backed
     * out, and for more than one exit, so it must be idempotent.
     */
    boolean close() {
        svClosed(true); // close, then sum: vs tryEnter()
        return sumCells() == 0;
    }

    /** Lets operations in again and wakes those waiting. */
    void open() {
        svClosed(false); // publishes the route switch to every later entry's check
        lock.lock();
        try {
            opened.signalAll();
        } finally {
            lock.unlock();
        }
    }

    boolean isClosed() {
        return lvClosed();
    }

    /** Whether the gate is closed and empty. */
    boolean isDrained() {
        return lvClosed() && sumCells() == 0;
    }

    /** Operations inside now (entries that will back out included, until they do). */
    long inside() {
        return sumCells();
    }

    /** Waits until the gate is open (it may close again before the caller's next try). */
    void awaitOpen() {
        boolean interrupted = false;
        lock.lock();
        try {
            while (lvClosed()) {
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

    /** The sum of the cells, one volatile load each (not one atomic snapshot: see the class comment). */
    private long sumCells() {
        long sum = 0;
        for (int i = 0; i < STRIPES; i++) {
            sum += lvCell(i);
        }
        return sum;
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    /** Volatile RMW of cell {@code i}: an entry (+1) or an exit (-1). */
    private void getAndAddCell(int i, long delta) {
        LONGS.getAndAdd(cells, (i + 1) * PAD, delta);
    }

    /** Volatile load of cell {@code i}: pairs with the entries' and exits' RMWs. */
    private long lvCell(int i) {
        return (long) LONGS.getVolatile(cells, (i + 1) * PAD);
    }

    /** Volatile load: pairs with svClosed; after an entry's or exit's RMW, the guest's side. */
    private boolean lvClosed() {
        return (boolean) CLOSED.getVolatile(this);
    }

    /** Volatile store: close (before the closer's sum) or open (after the route switch). */
    private void svClosed(boolean value) {
        CLOSED.setVolatile(this, value);
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
