package dev.handoff.stress;

import dev.handoff.device.DeviceException;
import dev.handoff.ownership.OwnedImage;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.III_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariant (DESIGN §4): at most one active holder per image. Two handles on one image, both
 * INACTIVE (both sides of a migration after the source inactivated), call activate() at once:
 * exactly one wins; the loser stays INACTIVE with a clear error.
 *
 * Results: first activate succeeded, second activate succeeded, handles ACTIVE afterwards.
 *
 * Broken variant caught: activate-without-lock (mutants/patches/activate-without-lock.patch):
 * activation skips the ownership lock; the epoch compare in the record catches only the
 * interleavings where both read the same epoch, so both handles can end up ACTIVE: "1, 1, 2".
 *
 * Rerun: java -jar stress/target/jcstress.jar -t TwoActivations -m quick
 */
@JCStressTest
@Outcome(id = {"1, 0, 1", "0, 1, 1"}, expect = ACCEPTABLE, desc = "Exactly one handle activated.")
@Outcome(id = "1, 1, .*", expect = FORBIDDEN, desc = "Both activations succeeded: two active holders.")
@Outcome(expect = FORBIDDEN, desc = "No handle or two handles active at the end.")
@State
public class TwoActivations {
    final ChunkDevice device = new ChunkDevice(1);
    final OwnedImage a;
    final OwnedImage b;

    public TwoActivations() {
        try {
            a = OwnedImage.openMemory(device, "a", OwnedImage.State.INACTIVE);
            b = OwnedImage.openMemory(device, "b", OwnedImage.State.INACTIVE);
        } catch (DeviceException e) {
            throw new IllegalStateException(e);
        }
    }

    @Actor
    public void first(III_Result r) {
        r.r1 = activate(a);
    }

    @Actor
    public void second(III_Result r) {
        r.r2 = activate(b);
    }

    @Arbiter
    public void arbiter(III_Result r) {
        r.r3 = (a.state() == OwnedImage.State.ACTIVE ? 1 : 0) + (b.state() == OwnedImage.State.ACTIVE ? 1 : 0);
        try {
            a.close(); // releases the lock if held: jcstress makes millions of these images
        } catch (DeviceException ignored) {
            // a fenced close reports; the state under test was already recorded
        }
        try {
            b.close();
        } catch (DeviceException ignored) {
            // as above
        }
    }

    private static int activate(OwnedImage image) {
        try {
            image.activate();
            return 1;
        } catch (DeviceException e) {
            return 0;
        }
    }
}
