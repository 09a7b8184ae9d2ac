package dev.handoff.mirror;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The one {@link JobRuntime} that checks step by hand: tasks queue up and run only when the
 * caller says which, on the caller's thread, and time is virtual and moves only when the caller
 * moves it. The kernel's unit tests, the jcstress and Lincheck rigs ({@code MirrorRig}) and the
 * deterministic simulators ({@code properties/}) all drive jobs through it.
 *
 * <h2>Tasks and time</h2>
 * Each queued task carries the virtual time at which it is <em>due</em>: now for
 * {@link #execute} (plus a seeded latency, drawn from the runtime's own random, if the runtime
 * was made {@link #withLatency with one}: a slow device step), now plus the delay for
 * {@link #schedule}. Tasks stay in the order they were queued; only due tasks run, except that
 * {@link #step} moves the clock to the earliest task when none is due, as a pool would sleep
 * until its next timer. The order of due tasks is part of a scenario: {@link #step} picks one by
 * index, which is where reordered copies come from; {@link #runNext} and {@link #runLast} take
 * the oldest and the newest.
 *
 * <h2>Copies in flight</h2>
 * A copy holds its claim from the moment the copier submits it until its last step returns,
 * so the copies queued here (and the one running now, for a guest write nested inside its step)
 * are exactly the copies in flight between two steps: {@link #copies()}, {@link #copiesWithRunning()}.
 *
 * <p>Threading: the queue and the clock are guarded by this object, so a jcstress or Lincheck
 * actor may run tasks while guests queue wake-ups from other threads. Tasks run outside the lock,
 * never inside {@link #execute} (the kernel calls it holding its own lock), as {@link JobRuntime}
 * requires.
 */
public final class SteppingRuntime implements JobRuntime {

    /** A queued task: what runs, when it is due, and its place in the queue's order. */
    public record Task(Runnable runnable, long dueAt, long seq) {
        /** The copy this task is a step of, or null for another task (a pump, a timer, the drain). */
        public Copy copy() {
            return runnable instanceof CopyOperation op ? Copy.of(op) : null;
        }

        @Override
        public String toString() {
            Copy c = copy();
            return c != null ? c.toString() : String.valueOf(runnable);
        }
    }

    /**
     * A copy in flight, as a check sees it: the chunks it claims and its length in bytes. Two views
     * of one copy are equal (the task compares by identity), whichever step is queued.
     */
    public record Copy(Runnable task, long firstChunk, long lastChunk, long length) {
        static Copy of(CopyOperation op) {
            return new Copy(op, op.firstChunk, op.lastChunk, op.length);
        }

        @Override
        public String toString() {
            return "copy chunks " + firstChunk + ".." + lastChunk;
        }
    }

    private static final int RUNAWAY = 10_000_000;

    private final List<Task> queue = new ArrayList<>();
    private final SplittableRandom random;
    private final long maxLatencyNanos;
    private long now;
    private long seq;
    private boolean shutdown;
    /** The task running now on the stepping thread, or null. */
    private Task running;

    /** A runtime whose clock starts at 0 and whose tasks are due as soon as they are queued. */
    public SteppingRuntime() {
        this(0, 0, 0);
    }

    private SteppingRuntime(long seed, long maxLatencyNanos, long startNanos) {
        this.random = new SplittableRandom(seed);
        this.maxLatencyNanos = maxLatencyNanos;
        this.now = startNanos;
    }

    /**
     * A runtime for a seeded simulation: each executed task is due after a latency drawn from
     * {@code [0, maxLatencyNanos]} by a random seeded with {@code seed}; the clock starts at
     * {@code startNanos}.
     */
    public static SteppingRuntime withLatency(long seed, long maxLatencyNanos, long startNanos) {
        return new SteppingRuntime(seed, maxLatencyNanos, startNanos);
    }

    /* ---- JobRuntime: queue only ---- */

    @Override
    public synchronized void execute(Runnable task) {
        long latency = maxLatencyNanos > 0 ? random.nextLong(maxLatencyNanos + 1) : 0;
        queue.add(new Task(task, now + latency, seq++));
    }

    @Override
    public synchronized void schedule(Runnable task, long delayNanos) {
        queue.add(new Task(task, now + Math.max(0, delayNanos), seq++));
    }

    @Override
    public synchronized long nanoTime() {
        return now;
    }

    @Override
    public synchronized void shutdown() {
        shutdown = true;
    }

    /* ---- Running tasks ---- */

    /**
     * Runs the due task number {@code pick} (modulo their count; -1 is the newest); if none is
     * due, first moves the clock to the earliest task. Returns the task run, or null if none was
     * queued.
     */
    public Task step(int pick) {
        Task task;
        synchronized (this) {
            if (queue.isEmpty()) {
                return null;
            }
            List<Integer> due = dueIndexes();
            if (due.isEmpty()) {
                long earliest = Long.MAX_VALUE;
                for (Task t : queue) {
                    earliest = Math.min(earliest, t.dueAt);
                }
                now = earliest;
                due = dueIndexes();
            }
            task = queue.remove((int) due.get(Math.floorMod(pick, due.size())));
        }
        run(task);
        return task;
    }

    /** Runs the oldest due task; false if none is due. */
    public boolean runNext() {
        return runDue(true);
    }

    /** Runs the newest due task (tasks completing out of order); false if none is due. */
    public boolean runLast() {
        return runDue(false);
    }

    /** Runs due tasks, oldest first (including those they queue), until none is left; returns how many ran. */
    public int runAll() {
        int n = 0;
        while (runNext()) {
            if (++n > RUNAWAY) {
                throw new IllegalStateException("runaway task queue");
            }
        }
        return n;
    }

    /** Runs due tasks newest first until none is left; returns how many ran. */
    public int runAllNewestFirst() {
        int n = 0;
        while (runLast()) {
            if (++n > RUNAWAY) {
                throw new IllegalStateException("runaway task queue");
            }
        }
        return n;
    }

    /** Moves the clock forward, so that timers falling due may run, then runs every due task. */
    public void advance(long nanos) {
        moveClock(nanos);
        runAll();
    }

    /** Moves the clock forward (negative: not at all); runs nothing. */
    public synchronized void moveClock(long nanos) {
        now += Math.max(0, nanos);
    }

    /* ---- Looking ---- */

    /** Tasks queued, due or not. */
    public synchronized int queued() {
        return queue.size();
    }

    /** Tasks queued that are not due yet (timers, delayed steps). */
    public synchronized int timers() {
        int n = 0;
        for (Task t : queue) {
            if (t.dueAt - now > 0) {
                n++;
            }
        }
        return n;
    }

    public synchronized boolean isEmpty() {
        return queue.isEmpty();
    }

    /** Whether the job that uses this runtime has concluded (it calls {@link #shutdown} then). */
    public synchronized boolean wasShutdown() {
        return shutdown;
    }

    /** The task whose step runs now on the stepping thread (innermost), or null. */
    public synchronized Task running() {
        return running;
    }

    /** The copies queued now, i.e. in flight between two steps, in queue order. */
    public synchronized List<Copy> copies() {
        List<Copy> copies = new ArrayList<>();
        for (Task t : queue) {
            if (t.runnable instanceof CopyOperation op) {
                copies.add(Copy.of(op));
            }
        }
        return copies;
    }

    /**
     * The copies in flight including the one whose step is running now (a guest write nested in
     * that step sees it in flight: it has not released its claim).
     */
    public synchronized List<Copy> copiesWithRunning() {
        List<Copy> copies = copies();
        if (running != null && running.runnable instanceof CopyOperation op) {
            Copy c = Copy.of(op);
            if (!copies.contains(c)) {
                copies.add(c);
            }
        }
        return copies;
    }

    private boolean runDue(boolean oldest) {
        Task task = null;
        synchronized (this) {
            for (int i = 0; i < queue.size(); i++) {
                int at = oldest ? i : queue.size() - 1 - i;
                if (queue.get(at).dueAt - now <= 0) {
                    task = queue.remove(at);
                    break;
                }
            }
        }
        if (task == null) {
            return false;
        }
        run(task);
        return true;
    }

    private void run(Task task) {
        Task outer;
        synchronized (this) {
            outer = running;
            running = task;
        }
        try {
            task.runnable.run();
        } finally {
            synchronized (this) {
                running = outer;
            }
        }
    }

    private List<Integer> dueIndexes() {
        List<Integer> due = new ArrayList<>();
        for (int i = 0; i < queue.size(); i++) {
            if (queue.get(i).dueAt - now <= 0) {
                due.add(i);
            }
        }
        return due;
    }
}
