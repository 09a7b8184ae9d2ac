package dev.handoff.stress;

import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.JobState;
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
 * Invariant (DESIGN §3.4, and the key invariant): in write-blocking mode a guest write that
 * goes to the target synchronously is ordered with an in-flight copy of the same chunk. The
 * kernel makes the guest claim the chunk, so it waits for the copy to release it; the copy can
 * then never land on the target after the guest's write.
 *
 * Set-up: one chunk, source = 1, target = 0, sync FULL, copy mode WRITE_BLOCKING; start() has
 * claimed the chunk and queued its copy. The source's reads return late, so a copy holds its
 * (possibly stale) data for a while before it writes the target.
 * Guest and copier meet at a start line (bounded spin) so that they race inside the window.
 *
 * Broken variant caught: write-blocking-unordered
 * (mutants/patches/write-blocking-unordered.patch): the guest skips the claim, writes source and
 * target while the copy holds the old source bytes, and the copy then overwrites the target:
 * target = 1 on a clean chunk (a write-blocking write marks nothing).
 *
 * Rerun: java -jar stress/target/jcstress.jar -t WriteBlockingVsCopy -m quick
 */
@JCStressTest
@Outcome(id = "1, 2, 2", expect = ACCEPTABLE, desc = "Acknowledged; source and target hold the guest's write.")
@Outcome(id = "1, 2, 1", expect = FORBIDDEN, desc = "The in-flight copy overwrote the guest's write-through with older data.")
@Outcome(expect = FORBIDDEN, desc = "Anything else: refused write, unconverged job, or a value from nowhere.")
@State
public class WriteBlockingVsCopy {
    static final int SPINS = 200;

    final MirrorRig rig;
    final Harness.StartLine start = new Harness.StartLine();
    final java.nio.ByteBuffer data = ChunkDevice.chunksOf(2, 1);
    int acknowledged;

    public WriteBlockingVsCopy() {
        ChunkDevice source = new ChunkDevice(1, SPINS, 0);
        source.fill(0, 1);
        rig = MirrorRig.create(source, new ChunkDevice(1), SyncMode.FULL, CopyMode.WRITE_BLOCKING);
        rig.job.start();
    }

    @Actor
    public void guest() {
        start.arriveFirst();
        acknowledged = Harness.write(rig.guest, 0, data);
    }

    @Actor
    public void copier() {
        start.arriveSecond();
        rig.drain(16);
    }

    @Arbiter
    public void arbiter(III_Result r) {
        rig.drain(64);
        boolean converged = rig.job.state() == JobState.READY && !rig.isDirty(0) && !rig.isClaimed(0);
        r.r1 = converged ? acknowledged : -1;
        r.r2 = rig.source.value(0);
        r.r3 = rig.target.value(0);
    }
}
