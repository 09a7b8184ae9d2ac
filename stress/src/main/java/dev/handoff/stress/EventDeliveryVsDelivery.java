package dev.handoff.stress;

import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorEvent;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorProbe;
import dev.handoff.mirror.SyncMode;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.II_Result;

import java.util.concurrent.atomic.AtomicInteger;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariant (DESIGN §2.8 lifecycle: every transition is an event): MirrorJob.deliver() hands
 * every queued event to the listeners even when two threads deliver at once. Events are queued
 * under the job's lock and delivered outside it by whichever thread wins the delivering flag;
 * a thread that loses returns at once, so the winner must look at the queue again after it lets
 * go of the flag, or an event queued in between waits for the next transition (maybe forever:
 * a final event nobody sees leaves the job's conclusion incomplete).
 *
 * Set-up: a job (not started) with a counting listener. Each actor queues one event the way a
 * transition does (into the job's outbox) and calls the real deliver(), both through the
 * kernel's MirrorProbe (its test-jar); the second one
 * after a delay that sweeps across samples, so that its event lands all along the first one's
 * delivery. The arbiter counts the events the listener saw and what is still queued.
 *
 * Broken variant caught: deliver-skips-recheck (mutants/patches/deliver-skips-recheck.patch):
 * the winner returns without re-checking the queue: "1, 1".
 *
 * Rerun: java -jar stress/target/jcstress.jar -t EventDeliveryVsDelivery -m quick
 */
@JCStressTest
@Outcome(id = "2, 0", expect = ACCEPTABLE, desc = "Both events delivered.")
@Outcome(id = "1, 1", expect = FORBIDDEN, desc = "Lost: an event stays queued after both deliveries.")
@Outcome(expect = FORBIDDEN, desc = "Anything else.")
@State
public class EventDeliveryVsDelivery {
    /** Sweeps the second actor's delay across samples (Harness.sweep). */
    static final AtomicInteger SWEEP = new AtomicInteger();

    final MirrorJob job;
    final AtomicInteger seen = new AtomicInteger();
    final Harness.StartLine start = new Harness.StartLine();

    public EventDeliveryVsDelivery() {
        job = MirrorRig.create(new ChunkDevice(1), new ChunkDevice(1), SyncMode.NONE, CopyMode.BACKGROUND).job;
        job.addListener(e -> seen.incrementAndGet());
    }

    @Actor
    public void first() {
        start.arriveFirst();
        emitAndDeliver(new MirrorEvent.StateChanged(1, JobState.CREATED, JobState.RUNNING));
    }

    @Actor
    public void second() {
        start.arriveSecond();
        Harness.sweep(SWEEP, 64, 1); // lands its add between the winner's last poll and its let-go
        emitAndDeliver(new MirrorEvent.StateChanged(2, JobState.RUNNING, JobState.READY));
    }

    @Arbiter
    public void arbiter(II_Result r) {
        r.r1 = seen.get();
        r.r2 = MirrorProbe.queuedEvents(job);
    }

    private void emitAndDeliver(MirrorEvent event) {
        MirrorProbe.emitAndDeliver(job, event); // the add as emitLocked does, then deliver()
    }
}
