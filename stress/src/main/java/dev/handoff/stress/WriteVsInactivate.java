package dev.handoff.stress;

import dev.handoff.device.DeviceException;
import dev.handoff.ownership.OwnedImage;
import dev.handoff.ownership.OwnershipRecord;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.IIII_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/*
 * Invariants (DESIGN §4): a write racing inactivate() is either written and flushed before the
 * inactivation (a newly active holder sees every acknowledged write), or refused with nothing
 * reaching the device; never acknowledged and lost, never written after. Closing an inactive
 * image writes nothing: no metadata, no record.
 *
 * Set-up: one image (a one-chunk device whose flush is what survives a handoff) with two handles:
 * the destination "dst", opened INACTIVE first (so it only ever read the absent record), and the
 * source "src", ACTIVE. src writes 2 while src is inactivated. Then the arbiter closes dst.
 * Results: write acknowledged, the flushed (durable) value, the device's current value, and
 * whether the record is still src's clean record after dst closed.
 *
 * Broken variants caught: inactivate-without-flush (mutants/patches/inactivate-without-flush.patch:
 * "1, 0, 2, 1", acknowledged but not durable), close-inactive-writes-record
 * (mutants/patches/close-inactive-writes-record.patch: the record is overwritten by the inactive
 * handle's stale copy, last result 0).
 *
 * Rerun: java -jar stress/target/jcstress.jar -t WriteVsInactivate -m quick
 */
@JCStressTest
@Outcome(id = "1, 2, 2, 1", expect = ACCEPTABLE, desc = "Written and flushed before the inactivation.")
@Outcome(id = "0, 0, 0, 1", expect = ACCEPTABLE, desc = "Refused: the image was already inactive; nothing reached the device.")
@Outcome(id = "1, 0, 2, .*", expect = FORBIDDEN, desc = "Acknowledged but not flushed: lost on handoff.")
@Outcome(id = "0, .*, 2, .*", expect = FORBIDDEN, desc = "Refused, yet the write reached the device.")
@Outcome(id = ".*, .*, .*, 0", expect = FORBIDDEN, desc = "Closing the inactive handle wrote the ownership record.")
@Outcome(expect = FORBIDDEN, desc = "Anything else.")
@State
public class WriteVsInactivate {
    final ChunkDevice device = new ChunkDevice(1);
    final OwnedImage dst;
    final OwnedImage src;
    final java.nio.ByteBuffer data = ChunkDevice.chunksOf(2, 1);

    public WriteVsInactivate() {
        try {
            dst = OwnedImage.openMemory(device, "dst", OwnedImage.State.INACTIVE);
            src = OwnedImage.openMemory(device, "src", OwnedImage.State.ACTIVE);
        } catch (DeviceException e) {
            throw new IllegalStateException(e);
        }
    }

    @Actor
    public void writer(IIII_Result r) {
        r.r1 = Harness.write(src, 0, data);
    }

    @Actor
    public void handoff() {
        try {
            src.inactivate();
        } catch (DeviceException e) {
            throw new IllegalStateException(e);
        }
    }

    @Arbiter
    public void arbiter(IIII_Result r) {
        r.r2 = device.durable(0);
        r.r3 = device.value(0);
        try {
            OwnershipRecord before = src.readRecord();
            dst.close();
            OwnershipRecord after = src.readRecord();
            r.r4 = before.equals(after) && before.clean() && before.ownerId().equals("src") ? 1 : 0;
            src.close();
        } catch (DeviceException e) {
            r.r4 = -1;
        }
    }
}
