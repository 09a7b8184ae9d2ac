package dev.handoff.mirror;

import dev.handoff.workload.SyntheticGuest;
import java.time.Duration;
import java.util.concurrent.TimeoutException;

/**
 * Waits on a job whose failure to make progress is a test failure that says where the job
 * stopped: its state and the progress a management tool would read, not a bare timeout.
 */
public final class Liveness {
    private Liveness() {
    }

    /** Waits for READY (true) or a conclusion first (false); fails with the job's state on timeout. */
    public static boolean awaitReady(MirrorJob job, Duration limit) throws InterruptedException {
        if (job.awaitReady(limit)) {
            return true;
        }
        if (!job.conclusion().isDone()) {
            throw stuck(job, "READY", limit);
        }
        return false;
    }

    /** Waits for the job's conclusion; fails with the job's state on timeout. */
    public static JobState awaitConclusion(MirrorJob job, Duration limit) throws InterruptedException {
        try {
            return job.awaitConclusion(limit);
        } catch (TimeoutException e) {
            throw stuck(job, "conclusion", limit);
        }
    }

    /**
     * Waits until {@code guest} has had {@code n} writes acknowledged, or one of its writers failed
     * (the caller's check of its failures says which): a phase "under writes" is one in which writes
     * happened, on a machine however loaded, not a sleep that hopes so. Fails after {@code limit}.
     */
    public static void awaitWrites(SyntheticGuest guest, long n, Duration limit) throws InterruptedException {
        long deadline = System.nanoTime() + limit.toNanos();
        while (guest.writes() < n && guest.failures().isEmpty()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("liveness: the guest had " + guest.writes() + " writes acknowledged within "
                        + limit + ", expected " + n);
            }
            Thread.sleep(1);
        }
    }

    private static AssertionError stuck(MirrorJob job, String what, Duration limit) {
        return new AssertionError("liveness: no " + what + " within " + limit + "; the job is " + job.state()
                + ", progress " + job.progress());
    }
}
