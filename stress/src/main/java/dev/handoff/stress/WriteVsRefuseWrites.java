package dev.handoff.stress;

import dev.handoff.device.WriteGate;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.III_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariant (DESIGN §4.2; WriteGate, the drain in front of an exported image): when refuseWrites
 * returns, no write is left in flight and every later one is refused with nothing reaching the
 * device. So the handoff that follows (flush, record, inactivate) leaves no client write to land
 * after it.
 *
 * Set-up: a gate in front of a one-chunk device whose writes land some spins after they are
 * called. A client writes 1 through the gate while the other actor refuses writes and at once
 * reads the device; the arbiter reads it again. Results: write acknowledged, the value right after
 * refuseWrites returned, the value at the end.
 *
 * Broken variant caught: gate-refuses-without-drain
 * (mutants/patches/gate-refuses-without-drain.patch): writes are refused from then on, but those in
 * flight are not waited for: "1, 0, 1".
 *
 * Rerun: java -jar stress/target/jcstress.jar -t WriteVsRefuseWrites -m quick
 */
@JCStressTest
@Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "Written before the refusal returned.")
@Outcome(id = "0, 0, 0", expect = ACCEPTABLE, desc = "Refused: nothing reached the device.")
@Outcome(id = "1, 0, 1", expect = FORBIDDEN, desc = "Landed after the refusal returned.")
@Outcome(expect = FORBIDDEN, desc = "Anything else.")
@State
public class WriteVsRefuseWrites {
    final ChunkDevice device = new ChunkDevice(1, 0, 50);
    final WriteGate gate = new WriteGate(device);
    final java.nio.ByteBuffer data = ChunkDevice.chunksOf(1, 1);
    final Harness.StartLine start = new Harness.StartLine();

    @Actor
    public void client(III_Result r) {
        start.arriveFirst();
        r.r1 = Harness.write(gate, 0, data);
    }

    @Actor
    public void handoff(III_Result r) {
        start.arriveSecond();
        gate.refuseWrites("handed over");
        r.r2 = device.value(0);
    }

    @Arbiter
    public void arbiter(III_Result r) {
        r.r3 = device.value(0);
    }
}
