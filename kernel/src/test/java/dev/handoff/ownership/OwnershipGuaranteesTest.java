package dev.handoff.ownership;

import static dev.handoff.ownership.OwnedImage.State.ACTIVE;
import static dev.handoff.ownership.OwnedImage.State.INACTIVE;
import static org.assertj.core.api.Assertions.assertThat;

import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;
import dev.handoff.mirror.CrashableDevice;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * The ownership protocol's guarantees, one scenario each. Each is the fastest check for one broken
 * variant of {@code OwnedImage} in the mutant catalog (named beside each test), which proves it
 * can fail.
 *
 * <p>Rerun: {@code mvn -pl kernel test -Dtest=OwnershipGuaranteesTest}
 */
class OwnershipGuaranteesTest {


    /** A newly active holder sees every write acknowledged before the handoff, even after a crash. */
    @Test // catches inactivate-without-flush
    void handoffLosesNoAcknowledgedWrite() throws Exception {
        CrashableDevice disk = new CrashableDevice(SharedImage.SIZE);
        SharedImage shared = new SharedImage(disk);
        OwnedImage source = shared.open("src", ACTIVE);
        OwnedImage destination = shared.open("dst", INACTIVE);
        source.write(0, SharedImage.bytes(4096, 0x42));
        HandoffToken token = source.prepareHandoff();
        disk.crash();
        destination.acceptHandoff(token);
        assertThat(SharedImage.read(destination, 0, 4096)).isEqualTo(SharedImage.filled(4096, 0x42));
        source.close();
        destination.close();
    }

    /**
     * A write in flight when inactivation starts lands before the flush that inactivation does. The
     * write is held on the device until inactivation either waits for it (parked in the drain) or,
     * drainless, has already flushed: the order the check looks at never depends on timing.
     */
    @Test // catches inactivate-without-drain
    void inactivationWaitsForInFlightWrites() throws Exception {
        SharedImage shared = new SharedImage();
        CountDownLatch release = new CountDownLatch(1);
        OwnedImage image = shared.open("a", ACTIVE, d -> new RecordingDevice(new ForwardingBlockDevice(d) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                try {
                    release.await(60, TimeUnit.SECONDS); // the test lets it land; the bound only ends a failed test
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                super.write(offset, src);
            }
        }, shared.log), ImageTuning.DEFAULT);
        CompletableFuture<Void> write = CompletableFuture.runAsync(() -> {
            try {
                image.write(0, SharedImage.bytes(512, 1));
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        Parked.await(() -> shared.log.snapshot().contains("write:begin@0"), () -> "the write began: " + shared.log.snapshot());
        AtomicReference<Thread> inactivator = new AtomicReference<>();
        CompletableFuture<Void> inactivation = CompletableFuture.runAsync(() -> {
            inactivator.set(Thread.currentThread());
            try {
                image.inactivate();
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        Parked.await(() -> inactivation.isDone() || Parked.in(inactivator.get(), "drain"),
                () -> "inactivation waits for the write or is done: " + shared.log.snapshot());
        release.countDown();
        write.get(30, TimeUnit.SECONDS);
        inactivation.get(30, TimeUnit.SECONDS);
        List<String> events = shared.log.snapshot();
        assertThat(events.indexOf("write:end@0")).as("the in-flight write ends before the flush: %s", events)
                .isNotNegative().isLessThan(events.indexOf("flush:begin"));
        image.close();
    }

    /** Metadata read before another owner's writes does not survive activation; epochs keep growing. */
    @Test // catches activate-keeps-cache
    void noStaleCacheSurvivesActivation() throws Exception {
        SharedImage shared = new SharedImage();
        OwnedImage a = shared.open("a", ACTIVE);
        OwnedImage b = shared.open("b", INACTIVE);
        a.write(0, SharedImage.bytes(512, 1));
        SharedImage.read(a, 0, 512); // cached
        b.acceptHandoff(a.prepareHandoff());
        b.write(0, SharedImage.bytes(512, 2));
        b.inactivate();
        a.activate();
        assertThat(SharedImage.read(a, 0, 512)).as("header after re-activation").isEqualTo(SharedImage.filled(512, 2));
        assertThat(a.epoch()).as("epoch after re-activation").isGreaterThan(b.epoch());
        a.close();
        b.close();
    }

    /** While one holder is active, another cannot activate. */
    @Test // catches activate-without-lock
    void atMostOneActiveHolder() throws Exception {
        SharedImage shared = new SharedImage();
        OwnedImage a = shared.open("a", ACTIVE);
        OwnedImage b = shared.open("b", INACTIVE);
        try {
            b.activate();
        } catch (ImageInactiveException expected) {
            // refused: good
        }
        assertThat(a.state() == ACTIVE && b.state() == ACTIVE).as("both active").isFalse();
        b.close();
        a.close();
    }

    /**
     * Two activations whose locks both "succeeded" (a lost lock) and that read the same epoch: the
     * compare-and-write of the epoch lets exactly one become ACTIVE.
     */
    @Test // catches bump-without-compare
    void racingActivationsWhoseLocksFailedHaveOneWinner() throws Exception {
        SharedImage shared = new SharedImage();
        OwnedImage c = shared.openWithFailedLock("c", INACTIVE);
        OwnedImage b = shared.openWithFailedLock("b", INACTIVE);
        // b has read epoch 0 and is about to write epoch 1 when c activates in between.
        shared.records.beforeNextWrite(() -> {
            try {
                c.activate();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        try {
            b.activate();
        } catch (ImageFencedException expected) {
            // refused: good
        }
        assertThat(c.state()).isEqualTo(ACTIVE);
        assertThat(b.state() == ACTIVE && c.state() == ACTIVE).as("both active").isFalse();
        c.close();
        b.close();
    }

    /** Closing an inactive handle writes neither data nor record. */
    @Test // catches close-inactive-writes-record
    void closeOfAnInactiveImageWritesNothing() throws Exception {
        SharedImage shared = new SharedImage();
        OwnedImage owner = shared.open("owner", ACTIVE);
        try {
            OwnedImage bystander = shared.open("bystander", INACTIVE, d -> new RecordingDevice(d, shared.log),
                    ImageTuning.DEFAULT);
            OwnershipRecord record = shared.record();
            shared.log.clear();
            bystander.close();
            assertThat(shared.log.snapshot()).as("what the inactive close did").isEmpty();
            assertThat(shared.record()).isEqualTo(record);
        } finally {
            owner.close();
        }
    }

    /** An inactive handle refuses writes and nothing reaches the device. */
    @Test // catches inactive-accepts-writes
    void noWriteWhileInactive() throws Exception {
        SharedImage shared = new SharedImage();
        OwnedImage image = shared.open("a", INACTIVE, d -> new RecordingDevice(d, shared.log),
                ImageTuning.DEFAULT);
        shared.log.clear();
        try {
            image.write(0, SharedImage.bytes(512, 1));
        } catch (ImageInactiveException expected) {
            // refused: good
        }
        assertThat(shared.log.snapshot()).as("what reached the device").isEmpty();
        image.close();
    }

    /** After a takeover is seen (at the latest by a flush), nothing more is flushed or written. */
    @Test // catches no-fencing
    void aFencedHandleWritesNothing() throws Exception {
        SharedImage shared = new SharedImage();
        RecordingDevice[] device = new RecordingDevice[1];
        OwnedImage image = shared.open("old", ACTIVE, d -> device[0] = new RecordingDevice(d, shared.log),
                ImageTuning.DEFAULT);
        shared.overwrite(new OwnershipRecord(2, "new", false));
        shared.log.clear();
        for (int i = 0; i < 2; i++) {
            try {
                image.flush();
                image.write(0, SharedImage.bytes(512, 1));
            } catch (ImageFencedException expected) {
                // refused: good
            }
        }
        assertThat(device[0].mutations()).as("mutations by a fenced handle").isZero();
    }

    /** A source cannot abort a handoff the destination accepted, even after the destination let go. */
    @Test // catches handoff-without-epoch-check
    void aStaleHandoffTokenCannotWin() throws Exception {
        SharedImage shared = new SharedImage();
        OwnedImage source = shared.open("src", ACTIVE);
        OwnedImage destination = shared.open("dst", INACTIVE);
        destination.acceptHandoff(source.prepareHandoff());
        destination.write(0, SharedImage.bytes(512, 9));
        destination.inactivate();
        try {
            source.abortHandoff();
        } catch (ImageFencedException expected) {
            // refused: good
        }
        assertThat(source.state()).as("source after a stale abort").isEqualTo(INACTIVE);
        assertThat(shared.record()).isEqualTo(new OwnershipRecord(2, "dst", true));
        source.close();
        destination.close();
    }
}
