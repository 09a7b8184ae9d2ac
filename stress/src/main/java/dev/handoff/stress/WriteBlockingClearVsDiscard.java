package dev.handoff.stress;

import dev.handoff.device.DeviceException;
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
 * Invariant (DESIGN §3.4 and the key invariant): the clear of a write-blocking guest write never
 * erases the mark of a background write racing on the same chunk. In write-blocking mode a
 * discard still takes the background path (write the source, then mark), as does a write that
 * entered before the switch to write-blocking. A mark that finds the bit already set writes
 * nothing (DirtyBitmap.markRange), so the write-blocking write must clear the bit *before* its
 * source write, behind a fence that pairs with the mark's: then the discard either reads the bit
 * cleared and sets it again, or its data landed before the guest's write, which overwrote it.
 *
 * Set-up: two chunks, source = 1, target = 0, sync FULL, WRITE_BLOCKING, a speed limit of one copy
 * per time slice; the constructor lets the copier copy chunk 0, so chunk 1 is dirty and
 * unclaimed and the copier waits on a queued timer. One actor writes 2 over chunk 1
 * (write-blocking; the target's writes are slow, which widens the window between its source
 * write and its return); the other discards chunk 1 (zeroes). The arbiter then lets the copier
 * run to READY. r1: 1 if READY with chunk 1 neither dirty nor claimed; r2, r3: chunk 1 on source
 * and target.
 *
 * Broken variant caught: wb-clears-after-target-write
 * (mutants/patches/wb-clears-after-target-write.patch): the guest clears after its target write;
 * a discard that landed on the source after the guest's source write and found the bit still set
 * left no mark, the clear made the chunk clean, and the target keeps the guest's 2 over the
 * source's 0: "1, 0, 2".
 *
 * Rerun: java -jar stress/target/jcstress.jar -t WriteBlockingClearVsDiscard -m quick
 */
@JCStressTest
@Outcome(id = "1, 2, 2", expect = ACCEPTABLE, desc = "The discard landed first, or its mark was copied after the write.")
@Outcome(id = "1, 0, 0", expect = ACCEPTABLE, desc = "The discard landed last; its mark made the copier copy the zeroes.")
@Outcome(id = "1, 0, 2", expect = FORBIDDEN, desc = "The guest's clear erased the discard's mark: clean chunk, stale target.")
@Outcome(expect = FORBIDDEN, desc = "Anything else: refused operation, unconverged job, or a value from nowhere.")
@State
public class WriteBlockingClearVsDiscard {
    static final int SPINS = 200;

    final MirrorRig rig;
    final Harness.StartLine start = new Harness.StartLine();
    final java.nio.ByteBuffer data = ChunkDevice.chunksOf(2, 1);
    volatile boolean refused;

    public WriteBlockingClearVsDiscard() {
        ChunkDevice source = new ChunkDevice(2);
        source.fill(0, 1);
        source.fill(1, 1);
        rig = MirrorRig.create(source, new ChunkDevice(2, 0, SPINS), MirrorOptions.builder()
                .granularity(ChunkDevice.CHUNK)
                .maxCopyBytes(ChunkDevice.CHUNK)
                .bufSize(16L * ChunkDevice.CHUNK)
                .speed(1) // one copy per 100 ms slice of the rig's clock
                .sync(SyncMode.FULL)
                .copyMode(CopyMode.WRITE_BLOCKING)
                .copiesWhileGuestWrites(Integer.MAX_VALUE) // no fewer copies beside guests: explore the most (CopierTest checks the policy)
                .build());
        rig.job.start();   // queues the copy of chunk 0 (its read step) and a timer
        rig.runOne();      // the read step queues the write step
        rig.runPicked(-1); // the write step: chunk 0 copied and released; the timer stays queued
    }

    @Actor
    public void guest() {
        start.arriveFirst();
        if (Harness.write(rig.guest, 1, data) == 0) {
            refused = true;
        }
    }

    @Actor
    public void discarder() {
        start.arriveSecond();
        try {
            rig.guest.discard(ChunkDevice.CHUNK, ChunkDevice.CHUNK);
        } catch (DeviceException e) {
            refused = true;
        }
    }

    @Arbiter
    public void arbiter(III_Result r) {
        rig.drain(64);
        boolean converged = !refused && rig.job.state() == JobState.READY && !rig.isDirty(1) && !rig.isClaimed(1);
        r.r1 = converged ? 1 : 0;
        r.r2 = rig.source.value(1);
        r.r3 = rig.target.value(1);
    }
}
