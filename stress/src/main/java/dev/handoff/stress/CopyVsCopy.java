package dev.handoff.stress;

import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.JobState;
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
 * Invariant (DESIGN §3.3, copier order 3): at most one copy of a chunk is in flight. A guest
 * write that re-dirties a chunk whose copy is in flight leaves it to the copier's next pass; the
 * copier skips the chunk while the copy holds its claim, so the newer copy starts only after the
 * older one has written the target, and the target ends with the newer data.
 *
 * Set-up: one chunk, source = 1, target = 0, sync FULL, background mode; the target's writes land
 * late. start() claimed the chunk and queued copy A; A has read the source (1) and its write step
 * is queued; then the guest wrote 2, which marked the chunk and queued the idle copier's wake-up.
 * The older copy's actor runs A's write step after a delay swept across samples; the copier's
 * actor runs the wake-up (a pass over the bitmap) and then whatever that pass queued, newest
 * first.
 * r1: 1 if the job is READY with the chunk neither dirty nor claimed at the end; r2: the target.
 *
 * Broken variant caught: overlapping-copies (mutants/patches/overlapping-copies.patch): the
 * pass takes the chunk although A holds it; copy B reads 2 and writes it while A's write of 1
 * is still on its way, and A lands last: READY with target 1 while the source holds 2.
 *
 * Rerun: java -jar stress/target/jcstress.jar -t CopyVsCopy -m quick
 */
@JCStressTest
@Outcome(id = "1, 2", expect = ACCEPTABLE, desc = "READY; the target holds the guest's write, copied after the older copy.")
@Outcome(id = "1, 1", expect = FORBIDDEN, desc = "Two copies of the chunk in flight: the older landed last.")
@Outcome(expect = FORBIDDEN, desc = "Anything else: unconverged job, or a value from nowhere.")
@State
public class CopyVsCopy {
    static final int SPINS = 200;
    static final AtomicInteger SWEEP = new AtomicInteger();

    final MirrorRig rig;
    final Harness.StartLine start = new Harness.StartLine();

    public CopyVsCopy() {
        ChunkDevice source = new ChunkDevice(1);
        source.fill(0, 1);
        rig = MirrorRig.create(source, new ChunkDevice(1, 0, SPINS), SyncMode.FULL, CopyMode.BACKGROUND);
        rig.job.start();                // claims the chunk and queues copy A's read step
        rig.runOne();                   // A reads 1 and queues its write step
        Harness.write(rig.guest, 0, 2); // source = 2, the chunk dirty again, the copier woken
    }

    @Actor
    public void olderCopy() {
        start.arriveFirst();
        Harness.sweep(SWEEP, 8, 40);
        rig.runOne(); // the oldest task: A's write step
    }

    @Actor
    public void copier() {
        start.arriveSecond();
        for (int i = 0; i < 3; i++) {
            rig.runPicked(-1); // the wake-up's pass, then what it queued
        }
    }

    @Arbiter
    public void arbiter(II_Result r) {
        rig.drain(64);
        r.r1 = rig.job.state() == JobState.READY && !rig.isDirty(0) && !rig.isClaimed(0) ? 1 : 0;
        r.r2 = rig.target.value(0);
    }
}
