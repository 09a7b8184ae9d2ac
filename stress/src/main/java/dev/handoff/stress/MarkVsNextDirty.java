package dev.handoff.stress;

import dev.handoff.mirror.DirtyBitmap;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.IIII_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariant (DirtyBitmap point 3, "a completed mark is visible to a later scan"): a chunk marked
 * dirty is never skipped by a nextDirty scan that starts after the mark completes, even while a
 * concurrent scan is repairing the summary bit of the chunk's word.
 *
 * Set-up: a 128-chunk bitmap (two words); chunk 64 was marked and cleared, so word 1 is empty but
 * its summary bit is still set (stale). The guest marks chunk 64 and then raises a flag; the
 * scanner scans once (racing, and finding word 1 empty it clears the summary bit), reads the flag,
 * and scans again. Results: first scan, flag, second scan, the arbiter's scan.
 *
 * Broken variant caught: scan-forgets-recheck (mutants/patches/scan-forgets-recheck.patch): the
 * scanner clears the stale summary bit without re-reading the word, so a mark whose summary check
 * ran just before the clear stays invisible to every later scan: flag 1, second scan -1.
 *
 * Rerun: java -jar stress/target/jcstress.jar -t MarkVsNextDirty -m quick
 */
@JCStressTest
@Outcome(id = {"-1, 0, -1, 64", "-1, 0, 64, 64", "64, 0, 64, 64"}, expect = ACCEPTABLE,
        desc = "The second scan started before the mark finished; the arbiter's scan finds the chunk.")
@Outcome(id = {"-1, 1, 64, 64", "64, 1, 64, 64"}, expect = ACCEPTABLE,
        desc = "The second scan started after the mark finished and found the chunk.")
@Outcome(id = {".*, 1, -1, .*"}, expect = FORBIDDEN, desc = "A scan that started after the mark completed skipped the chunk.")
@Outcome(expect = FORBIDDEN, desc = "Anything else, e.g. the chunk invisible to every later scan.")
@State
public class MarkVsNextDirty {
    final DirtyBitmap bitmap = new DirtyBitmap(128L * ChunkDevice.CHUNK, ChunkDevice.CHUNK);
    volatile int marked;

    public MarkVsNextDirty() {
        bitmap.mark(64);
        bitmap.testAndClear(64);
    }

    @Actor
    public void guest() {
        bitmap.mark(64);
        marked = 1;
    }

    @Actor
    public void scanner(IIII_Result r) {
        r.r1 = (int) bitmap.nextDirty(0);
        r.r2 = marked;
        r.r3 = (int) bitmap.nextDirty(0);
    }

    @Arbiter
    public void arbiter(IIII_Result r) {
        r.r4 = (int) bitmap.nextDirty(0);
    }
}
