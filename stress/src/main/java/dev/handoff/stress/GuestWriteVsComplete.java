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
import org.openjdk.jcstress.infra.results.IIII_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariants (DESIGN §2.4 and §3.5): a guest write racing complete() lands exactly once,
 * on the right side: before the switch it goes to the source and is copied before the pivot;
 * after it, it goes to the target only. READY and COMPLETED are announced only when no copy is
 * in flight.
 *
 * Set-up: one chunk, source = 1, target = 0, sync FULL; start() has queued the bulk copy. The
 * controller serves the copier until READY, calls complete() and serves until the job concludes;
 * a listener notes whether a copy was in flight when READY or COMPLETED was announced.
 *
 * Broken variant caught: ready-with-copy-in-flight
 * (mutants/patches/ready-with-copy-in-flight.patch): convergence looks at the bitmap only, so
 * READY (and COMPLETED) are announced while the cleared chunk's copy is still on its way: the
 * third result is 1 (and a guest write switched to the target can then be overwritten by it).
 *
 * Rerun: java -jar stress/target/jcstress.jar -t GuestWriteVsComplete -m quick
 */
@JCStressTest
@Outcome(id = "2, 2, 0, 1", expect = ACCEPTABLE, desc = "The write went to the source before the switch and was copied before the pivot.")
@Outcome(id = "2, 1, 0, 1", expect = ACCEPTABLE, desc = "The write was held at the switch and went to the target only.")
@Outcome(id = "1, 2, .*", expect = FORBIDDEN, desc = "Lost: the write landed on the source after the pivot, or was not copied.")
@Outcome(id = ".*, .*, 1, .*", expect = FORBIDDEN, desc = "READY or COMPLETED was announced with a copy in flight.")
@Outcome(expect = FORBIDDEN, desc = "Anything else: no pivot, or a value from nowhere.")
@State
public class GuestWriteVsComplete {
    static final int POLLS = 100_000;
    /** How long the controller keeps serving, after complete(), for a guest that has not returned. */
    static final long GUEST_WAIT_NANOS = java.util.concurrent.TimeUnit.SECONDS.toNanos(10);

    final MirrorRig rig;
    volatile int inFlightAtAnnouncement;
    /** Set by the guest once its write has returned; read by the controller (see controller()). */
    volatile boolean guestReturned;

    public GuestWriteVsComplete() {
        ChunkDevice source = new ChunkDevice(1);
        source.fill(0, 1);
        rig = MirrorRig.create(source, new ChunkDevice(1), SyncMode.FULL, CopyMode.BACKGROUND);
        // Events are delivered on the thread that made the transition, right after it: here the
        // controller (or start() in this constructor), which is also the only thread running copies.
        rig.job.addListener(e -> {
            boolean announcement = e instanceof MirrorEvent.Ready || e instanceof MirrorEvent.Completed;
            if (announcement && rig.job.progress().bytesInFlight() != 0) {
                inFlightAtAnnouncement = 1;
            }
        });
        rig.job.start();
    }

    @Actor
    public void guest() {
        Harness.write(rig.guest, 0, 2);
        guestReturned = true;
    }

    @Actor
    public void controller() {
        rig.serve(POLLS, () -> rig.job.state() == JobState.READY);
        try {
            rig.job.complete();
        } catch (IllegalStateException e) {
            return; // not READY within the polls: the arbiter reports the job unconcluded
        }
        // Serve until the job concludes, and do not stop on idle polls while the guest's write has
        // not returned: a guest that entered as complete() closed the gate backs out and waits for
        // it to open, which takes the pump its back-out queued, and only this thread runs pumps.
        // Giving up then would leave the guest waiting for ever (and the test hung, not failed).
        long giveUpAt = System.nanoTime() + GUEST_WAIT_NANOS;
        do {
            rig.serve(POLLS, () -> rig.job.state().isConcluded());
        } while (!rig.job.state().isConcluded() && !guestReturned && System.nanoTime() - giveUpAt < 0);
    }

    @Arbiter
    public void arbiter(IIII_Result r) {
        // The controller gives up after POLLS idle polls, which a guest descheduled inside the gate
        // on a loaded machine can outlast. Both actors have returned now, so finish the protocol
        // here: the race is over, and what is judged is where the write ended up.
        rig.serve(POLLS, () -> rig.job.state() == JobState.READY || rig.job.state().isConcluded());
        if (rig.job.state() == JobState.READY) {
            rig.job.complete();
        }
        rig.serve(POLLS, () -> rig.job.state().isConcluded());
        rig.drain(64);
        r.r1 = rig.target.value(0);
        r.r2 = rig.source.value(0);
        r.r3 = inFlightAtAnnouncement;
        r.r4 = rig.job.state() == JobState.COMPLETED && rig.guest.currentDevice() == rig.target ? 1 : 0;
    }
}
