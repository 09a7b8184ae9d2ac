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
 * Invariant (DESIGN §2.1, dirty bitmap linearizable; DirtyBitmap point 1 "no lost mark"): a guest
 * marking one chunk and the copier test-and-clearing another chunk of the same 64-bit word never
 * overwrite each other's update. A lost mark is a lost guest write (the chunk is never copied).
 *
 * Set-up: a 64-chunk bitmap (one word) with chunk 1 dirty. Results: mark(0) newly dirty,
 * testAndClear(1) was dirty, then the word's low two bits (chunk 0 = 1, chunk 1 = 2).
 *
 * Broken variant caught: clear-word-store-not-atomic
 * (mutants/patches/clear-word-store-not-atomic.patch): test-and-clear reads the word and stores
 * it back without its bit instead of an atomic AND; a mark landing in between is wiped out.
 *
 * Rerun: java -jar stress/target/jcstress.jar -t BitmapWordMarkVsClear -m quick
 */
@JCStressTest
@Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "The mark and the clear both took effect.")
@Outcome(id = "1, 1, 0", expect = FORBIDDEN, desc = "Lost mark: the clear wrote back a word read before the mark.")
@Outcome(expect = FORBIDDEN, desc = "A bit update reported or applied wrongly.")
@State
public class BitmapWordMarkVsClear {
    final DirtyBitmap bitmap = new DirtyBitmap(64L * ChunkDevice.CHUNK, ChunkDevice.CHUNK);

    public BitmapWordMarkVsClear() {
        bitmap.mark(1);
    }

    @Actor
    public void guest(III_Result r) {
        r.r1 = bitmap.mark(0) ? 1 : 0;
    }

    @Actor
    public void copier(III_Result r) {
        r.r2 = bitmap.testAndClear(1) ? 1 : 0;
    }

    @Arbiter
    public void arbiter(III_Result r) {
        r.r3 = (bitmap.isDirty(0) ? 1 : 0) | (bitmap.isDirty(1) ? 2 : 0);
    }
}
