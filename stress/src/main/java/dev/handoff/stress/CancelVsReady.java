package dev.handoff.stress;

import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorEvent;
import dev.handoff.mirror.SyncMode;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.III_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariant (DESIGN §2.5): a cancel that races the job becoming READY may end either way, but
 * consistently with the event stream: if READY was announced before the cancel took effect
 * (before its CANCELLING), the job was in sync and the cancel drains it, ending COMPLETED without a
 * pivot and with the target equal to the source; a cancel that took effect first ends CANCELLED.
 * The job decides under its lock, where READY is also set: the lock pairs the copier's "ready"
 * with the cancel's read of it.
 *
 * Set-up: one chunk, source = 1, target = 0, sync FULL; start() has queued the bulk copy. The
 * copier plays the job's pool until the job concludes (its last copy makes it READY; a drain then
 * needs the final flush task); the canceller calls cancel(). The two meet at a start line, and the
 * canceller then waits a delay that sweeps across samples (0 to 31 x 16 spin-waits), so that its
 * cancel lands all along the copy, including while the copier holds the job's lock to make it
 * READY. A listener records the sequence numbers of READY and of the change to CANCELLING.
 * Results: (READY announced before CANCELLING, outcome: 1 COMPLETED without pivot, 2 CANCELLED,
 * target = source at the end).
 *
 * Broken variant caught: cancel-reads-ready-before-lock
 * (mutants/patches/cancel-reads-ready-before-lock.patch): cancel() reads "ready" before it takes
 * the job's lock; the copier makes the job READY in between, and the cancel abandons a job that had
 * announced READY: (1, 2, 1).
 *
 * Rerun: java -jar stress/target/jcstress.jar -t CancelVsReady -m quick
 */
@JCStressTest
@Outcome(id = "0, 2, .*", expect = ACCEPTABLE, desc = "The cancel took effect before READY: CANCELLED.")
@Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "READY first: the cancel drained the job, COMPLETED without a pivot, in sync.")
@Outcome(id = "1, 2, .*", expect = FORBIDDEN, desc = "READY was announced before the cancel, which still abandoned the job.")
@Outcome(id = "1, 1, 0", expect = FORBIDDEN, desc = "COMPLETED without a pivot but the target differs from the source.")
@Outcome(expect = FORBIDDEN, desc = "Anything else: COMPLETED without READY, unconcluded, or a pivot.")
@State
public class CancelVsReady {
    static final int POLLS = 100_000;
    /** Sweeps the canceller's delay across samples; only the canceller touches it (atomic for tidiness). */
    static final java.util.concurrent.atomic.AtomicInteger SWEEP = new java.util.concurrent.atomic.AtomicInteger();

    final MirrorRig rig;
    final Harness.StartLine start = new Harness.StartLine();
    /** Sequence numbers of READY and of the change to CANCELLING (0 = not seen); written by the delivering thread. */
    volatile long readyAt;
    volatile long cancellingAt;

    public CancelVsReady() {
        ChunkDevice source = new ChunkDevice(1);
        source.fill(0, 1);
        rig = MirrorRig.create(source, new ChunkDevice(1), SyncMode.FULL, CopyMode.BACKGROUND);
        rig.job.addListener(e -> {
            if (e instanceof MirrorEvent.Ready) {
                readyAt = e.sequence();
            } else if (e instanceof MirrorEvent.StateChanged s && s.to() == JobState.CANCELLING) {
                cancellingAt = e.sequence();
            }
        });
        rig.job.start();
    }

    @Actor
    public void copier() {
        start.arriveFirst();
        rig.serve(POLLS, () -> rig.job.state().isConcluded());
    }

    @Actor
    public void canceller() {
        start.arriveSecond();
        for (int i = (SWEEP.getAndIncrement() & 31) * 16; i > 0; i--) {
            Thread.onSpinWait();
        }
        rig.job.cancel();
    }

    @Arbiter
    public void arbiter(III_Result r) {
        rig.drain(64);
        JobState end = rig.job.state();
        r.r1 = readyAt != 0 && (cancellingAt == 0 || readyAt < cancellingAt) ? 1 : 0;
        boolean notPivoted = rig.guest.currentDevice() == rig.source;
        r.r2 = end == JobState.COMPLETED && notPivoted ? 1 : end == JobState.CANCELLED ? 2 : -1;
        r.r3 = rig.source.value(0) == rig.target.value(0) ? 1 : 0;
    }
}
