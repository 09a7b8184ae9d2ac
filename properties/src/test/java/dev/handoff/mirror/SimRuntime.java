package dev.handoff.mirror;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A {@link JobRuntime} for the deterministic simulator: tasks are queued, never run, until the
 * simulator {@link #runOne picks} one; time is virtual and moves only when the simulator says.
 *
 * <p>Each queued task carries the virtual time at which it becomes runnable: now plus a seeded
 * latency for {@link #execute} (a slow device step), now plus the delay for {@link #schedule}.
 * The simulator picks among the runnable tasks by index, so the order of independent tasks is
 * part of the scenario: that is where reordering of copies comes from.
 *
 * <p>Because a copy holds its claim from the moment the copier submits it until its last step
 * returns, the copies queued here are exactly the copies in flight between two steps; the
 * simulator reads them with {@link #copiesInFlight()} (CopyOperation is package-private, hence
 * this class's package).
 */
final class SimRuntime implements JobRuntime {

    /** A queued task. */
    record Task(Runnable runnable, long readyAt, long seq) {
        boolean isCopy() {
            return runnable instanceof CopyOperation;
        }
    }

    private final List<Task> queue = new ArrayList<>();
    private final SplittableRandom random;
    private final long maxLatencyNanos;
    private long now = 1_000_000_000L;
    private long seq;
    private boolean shutdown;
    private Task running;

    SimRuntime(long seed, long maxLatencyNanos) {
        this.random = new SplittableRandom(seed);
        this.maxLatencyNanos = maxLatencyNanos;
    }

    @Override
    public void execute(Runnable task) {
        long latency = maxLatencyNanos > 0 ? random.nextLong(maxLatencyNanos + 1) : 0;
        queue.add(new Task(task, now + latency, seq++));
    }

    @Override
    public void schedule(Runnable task, long delayNanos) {
        queue.add(new Task(task, now + Math.max(0, delayNanos), seq++));
    }

    @Override
    public long nanoTime() {
        return now;
    }

    @Override
    public void shutdown() {
        shutdown = true;
    }

    /* ---- The simulator's side ---- */

    long now() {
        return now;
    }

    void advance(long nanos) {
        now += Math.max(0, nanos);
    }

    boolean isEmpty() {
        return queue.isEmpty();
    }

    int size() {
        return queue.size();
    }

    boolean wasShutdown() {
        return shutdown;
    }

    /**
     * Runs the runnable task number {@code pick} (modulo their count); if none is runnable yet,
     * first advances time to the earliest one. Returns the task run, or null if the queue is empty.
     */
    Task runOne(int pick) {
        if (queue.isEmpty()) {
            return null;
        }
        List<Integer> runnable = runnableIndexes();
        if (runnable.isEmpty()) {
            long earliest = Long.MAX_VALUE;
            for (Task t : queue) {
                earliest = Math.min(earliest, t.readyAt);
            }
            now = earliest;
            runnable = runnableIndexes();
        }
        int index = runnable.get(Math.floorMod(pick, runnable.size()));
        Task task = queue.remove(index);
        Task outer = running;
        running = task;
        try {
            task.runnable.run();
        } finally {
            running = outer;
        }
        return task;
    }

    /** The copy operations queued now, i.e. in flight. */
    List<CopyOperation> copiesInFlight() {
        List<CopyOperation> copies = new ArrayList<>();
        for (Task t : queue) {
            if (t.runnable instanceof CopyOperation) {
                copies.add((CopyOperation) t.runnable);
            }
        }
        return copies;
    }

    /**
     * The copies in flight including the one whose step is running now (a guest write nested in
     * that step sees it in flight: it has not released its claim).
     */
    List<CopyOperation> copiesInFlightWithRunning() {
        List<CopyOperation> copies = copiesInFlight();
        if (running != null && running.runnable instanceof CopyOperation op && !copies.contains(op)) {
            copies.add(op);
        }
        return copies;
    }

    /** Whether a copy in flight (queued, or running now) covers a chunk of {@code [first, last]}. */
    boolean copyInFlight(long first, long last) {
        if (running != null && running.runnable instanceof CopyOperation op && op.firstChunk <= last
                && op.lastChunk >= first) {
            return true;
        }
        for (Task t : queue) {
            if (t.runnable instanceof CopyOperation) {
                CopyOperation op = (CopyOperation) t.runnable;
                if (op.firstChunk <= last && op.lastChunk >= first) {
                    return true;
                }
            }
        }
        return false;
    }

    private List<Integer> runnableIndexes() {
        List<Integer> runnable = new ArrayList<>();
        for (int i = 0; i < queue.size(); i++) {
            if (queue.get(i).readyAt - now <= 0) {
                runnable.add(i);
            }
        }
        return runnable;
    }
}
