package dev.handoff.stress;

import dev.handoff.mirror.DirtyBitmap;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.III_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariant (DESIGN §2.1, dirty bitmap linearizable; DirtyBitmap point 1 "no lost mark"): two guests
 * marking different chunks of the same 64-bit word never overwrite each other's bit. Only actors
 * that touch the same word can see a lost update. (The test-and-clear side of the same word is
 * BitmapWordMarkVsClear: on two CPUs jcstress runs two actors per test.)
 *
 * Set-up: a 64-chunk bitmap (one word), clean. Results: mark(0) newly dirty, mark(1) newly dirty,
 * then the word's low two bits (chunk 0 = 1, chunk 1 = 2).
 *
 * Broken variant caught: mark-word-store-not-atomic
 * (mutants/patches/mark-word-store-not-atomic.patch): a mark writes back the word it read, OR-ed
 * with its bit, with a store instead of an atomic OR; the other guest's bit can be lost.
 *
 * Rerun: java -jar stress/target/jcstress.jar -t BitmapWordMarkVsMark -m quick
 */
@JCStressTest
@Outcome(id = "1, 1, 3", expect = ACCEPTABLE, desc = "Both marks took effect.")
@Outcome(id = {"1, 1, 1", "1, 1, 2"}, expect = FORBIDDEN, desc = "Lost mark: a guest's bit was overwritten by the other guest's mark.")
@Outcome(expect = FORBIDDEN, desc = "A mark reported wrongly.")
@State
public class BitmapWordMarkVsMark {
    final DirtyBitmap bitmap = new DirtyBitmap(64L * ChunkDevice.CHUNK, ChunkDevice.CHUNK);

    @Actor
    public void guest1(III_Result r) {
        r.r1 = bitmap.mark(0) ? 1 : 0;
    }

    @Actor
    public void guest2(III_Result r) {
        r.r2 = bitmap.mark(1) ? 1 : 0;
    }

    @Arbiter
    public void arbiter(III_Result r) {
        r.r3 = (bitmap.isDirty(0) ? 1 : 0) | (bitmap.isDirty(1) ? 2 : 0);
    }
}
