package dev.handoff.stress;

import dev.handoff.mirror.CopyMode;
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
 * Invariant (DESIGN §2.6, §3.4, and the key invariant): a guest write racing the switch from
 * background to write-blocking (setCopyMode) takes one path or the other, never neither: either
 * the background path (source, then mark: the copier owes the chunk) or the write-blocking path
 * (source, then target). The filter reads the job's write-through flag (volatile) once, after it
 * entered the gate; the job writes it under its lock.
 *
 * Set-up: one chunk, in sync (sync NONE, source = target = 1), BACKGROUND, started (READY). The
 * guest writes 2; the controller switches to WRITE_BLOCKING. They meet at a start line. Nobody runs
 * the copier's tasks, so what the guest left is what the arbiter sees.
 * Results: (the copier owes the chunk: dirty or claimed by a copy the switch issued, target, source).
 *
 * Broken variant caught: background-write-rereads-mode
 * (mutants/patches/background-write-rereads-mode.patch): the background path reads the flag again
 * after its source write and skips the mark if the job is write-blocking by then, reasoning that
 * "the target gets the writes anyway": a write that entered before the switch is then neither
 * marked nor written through, (0, 1, 2).
 *
 * Rerun: java -jar stress/target/jcstress.jar -t GuestWriteVsWriteThroughSwitch -m quick
 */
@JCStressTest
@Outcome(id = "1, 1, 2", expect = ACCEPTABLE, desc = "Background path: the source has it and the chunk is marked for the copier.")
@Outcome(id = "0, 2, 2", expect = ACCEPTABLE, desc = "Write-blocking path: source and target have it, the chunk is clean.")
@Outcome(id = "0, 1, 2", expect = FORBIDDEN, desc = "Neither: the source has the write, the chunk is clean and the target stale.")
@Outcome(expect = FORBIDDEN, desc = "Anything else: a lost or refused write, or a value from nowhere.")
@State
public class GuestWriteVsWriteThroughSwitch {
    final MirrorRig rig;
    final Harness.StartLine start = new Harness.StartLine();
    final java.nio.ByteBuffer data = ChunkDevice.chunksOf(2, 1);

    public GuestWriteVsWriteThroughSwitch() {
        ChunkDevice source = new ChunkDevice(1);
        source.fill(0, 1);
        ChunkDevice target = new ChunkDevice(1);
        target.fill(0, 1);
        rig = MirrorRig.create(source, target, SyncMode.NONE, CopyMode.BACKGROUND);
        rig.job.start();
    }

    @Actor
    public void guest() {
        start.arriveFirst();
        Harness.write(rig.guest, 0, data);
    }

    @Actor
    public void controller() {
        start.arriveSecond();
        rig.job.setCopyMode(CopyMode.WRITE_BLOCKING);
    }

    @Arbiter
    public void arbiter(III_Result r) {
        r.r1 = rig.isDirty(0) || rig.isClaimed(0) ? 1 : 0;
        r.r2 = rig.target.value(0);
        r.r3 = rig.source.value(0);
    }
}
