package dev.handoff.testkit;

import dev.handoff.mirror.JobRuntime;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.RejectedExecutionException;

/**
 * A {@link JobRuntime} for the mirror check's seeded schedule: the job's tasks queue up here and
 * run only when the schedule says so, on the schedule's own thread, one at a time, in an order the
 * seed picks among the tasks that are due; time is virtual and moves only to the next task's due
 * time when none is due. A copy's source read and target write are separate tasks
 * ({@link #separatesCopySteps()}), so the schedule puts guest writes and commands between them.
 *
 * <p>Threading: confined to the schedule's thread (the job calls {@link #execute} from a command,
 * a guest operation or a task, all on that thread); the methods are synchronized only so that a
 * stray call from another thread cannot corrupt the queue.
 */
final class ScheduledRuntime implements JobRuntime {
    private record Task(Runnable runnable, long dueAt) {
    }

    private final List<Task> queue = new ArrayList<>();
    private final int parallelism;
    private long now;
    private boolean shutdown;

    ScheduledRuntime(int parallelism) {
        this.parallelism = parallelism;
    }

    @Override
    public synchronized void execute(Runnable task) {
        if (shutdown) {
            throw new RejectedExecutionException("the job's runtime is shut down");
        }
        queue.add(new Task(task, now));
    }

    @Override
    public synchronized void schedule(Runnable task, long delayNanos) {
        if (shutdown) {
            throw new RejectedExecutionException("the job's runtime is shut down");
        }
        queue.add(new Task(task, now + Math.max(0, delayNanos)));
    }

    @Override
    public synchronized long nanoTime() {
        return now;
    }

    @Override
    public synchronized void shutdown() {
        shutdown = true; // tasks already queued still run, as a pool's do
    }

    @Override
    public int parallelism() {
        return parallelism;
    }

    /** Whether no task is queued: then no copy is in flight (a copy is a queued task until its last step). */
    synchronized boolean idle() {
        return queue.isEmpty();
    }

    /**
     * Runs one task: one of those due now, picked by {@code random}; if none is due, the clock moves
     * to the earliest due time first. Returns false if nothing is queued.
     */
    boolean step(SplittableRandom random) {
        Task task;
        synchronized (this) {
            if (queue.isEmpty()) {
                return false;
            }
            long earliest = Long.MAX_VALUE;
            for (Task t : queue) {
                earliest = Math.min(earliest, t.dueAt());
            }
            now = Math.max(now, earliest);
            List<Integer> due = new ArrayList<>();
            for (int i = 0; i < queue.size(); i++) {
                if (queue.get(i).dueAt() <= now) {
                    due.add(i);
                }
            }
            task = queue.remove((int) due.get(random.nextInt(due.size())));
        }
        task.runnable().run(); // outside the lock: the task calls execute
        return true;
    }
}
