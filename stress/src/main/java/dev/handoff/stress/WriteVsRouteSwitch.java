package dev.handoff.stress;

import dev.handoff.device.WriteGate;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.IIII_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariant (DESIGN §2.9; WriteGate, the drain in front of an exported image): when route(next)
 * returns, no write is left in flight on the old route, and every later write goes to next. So a
 * mirror job started on an exported image sees each client write either done before its guest
 * device took over (its bulk copy copies it) or going through it (tracked); never one landing on
 * the image behind the job's back.
 *
 * Set-up: a gate in front of a one-chunk device whose writes land some spins after they are
 * called; a second one-chunk device to switch to. A client writes 1 through the gate while the
 * other actor switches the route and at once reads the old device. The arbiter reads both devices.
 * Results: write acknowledged, the old device's value right after route() returned, the old and
 * the new device's values at the end.
 *
 * Broken variant caught: gate-route-without-drain (mutants/patches/gate-route-without-drain.patch):
 * the route is switched without waiting for the writes in flight: "1, 0, 1, 0".
 *
 * Rerun: java -jar stress/target/jcstress.jar -t WriteVsRouteSwitch -m quick
 */
@JCStressTest
@Outcome(id = "1, 1, 1, 0", expect = ACCEPTABLE, desc = "Written on the old route before the switch returned.")
@Outcome(id = "1, 0, 0, 1", expect = ACCEPTABLE, desc = "Written on the new route.")
@Outcome(id = "1, 0, 1, 0", expect = FORBIDDEN, desc = "Landed on the old route after the switch returned.")
@Outcome(expect = FORBIDDEN, desc = "Anything else.")
@State
public class WriteVsRouteSwitch {
    final ChunkDevice old = new ChunkDevice(1, 0, 50);
    final ChunkDevice next = new ChunkDevice(1);
    final WriteGate gate = new WriteGate(old);
    final java.nio.ByteBuffer data = ChunkDevice.chunksOf(1, 1);
    final Harness.StartLine start = new Harness.StartLine();

    @Actor
    public void client(IIII_Result r) {
        start.arriveFirst();
        r.r1 = Harness.write(gate, 0, data);
    }

    @Actor
    public void switcher(IIII_Result r) {
        start.arriveSecond();
        gate.route(next);
        r.r2 = old.value(0);
    }

    @Arbiter
    public void arbiter(IIII_Result r) {
        r.r3 = old.value(0);
        r.r4 = next.value(0);
    }
}
