package dev.handoff.stress;

import dev.handoff.mirror.DirtyBitmap;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.III_Result;

import java.lang.invoke.VarHandle;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariant (DESIGN §3.1 and §3.2, the store-load pair of DirtyBitmap's class comment, point 2):
 * a guest that writes a chunk which is already dirty, while the copier clears that chunk and
 * reads it, is never lost. Either the copier's read sees the guest's data, or the guest's read of
 * the word sees the cleared bit and marks the chunk again. Both sides are store-then-load: the
 * guest stores its data and loads the word; the copier stores the cleared bit and loads the data.
 * Without a full fence on both sides, each load can pass its own store (a store buffer does it on
 * x86) and both miss the other.
 *
 * Set-up: one chunk, already dirty; the "source" is one plain int (the guest's data store is a
 * plain store, as a device write's is). Guest: data = 2, then the real DirtyBitmap.markRange.
 * Copier: the real DirtyBitmap.testAndClear, then the fence CopyOperation.readSource issues, then
 * a plain read of the data, after a delay of 0 to 7 spin-waits that sweeps across samples. The
 * arbiter reads whether the chunk is dirty at the end.
 *
 * Broken variant caught: mark-range-without-fence (mutants/patches/mark-range-without-fence.patch):
 * markRange reads the word without its fullFence, so it can find the bit still set while its data
 * store is not yet visible; the copier clears and reads the old data, and the chunk stays clean:
 * "1, 1, 0".
 *
 * Rerun: java -jar stress/target/jcstress.jar -t MarkFenceVsClear -m quick
 */
@JCStressTest
@Outcome(id = {"2, 1, 0", "2, 1, 1"}, expect = ACCEPTABLE, desc = "The copier read the guest's data.")
@Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "The copier read old data; the guest saw the clear and marked again.")
@Outcome(id = "1, 1, 0", expect = FORBIDDEN, desc = "Lost update: old data copied and the chunk left clean.")
@Outcome(expect = FORBIDDEN, desc = "Anything else.")
@State
public class MarkFenceVsClear {
    /** Sweeps the copier's delay across samples (Harness.sweep). */
    static final java.util.concurrent.atomic.AtomicInteger SWEEP = new java.util.concurrent.atomic.AtomicInteger();

    final DirtyBitmap bitmap = new DirtyBitmap(ChunkDevice.CHUNK, ChunkDevice.CHUNK);
    int data = 1;

    public MarkFenceVsClear() {
        bitmap.mark(0);
    }

    @Actor
    public void guest() {
        data = 2; // plain: the guest's device write
        bitmap.markRange(0, ChunkDevice.CHUNK);
    }

    @Actor
    public void copier(III_Result r) {
        Harness.sweep(SWEEP, 8, 1); // shifts the copier against the guest by a few instructions
        r.r2 = bitmap.testAndClear(0) ? 1 : 0;
        VarHandle.fullFence(); // CopyOperation.readSource's fence after the clear
        r.r1 = data; // plain: the copy's source read
    }

    @Arbiter
    public void arbiter(III_Result r) {
        r.r3 = bitmap.isDirty(0) ? 1 : 0; // 0 after an old-data copy: nothing copies the chunk again
    }
}
