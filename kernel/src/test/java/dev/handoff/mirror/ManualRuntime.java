package dev.handoff.mirror;

import java.util.ArrayDeque;
import java.util.PriorityQueue;

/**
 * A {@link JobRuntime} driven by the test: tasks queue up and run only when the test says so,
 * on the test's thread, and time moves only when the test advances it.
 */
public final class ManualRuntime implements JobRuntime {
    private final ArrayDeque<Runnable> ready = new ArrayDeque<>();
    private final PriorityQueue<Timed> timed = new PriorityQueue<>();
    private long now;
    private long order;

    private record Timed(long at, long order, Runnable task) implements Comparable<Timed> {
        @Override
        public int compareTo(Timed o) {
            return at != o.at ? Long.compare(at, o.at) : Long.compare(order, o.order);
        }
    }

    @Override
    public synchronized void execute(Runnable task) {
        ready.add(task);
    }

    @Override
    public synchronized void schedule(Runnable task, long delayNanos) {
        timed.add(new Timed(now + delayNanos, order++, task));
    }

    @Override
    public synchronized long nanoTime() {
        return now;
    }

    /** Runs the oldest queued task; false if none is queued. */
    public boolean runNext() {
        Runnable task;
        synchronized (this) {
            task = ready.poll();
        }
        if (task == null) {
            return false;
        }
        task.run();
        return true;
    }

    /** Runs the newest queued task (tasks completing out of order); false if none is queued. */
    public boolean runLast() {
        Runnable task;
        synchronized (this) {
            task = ready.pollLast();
        }
        if (task == null) {
            return false;
        }
        task.run();
        return true;
    }

    /** Runs queued tasks newest first until none is left. */
    public int runAllNewestFirst() {
        int n = 0;
        while (runLast()) {
            if (++n > 10_000_000) {
                throw new IllegalStateException("runaway task queue");
            }
        }
        return n;
    }

    /** Runs queued tasks (including those they queue) until none is left; returns how many ran. */
    public int runAll() {
        int n = 0;
        while (runNext()) {
            if (++n > 10_000_000) {
                throw new IllegalStateException("runaway task queue");
            }
        }
        return n;
    }

    /** Moves time forward, releasing timers that fall due, then runs everything queued. */
    public void advance(long nanos) {
        synchronized (this) {
            now += nanos;
            while (!timed.isEmpty() && timed.peek().at() <= now) {
                ready.add(timed.poll().task());
            }
        }
        runAll();
    }

    public synchronized int queued() {
        return ready.size();
    }

    public synchronized int timers() {
        return timed.size();
    }
}
