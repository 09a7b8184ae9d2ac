package dev.handoff.stress;

import dev.handoff.mirror.CopyMode;
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
 * Invariant (DESIGN §5 liveness; the store-load pair of Copier's class comment): a guest that
 * dirties a clean chunk while the copier is going idle is never stranded. The copier stores
 * idle = true and scans once more; the guest sets the bit and loads idle. Either the copier's
 * second scan finds the bit, or the guest sees idle and queues a wake-up.
 *
 * Set-up: two chunks, all 1 on both sides, sync NONE, started (READY), nothing dirty; the copier
 * was just woken (idle is false), as a guest's wake-up leaves it. The copier actor pumps: it
 * finds nothing, goes idle and scans again. The guest actor writes chunk 1 meanwhile, after a
 * delay that sweeps across samples so that its mark lands all along the copier's pump. The arbiter
 * runs whatever was queued: if neither side saw the other, nothing is queued and chunk 1 stays
 * dirty with its old value on the target.
 *
 * Broken variant caught: copier-skips-second-scan
 * (mutants/patches/copier-skips-second-scan.patch): the copier goes idle without the second
 * scan: "1, 1".
 *
 * Rerun: java -jar stress/target/jcstress.jar -t GuestWriteVsIdleFlag -m quick
 */
@JCStressTest
@Outcome(id = "3, 0", expect = ACCEPTABLE, desc = "Chunk 1 was copied: the second scan or a wake-up found it.")
@Outcome(id = "1, 1", expect = FORBIDDEN, desc = "Stranded: chunk 1 dirty, copier idle, nothing queued.")
@Outcome(expect = FORBIDDEN, desc = "Anything else.")
@State
public class GuestWriteVsIdleFlag {
    /** Sweeps the guest's delay across samples (Harness.sweep). */
    static final java.util.concurrent.atomic.AtomicInteger SWEEP = new java.util.concurrent.atomic.AtomicInteger();

    final MirrorRig rig;
    final Harness.StartLine start = new Harness.StartLine();

    public GuestWriteVsIdleFlag() {
        ChunkDevice source = new ChunkDevice(2);
        ChunkDevice target = new ChunkDevice(2);
        for (int c = 0; c < 2; c++) {
            source.fill(c, 1);
            target.fill(c, 1);
        }
        rig = MirrorRig.create(source, target, SyncMode.NONE, CopyMode.BACKGROUND);
        rig.job.start();
        rig.drain(16);
        rig.copierWoken();
    }

    @Actor
    public void copier() {
        start.arriveFirst();
        rig.pump(); // finds nothing, goes idle, scans again
    }

    @Actor
    public void guest() {
        start.arriveSecond();
        Harness.sweep(SWEEP, 64, 2); // lands its mark between the copier's scan and its idle store
        Harness.write(rig.guest, 1, 3);
    }

    @Arbiter
    public void arbiter(II_Result r) {
        rig.drain(64);
        r.r1 = rig.target.value(1);
        r.r2 = rig.isDirty(1) ? 1 : 0;
    }
}
