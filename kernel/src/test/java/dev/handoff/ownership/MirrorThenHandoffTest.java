package dev.handoff.ownership;

import dev.handoff.device.DeviceException;
import dev.handoff.device.MemoryDevice;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import dev.handoff.workload.SyntheticGuest;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The two mechanisms together, as in a storage migration: mirror a disk into a new image owned
 * by this side, pivot the guest onto it, then hand the new image over to the other side. The
 * other side then holds every acknowledged write, and this side can no longer write.
 */
class MirrorThenHandoffTest {
    private static final long SIZE = 8L << 20;

    @Test
    void aMirroredImageIsHandedOverWithEveryAcknowledgedWrite() throws Exception {
        MemoryDevice source = new MemoryDevice(SIZE);
        MemoryDevice newImage = new MemoryDevice(SIZE);
        OwnedImage here = OwnedImage.openMemory(newImage, "here", OwnedImage.State.ACTIVE);
        OwnedImage there = OwnedImage.openMemory(newImage, "there", OwnedImage.State.INACTIVE);

        MirrorJob job = MirrorJob.create(source, here, MirrorOptions.defaults());
        SyntheticGuest guest = new SyntheticGuest(job.guestDevice(), 2, 9, 32 << 10);
        guest.start(1_000_000);
        job.start();
        assertThat(dev.handoff.mirror.Liveness.awaitReady(job, Duration.ofSeconds(45))).isTrue();
        job.complete();
        assertThat(dev.handoff.mirror.Liveness.awaitConclusion(job, Duration.ofSeconds(45))).isEqualTo(JobState.COMPLETED);
        guest.stop(); // its last writes went through the pivot onto `here`
        assertThat(guest.failures()).isEmpty();

        HandoffToken token = here.prepareHandoff();
        there.acceptHandoff(token);

        assertThat(there.state()).isEqualTo(OwnedImage.State.ACTIVE);
        assertThat(there.epoch()).isGreaterThan(token.epoch());
        assertThat(guest.verify(there)).as("every acknowledged write reached the new owner").isNull();
        assertThatThrownBy(() -> job.guestDevice().write(0, ByteBuffer.allocate(1)))
                .isInstanceOf(DeviceException.class)
                .satisfies(e -> assertThat(((DeviceException) e).kind()).isEqualTo(DeviceException.Kind.INACTIVE));
        there.close();
        here.close();
    }
}
