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
 * Invariant (DESIGN §2.6 and §3.4): a write-blocking guest write clears the dirty bits of the
 * chunks it covers completely, while it holds their claim, and leaves a chunk it covers only in
 * part dirty. Racing the copier, whichever claims first: the guest's write returns with the
 * chunk it rewrote whole clean (the copier has nothing left there), and the part of a chunk it
 * did not write still reaches the target.
 *
 * Set-up: mirror chunks of two device chunks (1024 bytes), three of them; source = 1 everywhere,
 * target = 0, sync FULL, WRITE_BLOCKING, a speed limit of one copy per time slice. The
 * constructor lets the copier copy mirror chunk 0; chunks 1 and 2 are dirty and unclaimed, and
 * the copier waits for its next slice (a queued timer; the rig's clock moves only when it runs).
 * The guest writes 2 over device chunks 2-4: mirror chunk 1 whole and the first half of mirror
 * chunk 2. The copier's actor runs the queued tasks (the timer, then the copies).
 * r1: whether mirror chunk 1 was dirty right after the guest's write returned;
 * r2: device chunk 5 on the target at the end (the half of mirror chunk 2 the guest did not write);
 * r3: 1 if the job is READY with nothing dirty or claimed and target = source everywhere.
 *
 * Broken variants caught:
 *  - write-blocking-no-clear (mutants/patches/write-blocking-no-clear.patch): the guest's write leaves the
 *    chunk it rewrote whole dirty when it ran before the copy: r1 = 1.
 *  - wb-clears-partial-chunk (mutants/patches/wb-clears-partial-chunk.patch): the guest's write
 *    clears mirror chunk 2, which it covered in part, before the copier copied it: its other half
 *    never reaches the target: r2 = 0, r3 = 0.
 *
 * Rerun: java -jar stress/target/jcstress.jar -t WriteBlockingClearVsCopy -m quick
 */
@JCStressTest
@Outcome(id = "0, 1, 1", expect = ACCEPTABLE, desc = "The whole chunk was clean at return; the partly written chunk was copied.")
@Outcome(id = "1, 1, 1", expect = FORBIDDEN, desc = "The write left the chunk it rewrote whole dirty: the copier still had work there.")
@Outcome(id = "0, 0, 0", expect = FORBIDDEN, desc = "The write cleared a chunk it covered in part: the other half never reached the target.")
@Outcome(expect = FORBIDDEN, desc = "Anything else: refused write, unconverged job, or a value from nowhere.")
@State
public class WriteBlockingClearVsCopy {
    static final int SPINS = 100;

    final MirrorRig rig;
    final Harness.StartLine start = new Harness.StartLine();
    final java.nio.ByteBuffer data = ChunkDevice.chunksOf(2, 3);
    int dirtyAfterWrite = -1;

    public WriteBlockingClearVsCopy() {
        ChunkDevice source = new ChunkDevice(6, SPINS, 0);
        for (int c = 0; c < 6; c++) {
            source.fill(c, 1);
        }
        rig = MirrorRig.create(source, new ChunkDevice(6), MirrorOptions.builder()
                .granularity(2 * ChunkDevice.CHUNK)
                .maxCopyBytes(2 * ChunkDevice.CHUNK)
                .bufSize(16L * ChunkDevice.CHUNK)
                .speed(1) // one copy per 100 ms slice of the rig's clock
                .sync(SyncMode.FULL)
                .copyMode(CopyMode.WRITE_BLOCKING)
                .copiesWhileGuestWrites(Integer.MAX_VALUE) // no fewer copies beside guests: explore the most (CopierTest checks the policy)
                .build());
        rig.job.start();  // queues the copy of mirror chunk 0 (its read step) and a timer
        rig.runOne();     // the read step queues the write step
        rig.runPicked(-1); // the write step: chunk 0 copied and released; the timer stays queued
    }

    @Actor
    public void guest() {
        start.arriveFirst();
        if (Harness.write(rig.guest, 2, data) == 1) {
            dirtyAfterWrite = rig.isDirty(1) ? 1 : 0;
        }
    }

    @Actor
    public void copier() {
        start.arriveSecond();
        rig.drain(64);
    }

    @Arbiter
    public void arbiter(III_Result r) {
        rig.drain(64);
        boolean converged = rig.job.state() == JobState.READY;
        for (int m = 0; m < 3; m++) {
            converged &= !rig.isDirty(m) && !rig.isClaimed(m);
        }
        for (int c = 0; c < 6; c++) {
            converged &= rig.source.value(c) == rig.target.value(c);
        }
        r.r1 = dirtyAfterWrite;
        r.r2 = rig.target.value(5);
        r.r3 = converged ? 1 : 0;
    }
}
