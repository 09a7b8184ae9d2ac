package dev.handoff.stress;

import dev.handoff.mirror.StandaloneGate;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.III_Result;

import java.util.concurrent.atomic.AtomicInteger;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariant (DESIGN §2.4 and §5 liveness: complete and cancel end; GuestGate's class comment,
 * "Last exits vs each other"): a closed gate that empties always signals the drain (the close
 * returned true, or an exit ran onDrained), also when its last two guests leave at once. Each
 * exit subtracts 1 from its own thread's cell, then reads the flag and sums the cells: the exit
 * whose subtract is last in the order of volatile accesses sums after both and finds zero.
 *
 * Set-up: an open, empty gate (GuestGate through the test-jar's StandaloneGate), onDrained
 * counting its runs. Two guests on two threads (two different cells, for adjacent thread ids),
 * each entering and leaving on its own thread: the first enters, closes the gate while inside
 * (so the close cannot report it drained), and leaves; the second enters (or backs out, if the
 * close came first) and leaves, after a delay that sweeps across samples so that its exit lands
 * all along the first one's. The arbiter counts the drain signals and looks at the gate.
 *
 * Broken variant caught: gate-exit-skips-drained-check (mutants/patches/): an exit never looks
 * for a closed, empty gate, so nothing signals the drain: "0, 1, x".
 *
 * Rerun: java -jar stress/target/jcstress.jar -t GateLastExits -m quick
 */
@JCStressTest
@Outcome(id = {"1, 1, 0", "1, 1, 1", "2, 1, 0", "2, 1, 1"}, expect = ACCEPTABLE,
        desc = "Closed and empty, and an exit (or both) signalled the drain.")
@Outcome(id = {"0, 1, 0", "0, 1, 1"}, expect = FORBIDDEN, desc = "Lost drain: closed and empty, and nothing signalled.")
@Outcome(expect = FORBIDDEN, desc = "Anything else.")
@State
public class GateLastExits {
    /** Sweeps the second guest's delay across samples (Harness.sweep). */
    static final AtomicInteger SWEEP = new AtomicInteger();

    final AtomicInteger drained = new AtomicInteger();
    final StandaloneGate gate = new StandaloneGate(drained::incrementAndGet);
    final Harness.StartLine start = new Harness.StartLine();
    /** Whether the first guest's close found the gate empty (it never can: that guest is inside). */
    volatile boolean closeSaidDrained;

    @Actor
    public void closingGuest() {
        gate.enter();
        start.arriveFirst();
        closeSaidDrained = gate.close();
        gate.exit();
    }

    @Actor
    public void guest(III_Result r) {
        start.arriveSecond();
        Harness.sweep(SWEEP, 16, 1); // shifts this guest's exit against the other one's
        if (gate.tryEnter()) {
            r.r3 = 1;
            gate.exit();
        }
    }

    @Arbiter
    public void arbiter(III_Result r) {
        r.r1 = drained.get() + (closeSaidDrained ? 1 : 0);
        r.r2 = gate.isDrained() ? 1 : 0;
    }
}
