package dev.handoff.stress;

import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.ErrorPolicy;
import dev.handoff.mirror.SyncMode;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.II_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariant (DESIGN §3.6, the key invariant, at copier order 4b): a copy whose target write
 * failed marks its chunk dirty again before it releases the claim, so the chunk is never clean
 * and unclaimed while the target differs from the source, not even for an instant. The broken
 * order heals itself a moment later (the mark lands), so the invariant is observed inside the
 * race, by an actor, not by the arbiter.
 *
 * Set-up: one chunk, source = 2, target = 0, sync FULL, on-target-error ignore; the target's next
 * write fails; start() has claimed and cleared the chunk and queued its copy. The copier actor
 * runs the copy's steps (the write fails: Copier.release marks, then releases). The observer
 * polls the claim, then the dirty bit (in that order: the release publishes the mark), and
 * records whether it ever saw the chunk clean and unclaimed with the target still different.
 * The arbiter lets the ignore policy retry and checks the chunk converged.
 *
 * Broken variant caught: release-before-mark (mutants/patches/release-before-mark.patch): the
 * claim goes before the mark: the observer sees "1, 1".
 *
 * Rerun: java -jar stress/target/jcstress.jar -t FailedCopyVsObserver -m quick
 */
@JCStressTest
@Outcome(id = "0, 1", expect = ACCEPTABLE, desc = "Never clean and unclaimed while different; converged after the retry.")
@Outcome(id = "1, .*", expect = FORBIDDEN, desc = "Seen clean and unclaimed while the target differs.")
@Outcome(expect = FORBIDDEN, desc = "Did not converge after the retry.")
@State
public class FailedCopyVsObserver {
    static final int POLLS = 20_000;

    final MirrorRig rig;
    final Harness.StartLine start = new Harness.StartLine();
    volatile boolean copied;

    public FailedCopyVsObserver() {
        ChunkDevice source = new ChunkDevice(1);
        source.fill(0, 2);
        ChunkDevice target = new ChunkDevice(1);
        target.failNextWritesTo(0, 1);
        rig = MirrorRig.create(source, target, SyncMode.FULL, CopyMode.BACKGROUND, ErrorPolicy.IGNORE);
        rig.job.start();
    }

    @Actor
    public void copier() {
        start.arriveFirst();
        rig.runOne(); // the copy's read step (or the whole copy, if the runtime runs it as one task)
        rig.runOne(); // its write step: fails, marks, releases; then the back-off timer is queued
        copied = true;
    }

    @Actor
    public void observer(II_Result r) {
        start.arriveSecond();
        for (int i = 0; i < POLLS; i++) {
            boolean done = copied;
            boolean claimed = rig.isClaimed(0); // claim first: its release publishes the mark
            boolean dirty = rig.isDirty(0);
            if (!claimed && !dirty && rig.target.value(0) != rig.source.value(0)) {
                r.r1 = 1;
                return;
            }
            if (done) {
                return;
            }
        }
    }

    @Arbiter
    public void arbiter(II_Result r) {
        rig.drain(64); // the back-off timer, then the retried copy
        r.r2 = rig.target.value(0) == 2 && !rig.isDirty(0) && !rig.isClaimed(0) ? 1 : 0;
    }
}
