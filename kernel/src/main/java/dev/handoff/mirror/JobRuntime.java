package dev.handoff.mirror;

import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * Where a job's copier runs and how it tells time: the seam between the kernel and its host.
 * Production jobs use {@link #threadPool} or {@link #of(Executor)}; a deterministic simulator
 * supplies its own implementation and drives tasks and time step by step.
 *
 * <p>Tasks must not run on the caller's stack inside {@link #execute} (the kernel calls it while
 * holding its lock): implementations queue them.
 */
public interface JobRuntime {

    /** Runs {@code task} soon, on some other thread or a later step. */
    void execute(Runnable task);

    /** Runs {@code task} after at least {@code delayNanos}. */
    void schedule(Runnable task, long delayNanos);

    /** A monotonic clock in nanoseconds. */
    long nanoTime();

    /** Called once when the job that created this runtime concludes; releases its threads. */
    default void shutdown() {
    }

    /**
     * The job is READY: from now on the copier only has to keep up with the guest's writes, and
     * how soon the job got here no longer matters, so a runtime may give the copier less of the
     * CPU than the guest (a guest on the same host wants it more). The job calls this once, when
     * it delivers its Ready event, before its listeners receive that event; on the thread that
     * delivers it (any thread that ran a command or a copy), never under the job's lock. A job
     * that concludes without being READY never calls it; one that is READY calls it before
     * {@link #shutdown}. A runtime that throws is logged and ignored. No-op by default; {@link
     * #threadPool} lowers its threads' priority.
     */
    default void jobReady() {
    }

    /**
     * How many tasks this runtime runs at once, or {@link Integer#MAX_VALUE} if it cannot say. The
     * copier keeps at most this many copies in flight (within the job's buf-size), so no copy holds
     * its claim on chunks while it waits in a queue: a write-blocking guest write to a claimed chunk
     * waits for that copy, and it should wait for a running copy, not for a queue to drain.
     */
    default int parallelism() {
        return Integer.MAX_VALUE;
    }

    /**
     * Whether a copy's source read and target write must run as two separate tasks. True by default,
     * so a deterministic scheduler can interleave other tasks and guest writes between them. The
     * built-in runtimes return false: on real threads guests interleave anyway, and handing the write
     * to another task costs a thread wake-up per copy.
     */
    default boolean separatesCopySteps() {
        return true;
    }

    /**
     * Whether the thread that finishes a copy may run the next one itself. When a copy's completion
     * issues new copies, the copier then keeps one of them for the finishing thread, which runs it
     * after the job's lock is released and the completion's events are delivered, and hands only the
     * others to {@link #execute}: a stream of copies at depth one stays on one thread, with no
     * wake-up of another per copy. The copy is issued (claimed, cleared, counted in flight) under the
     * lock exactly as one handed to {@link #execute} is; only the thread that runs it differs. False
     * by default, so a deterministic scheduler sees every copy as a task of its own; the built-in
     * runtimes return true. A thread carries at most 32 copies in a row and
     * then hands the next one to {@link #execute}, so other tasks queued on a pool of one thread
     * (timers, the bitmap's clear pass) are not held back for the whole copy.
     */
    default boolean carriesNextCopy() {
        return false;
    }

    /**
     * A dedicated pool of {@code threads} daemon threads named {@code handoff-copier-N}, shut down
     * when its job concludes.
     *
     * <p>Its threads start at {@link Thread#NORM_PRIORITY}, so the copy before READY competes for
     * the CPU on equal terms with the guest and READY comes as soon as it can. At {@link #jobReady}
     * every thread of the pool, and every one it makes later, gets {@link Thread#MIN_PRIORITY}:
     * after READY the copier only keeps up with the guest's writes and should take only the CPU
     * the guest does not want. Linux honours a Java thread priority only when the JVM runs with
     * {@code -XX:ThreadPriorityPolicy=1 -XX:JavaPriority1_To_OSPriority=19} (Java priority 1 is
     * then {@code nice 19} for that thread), and {@code -XX:JavaPriorityN_To_OSPriority=0} for N
     * from 6 to 10 keeps the JVM's own threads (GC, JIT, the VM thread) at {@code nice 0}, which
     * the policy would otherwise raise to -1 to -5 as root; {@code ./handoff} passes all seven when
     * it runs as root (README, "Guest-first after READY"). Without them the priority is recorded
     * and has no effect: an embedder adds the flags to its JVM, or implements {@code jobReady} in a
     * runtime of its own (the job cannot lower the threads of an embedder's executor,
     * {@link #of(Executor)}).
     */
    static JobRuntime threadPool(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        CopierThreads made = new CopierThreads();
        ScheduledThreadPoolExecutor pool = new ScheduledThreadPoolExecutor(threads, made::newThread);
        pool.setRemoveOnCancelPolicy(true);
        return new JobRuntime() {
            @Override
            public void execute(Runnable task) {
                pool.execute(task);
            }

            @Override
            public void schedule(Runnable task, long delayNanos) {
                pool.schedule(task, delayNanos, TimeUnit.NANOSECONDS);
            }

            @Override
            public long nanoTime() {
                return System.nanoTime();
            }

            @Override
            public void shutdown() {
                pool.shutdown();
            }

            @Override
            public void jobReady() {
                made.lower();
            }

            @Override
            public int parallelism() {
                return threads;
            }

            @Override
            public boolean separatesCopySteps() {
                return false;
            }

            @Override
            public boolean carriesNextCopy() {
                return true;
            }
        };
    }

    /**
     * Runs tasks on the embedder's {@code executor}, which the job never shuts down; delays wait
     * on one shared daemon timer thread and then go to the executor.
     */
    static JobRuntime of(Executor executor) {
        return of(executor, Integer.MAX_VALUE);
    }

    /**
     * As {@link #of(Executor)}, for an executor that runs at most {@code parallelism} tasks at once
     * (a pool of that many threads): the copier then keeps no more copies in flight than it runs
     * (see {@link #parallelism()}), as with {@link #threadPool}.
     */
    static JobRuntime of(Executor executor, int parallelism) {
        Objects.requireNonNull(executor, "executor");
        if (parallelism < 1) {
            throw new IllegalArgumentException("parallelism must be >= 1, got " + parallelism);
        }
        return new JobRuntime() {
            @Override
            public void execute(Runnable task) {
                executor.execute(task);
            }

            @Override
            public void schedule(Runnable task, long delayNanos) {
                SharedTimer.TIMER.schedule(() -> executor.execute(task), delayNanos, TimeUnit.NANOSECONDS);
            }

            @Override
            public long nanoTime() {
                return System.nanoTime();
            }

            @Override
            public int parallelism() {
                return parallelism;
            }

            @Override
            public boolean separatesCopySteps() {
                return false;
            }

            @Override
            public boolean carriesNextCopy() {
                return true;
            }
        };
    }
}
