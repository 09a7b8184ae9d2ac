package dev.handoff.nbd;

import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * One daemon thread shared by every server and client in the process for deadlines: it never
 * does I/O itself, only closes channels whose peer stopped reading or answering, which unblocks
 * the thread stuck on them.
 */
final class NbdTimer {
    private static final ScheduledThreadPoolExecutor SCHEDULER;

    static {
        SCHEDULER = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "nbd-timer");
            t.setDaemon(true);
            return t;
        });
        SCHEDULER.setRemoveOnCancelPolicy(true);
    }

    private NbdTimer() {
    }

    static ScheduledFuture<?> every(long periodNanos, Runnable check) {
        return SCHEDULER.scheduleWithFixedDelay(guarded(check), periodNanos, periodNanos, TimeUnit.NANOSECONDS);
    }

    static ScheduledFuture<?> after(long delayNanos, Runnable action) {
        return SCHEDULER.schedule(guarded(action), delayNanos, TimeUnit.NANOSECONDS);
    }

    /** A check period: a quarter of the shortest deadline, between 10 ms and 1 s. */
    static long periodFor(long shortestDeadlineNanos) {
        return Math.max(TimeUnit.MILLISECONDS.toNanos(10), Math.min(TimeUnit.SECONDS.toNanos(1), shortestDeadlineNanos / 4));
    }

    private static Runnable guarded(Runnable r) {
        // A periodic task that throws is silently cancelled; a watchdog must never stop.
        return () -> {
            try {
                r.run();
            } catch (RuntimeException e) {
                System.getLogger("dev.handoff.nbd").log(System.Logger.Level.WARNING, "deadline check failed", e);
            }
        };
    }
}
