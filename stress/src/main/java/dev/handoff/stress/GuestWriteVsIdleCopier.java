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

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariant (DESIGN §3.6 and §3.1): a guest write to a clean chunk of a
 * READY job reaches the target. The guest writes the source and then marks the chunk; the mark
 * wakes the idle copier, which claims, clears, reads and copies. Whatever the interleaving, once
 * the copier has drained, the chunk is clean and the target holds the guest's write.
 *
 * Set-up: one chunk, source = target = 1, sync NONE, started (READY at once, copier idle). The
 * source's writes land late (latency before the data lands); the copier actor waits for the
 * guest's wake-up (the first task) and then runs what is queued, as a pool thread would.
 *
 * Broken variant caught: mark-before-write (mutants/patches/mark-before-write.patch): the guest
 * marks, the woken copier copies the old bytes, and the write lands after the bit is gone:
 * target = 1 on a clean chunk.
 *
 * Rerun: java -jar stress/target/jcstress.jar -t GuestWriteVsIdleCopier -m quick
 */
@JCStressTest
@Outcome(id = "2, 1", expect = ACCEPTABLE, desc = "The target holds the guest's write; READY and clean.")
@Outcome(id = "1, 1", expect = FORBIDDEN, desc = "Lost update: the chunk is clean but the copy took the source before the write landed.")
@Outcome(expect = FORBIDDEN, desc = "The copier did not converge, or the target holds neither value.")
@State
public class GuestWriteVsIdleCopier {
    static final int SPINS = 200;
    static final int POLLS = 100_000;

    final MirrorRig rig;

    public GuestWriteVsIdleCopier() {
        ChunkDevice source = new ChunkDevice(1, 0, SPINS);
        ChunkDevice target = new ChunkDevice(1);
        source.fill(0, 1);
        target.fill(0, 1);
        rig = MirrorRig.create(source, target, SyncMode.NONE, CopyMode.BACKGROUND);
        rig.job.start();
    }

    @Actor
    public void guest() {
        Harness.write(rig.guest, 0, 2);
    }

    @Actor
    public void copier() {
        rig.serveFirstThenDrain(POLLS, 16);
    }

    @Arbiter
    public void arbiter(II_Result r) {
        rig.drain(64);
        r.r1 = rig.target.value(0);
        r.r2 = rig.job.state() == JobState.READY && !rig.isDirty(0) && !rig.isClaimed(0) ? 1 : 0;
    }
}
