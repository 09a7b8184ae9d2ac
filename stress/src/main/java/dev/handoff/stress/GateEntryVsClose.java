package dev.handoff.stress;

import dev.handoff.mirror.StandaloneGate;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.II_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariant (DESIGN §2.4: complete holds new guest operations and lets those inside finish;
 * GuestGate's class comment, "Entry vs close"): a close that reports the gate drained never does
 * so while a guest that passed the entry check is inside. The guest adds 1 to its thread's cell
 * and then reads the closed flag; the closer sets the flag and then reads every cell: a store-load
 * pair of volatile accesses on both sides, so either the guest sees the flag and backs out, or
 * the closer's sum counts the guest.
 *
 * Set-up: an open, empty gate (the kernel's GuestGate through the test-jar's StandaloneGate).
 * Guest: tryEnter, and stays inside (no exit: the arbiter is not on its thread). Closer: close,
 * after a delay that sweeps across samples so that its store and sum land all along the guest's
 * entry.
 *
 * Broken variants caught (mutants/patches/): gate-entry-checks-before-announce (the guest reads
 * the flag before its RMW) and gate-close-sums-before-closing (the closer sums before it sets the
 * flag): each lets the guest's read and the closer's read both miss the other: "1, 1".
 *
 * Rerun: java -jar stress/target/jcstress.jar -t GateEntryVsClose -m quick
 */
@JCStressTest
@Outcome(id = "1, 0", expect = ACCEPTABLE, desc = "The guest entered first; the close counted it.")
@Outcome(id = "0, 1", expect = ACCEPTABLE, desc = "The close came first; the guest saw it and backed out.")
@Outcome(id = "0, 0", expect = ACCEPTABLE, desc = "Both saw the other: the close counted the guest, which backed out.")
@Outcome(id = "1, 1", expect = FORBIDDEN, desc = "Drained with a guest inside: both missed the other.")
@Outcome(expect = FORBIDDEN, desc = "Anything else.")
@State
public class GateEntryVsClose {
    /** Sweeps the closer's delay across samples (Harness.sweep). */
    static final java.util.concurrent.atomic.AtomicInteger SWEEP = new java.util.concurrent.atomic.AtomicInteger();

    final StandaloneGate gate = new StandaloneGate(() -> { });
    final Harness.StartLine start = new Harness.StartLine();

    @Actor
    public void guest(II_Result r) {
        start.arriveFirst();
        r.r1 = gate.tryEnter() ? 1 : 0;
    }

    @Actor
    public void closer(II_Result r) {
        start.arriveSecond();
        Harness.sweep(SWEEP, 8, 1); // shifts the close against the entry by a few instructions
        r.r2 = gate.close() ? 1 : 0;
    }
}
