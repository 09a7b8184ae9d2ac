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
 * Invariant (DESIGN §3.6, the key invariant): a chunk that is neither dirty nor in flight has the
 * same content on source and target. Here: a background guest write races the copy of the same
 * chunk that is already claimed and on its way (copier order 2: claim, clear, read, write,
 * release). Whatever the interleaving, once the copier has drained, the chunk is clean and the
 * target holds the guest's write.
 *
 * Set-up: one chunk, source = 1, target = 0, sync FULL; start() has claimed and cleared the chunk
 * and queued its copy. The source's reads return late (latency after the data was taken), which
 * widens the window between the copy's read and whatever follows it.
 * Guest and copier meet at a start line (bounded spin) so that they race inside the window.
 *
 * Broken variant caught: clear-after-read (mutants/patches/clear-after-read.patch): the copier
 * clears the dirty bit after reading the source, so a guest write that lands and marks between
 * the read and the clear is wiped out with the bit: target = 1 on a clean chunk.
 *
 * Rerun: java -jar stress/target/jcstress.jar -t GuestWriteVsCopyInFlight -m quick
 */
@JCStressTest
@Outcome(id = "2, 1", expect = ACCEPTABLE, desc = "The target holds the guest's write; READY and clean.")
@Outcome(id = "1, 1", expect = FORBIDDEN, desc = "Lost update: the chunk is clean but the target holds the value from before the acknowledged write.")
@Outcome(expect = FORBIDDEN, desc = "The copier did not converge, or the target holds neither value.")
@State
public class GuestWriteVsCopyInFlight {
    static final int SPINS = 200;

    final MirrorRig rig;
    final Harness.StartLine start = new Harness.StartLine();
    final java.nio.ByteBuffer data = ChunkDevice.chunksOf(2, 1);

    public GuestWriteVsCopyInFlight() {
        ChunkDevice source = new ChunkDevice(1, SPINS, 0);
        source.fill(0, 1);
        rig = MirrorRig.create(source, new ChunkDevice(1), SyncMode.FULL, CopyMode.BACKGROUND);
        rig.job.start();
    }

    @Actor
    public void guest() {
        start.arriveFirst();
        Harness.write(rig.guest, 0, data);
    }

    @Actor
    public void copier() {
        start.arriveSecond();
        rig.drain(16);
    }

    @Arbiter
    public void arbiter(II_Result r) {
        rig.drain(64);
        r.r1 = rig.target.value(0);
        r.r2 = rig.job.state() == JobState.READY && !rig.isDirty(0) && !rig.isClaimed(0) ? 1 : 0;
    }
}
