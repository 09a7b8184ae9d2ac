package dev.handoff.stress;

import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorOptions;
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
 * Invariant (DESIGN §3.3, §3.4): a copy claims every chunk it carries, also the ones it adds when
 * it extends its run over adjacent dirty chunks, so a write-blocking guest write to the run's
 * tail waits for the copy to release it, and the copy can never land on the target after the
 * guest's write-through.
 *
 * Set-up: two chunks, source = 1, target = 0, sync FULL, WRITE_BLOCKING, copies of up to two
 * chunks; start() has claimed chunk 0, extended the run over chunk 1 and queued the copy of both.
 * The source's reads return late, so the copy holds its (possibly stale) data for a while before
 * it writes the target. The guest writes 2 to chunk 1, the run's tail. Guest and copier meet at a
 * start line (bounded spin) so that they race inside the window.
 *
 * Broken variant caught: run-extension-skips-claim
 * (mutants/patches/run-extension-skips-claim.patch): the copier extends its run over chunk 1
 * without claiming it, so the guest's claim succeeds at once; the guest writes source and target
 * while the copy holds the old source bytes, and the copy then overwrites the target:
 * target = 1 on a clean chunk (a write-blocking write marks nothing).
 *
 * Rerun: java -jar stress/target/jcstress.jar -t WriteBlockingVsCopyRunTail -m quick
 */
@JCStressTest
@Outcome(id = "1, 2, 2", expect = ACCEPTABLE, desc = "Acknowledged; source and target hold the guest's write.")
@Outcome(id = "1, 2, 1", expect = FORBIDDEN, desc = "The copy's unclaimed tail overwrote the guest's write-through.")
@Outcome(expect = FORBIDDEN, desc = "Anything else: refused write, unconverged job, or a value from nowhere.")
@State
public class WriteBlockingVsCopyRunTail {
    static final int SPINS = 200;

    final MirrorRig rig;
    final Harness.StartLine start = new Harness.StartLine();
    final java.nio.ByteBuffer data = ChunkDevice.chunksOf(2, 1);
    int acknowledged;

    public WriteBlockingVsCopyRunTail() {
        ChunkDevice source = new ChunkDevice(2, SPINS, 0);
        source.fill(0, 1);
        source.fill(1, 1);
        rig = MirrorRig.create(source, new ChunkDevice(2), MirrorOptions.builder()
                .granularity(ChunkDevice.CHUNK)
                .maxCopyBytes(2 * ChunkDevice.CHUNK)
                .bufSize(16L * ChunkDevice.CHUNK)
                .sync(SyncMode.FULL)
                .copyMode(CopyMode.WRITE_BLOCKING)
                .copiesWhileGuestWrites(Integer.MAX_VALUE) // no fewer copies beside guests: explore the most (CopierTest checks the policy)
                .build());
        rig.job.start(); // claims the run [0, 1] and queues its copy (the read step)
    }

    @Actor
    public void guest() {
        start.arriveFirst();
        acknowledged = Harness.write(rig.guest, 1, data);
    }

    @Actor
    public void copier() {
        start.arriveSecond();
        rig.drain(16);
    }

    @Arbiter
    public void arbiter(III_Result r) {
        rig.drain(64);
        boolean converged = rig.job.state() == JobState.READY
                && !rig.isDirty(0) && !rig.isClaimed(0) && !rig.isDirty(1) && !rig.isClaimed(1)
                && rig.source.value(0) == rig.target.value(0);
        r.r1 = converged ? acknowledged : -1;
        r.r2 = rig.source.value(1);
        r.r3 = rig.target.value(1);
    }
}
