package dev.handoff.stress;

import dev.handoff.device.DeviceException;
import dev.handoff.ownership.OwnedImage;
import dev.handoff.ownership.OwnedImageProbe;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.I_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariant (DESIGN §4.3 fencing): the newest epoch a handle has seen is a max-register. Record
 * reads on several threads (a write's timed recheck, a flush's recheck) raise it with a
 * compare-and-set loop, so two concurrent raises never leave it below the larger one: a handle
 * that once saw a takeover stays fenced.
 *
 * Set-up: an inactive in-memory OwnedImage (epoch 0). Two actors raise its newest epoch seen with
 * 5 and with 7 at once, through the kernel's published seam (OwnedImageProbe, in the kernel's
 * test-jar), which calls the handle's own observeEpoch; the arbiter reads the epoch back.
 *
 * Broken variant caught: observe-epoch-plain-store
 * (mutants/patches/observe-epoch-plain-store.patch): a read, a compare and a plain store; the
 * smaller value can overwrite the larger: "5".
 *
 * Rerun: java -jar stress/target/jcstress.jar -t ObserveEpochVsObserveEpoch -m quick
 */
@JCStressTest
@Outcome(id = "7", expect = ACCEPTABLE, desc = "The larger epoch stays.")
@Outcome(id = "5", expect = FORBIDDEN, desc = "Lowered: the smaller epoch overwrote the larger one.")
@Outcome(expect = FORBIDDEN, desc = "Anything else.")
@State
public class ObserveEpochVsObserveEpoch {
    final OwnedImage image;

    public ObserveEpochVsObserveEpoch() {
        try {
            image = OwnedImage.openMemory(new ChunkDevice(1), "a", OwnedImage.State.INACTIVE);
        } catch (DeviceException e) {
            throw new IllegalStateException(e);
        }
    }

    @Actor
    public void first() {
        observe(5);
    }

    @Actor
    public void second() {
        observe(7);
    }

    @Arbiter
    public void arbiter(I_Result r) {
        try {
            r.r1 = (int) OwnedImageProbe.newestEpochSeen(image);
            image.close();
        } catch (DeviceException e) {
            r.r1 = -1;
        }
    }

    private void observe(long epoch) {
        OwnedImageProbe.observeEpoch(image, epoch);
    }
}
