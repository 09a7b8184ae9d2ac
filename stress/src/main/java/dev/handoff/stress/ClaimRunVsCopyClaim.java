package dev.handoff.stress;

import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.SyncMode;
import java.util.concurrent.atomic.AtomicInteger;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.II_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariant (DESIGN §3.3): at most one claim per chunk, also when a write-blocking guest claims a
 * range of chunks of one word in one CAS: the CAS takes only the free chunks below the first held
 * one, and the guest waits for that one.
 *
 * Set-up: the claims of a job over two chunks (one bitmap word). The guest claims chunks 0 and 1
 * (InFlightChunks.claim); a copier tries to claim chunk 1 (tryClaim). Whoever holds chunk 1 counts
 * itself in, spins, counts itself out and releases; each reports the count it saw on entering.
 * The two meet at a start line, so the copier often holds chunk 1 when the guest's CAS runs.
 *
 * Broken variant caught: claim-run-takes-held-chunks
 * (mutants/patches/claim-run-takes-held-chunks.patch): the guest's CAS sets every chunk of its
 * range in the word without looking at the ones already held, so both hold chunk 1: "2" for one.
 *
 * Rerun: java -jar stress/target/jcstress.jar -t ClaimRunVsCopyClaim -m quick
 */
@JCStressTest
@Outcome(id = "1, 1", expect = ACCEPTABLE, desc = "Both held chunk 1, one after the other.")
@Outcome(id = "1, 0", expect = ACCEPTABLE, desc = "The copier found chunk 1 claimed and skipped it.")
@Outcome(id = {"2, 1", "1, 2", "2, 2", "2, 0"}, expect = FORBIDDEN, desc = "Two claims on chunk 1 at once.")
@Outcome(expect = FORBIDDEN, desc = "Anything else.")
@State
public class ClaimRunVsCopyClaim {
    static final int SPINS = 100;

    final MirrorRig rig = MirrorRig.create(new ChunkDevice(2), new ChunkDevice(2), SyncMode.NONE, CopyMode.WRITE_BLOCKING);
    final AtomicInteger inside = new AtomicInteger();
    final Harness.StartLine start = new Harness.StartLine();

    @Actor
    public void guest(II_Result r) {
        start.arriveFirst();
        rig.claim(0, 1);
        r.r1 = holdChunk1();
        rig.release(0, 1);
    }

    @Actor
    public void copier(II_Result r) {
        start.arriveSecond();
        if (rig.tryClaim(1)) {
            r.r2 = holdChunk1();
            rig.release(1, 1);
        }
    }

    /** Counts this holder of chunk 1 in and out; returns how many held it on entering, itself included. */
    private int holdChunk1() {
        int seen = inside.incrementAndGet();
        for (int i = 0; i < SPINS; i++) {
            Thread.onSpinWait();
        }
        inside.decrementAndGet();
        return seen;
    }
}
