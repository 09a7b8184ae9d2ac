package dev.handoff.stress;

import dev.handoff.mirror.IntentsRig;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.III_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariant (DESIGN §2.10, rule 1 against rule 2; WriteIntents' class comment): while a guest write
 * is in progress (between WriteIntents.begin and end), its region's bit is written and synced in
 * the bitmap store, whatever a clear pass does. The writer counts itself (an RMW on the region's
 * write count) and then reads the durable bit; the clear clears the durable bit (an RMW) and then
 * reads the count: a store-load pair on both sides, so either the clear sees the writer and keeps
 * the bit, or the writer sees the bit cleared and sets and syncs it again before begin returns.
 *
 * Set-up: one region, its bit set and synced; the clear pass's candidates taken before the race
 * (the region idle, clean, unclaimed). Writer: the real WriteIntents.begin, then whether the bit is
 * covered. Clear: the real WriteIntents.clear of those candidates. The arbiter looks again (the
 * write has not ended).
 *
 * Broken variant caught: clear-ignores-writers (mutants/patches/clear-ignores-writers.patch): the
 * clear does not re-read the write count, so it erases the bit of a write that found it durable
 * and went on to the source: "1, 1, 0".
 *
 * Rerun: java -jar stress/target/jcstress.jar -t IntentBeginVsClear -m quick
 */
@JCStressTest
@Outcome(id = "1, 0, 1", expect = ACCEPTABLE, desc = "The clear saw the write in progress and kept the bit.")
@Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "The clear went first; the write set and synced the bit again.")
@Outcome(id = {"1, 1, 0", "0, 1, 0"}, expect = FORBIDDEN, desc = "A write in progress whose bit the clear erased.")
@Outcome(expect = FORBIDDEN, desc = "Anything else.")
@State
public class IntentBeginVsClear {
    final IntentsRig rig = new IntentsRig(1);
    final long[] candidates = rig.candidates();

    @Actor
    public void writer(III_Result r) {
        rig.begin(0);
        r.r1 = rig.covered(0) ? 1 : 0;
    }

    @Actor
    public void clearPass(III_Result r) {
        r.r2 = (int) rig.clear(candidates);
    }

    @Arbiter
    public void arbiter(III_Result r) {
        r.r3 = rig.covered(0) ? 1 : 0;
    }
}
