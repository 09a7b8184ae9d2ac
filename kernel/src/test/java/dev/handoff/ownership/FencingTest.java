package dev.handoff.ownership;

import static dev.handoff.ownership.OwnedImage.State.ACTIVE;
import static dev.handoff.ownership.OwnedImage.State.INACTIVE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.handoff.device.DeviceException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * Epoch fencing: a handle that sees a newer epoch in the record writes nothing more, and the
 * documented re-check points (every flush, every record write, writes after the interval).
 * A takeover is simulated by writing the shared record directly, as an owner that got the image
 * after this handle's lock was lost would.
 */
class FencingTest {

    private static final ImageTuning NO_TIMED_RECHECK = ImageTuning.DEFAULT.withRecheckNanos(Long.MAX_VALUE);

    private final SharedImage shared = new SharedImage();
    private RecordingDevice device;

    private OwnedImage openActive(ImageTuning tuning) throws DeviceException {
        return shared.open("old", ACTIVE, d -> device = new RecordingDevice(d, shared.log), tuning);
    }

    private void takeOver(long epoch) throws DeviceException {
        shared.overwrite(new OwnershipRecord(epoch, "new", false));
    }

    @Test
    void flushRereadsTheRecordAndRefusesWithoutFlushingWhenANewerEpochExists() throws Exception {
        try (OwnedImage image = openActive(NO_TIMED_RECHECK)) {
            takeOver(2);
            long reads = shared.records.reads();
            assertThatThrownBy(image::flush).isInstanceOf(ImageFencedException.class)
                    .hasMessageContaining("epoch 1").hasMessageContaining("epoch 2")
                    .satisfies(e -> {
                        ImageFencedException f = (ImageFencedException) e;
                        assertThat(f.kind()).isEqualTo(DeviceException.Kind.FENCED);
                        assertThat(f.handleEpoch()).isEqualTo(1);
                        assertThat(f.recordEpoch()).isEqualTo(2);
                    });
            assertThat(shared.records.reads()).isEqualTo(reads + 1);
            assertThat(device.flushes()).isZero();
        } catch (ImageFencedException expectedFromClose) {
            assertThat(expectedFromClose).hasMessageContaining("close");
        }
    }

    @Test
    void onceFencedEveryWriteIsRefusedAndNothingReachesTheDevice() throws Exception {
        OwnedImage image = openActive(NO_TIMED_RECHECK);
        takeOver(2);
        assertThatThrownBy(image::flush).isInstanceOf(ImageFencedException.class);
        long mutations = device.mutations();
        assertThatThrownBy(() -> image.write(0, SharedImage.bytes(512, 1))).isInstanceOf(ImageFencedException.class);
        assertThatThrownBy(() -> image.writeZeroes(0, 512)).isInstanceOf(ImageFencedException.class);
        assertThatThrownBy(() -> image.discard(0, 512)).isInstanceOf(ImageFencedException.class);
        assertThatThrownBy(image::flush).isInstanceOf(ImageFencedException.class);
        assertThat(device.mutations()).isEqualTo(mutations);
        assertThat(SharedImage.read(shared.disk, 0, 512)).isEqualTo(new byte[512]);
        assertThat(image.state()).isEqualTo(ACTIVE); // in name, but fenced
        assertThatThrownBy(image::activate).isInstanceOf(ImageFencedException.class);
        assertThatThrownBy(image::close).isInstanceOf(ImageFencedException.class);
        assertThat(shared.record()).isEqualTo(new OwnershipRecord(2, "new", false));
    }

    @Test
    void betweenRechecksWritesUseTheCachedEpochWithoutReadingTheRecord() throws Exception {
        try (OwnedImage image = openActive(NO_TIMED_RECHECK)) {
            long reads = shared.records.reads();
            for (int i = 0; i < 100; i++) {
                image.write(i * 512L, SharedImage.bytes(512, 1));
            }
            assertThat(shared.records.reads()).isEqualTo(reads);
            // The documented window: a takeover is not seen by writes until the next re-check.
            takeOver(2);
            image.write(0, SharedImage.bytes(512, 2));
            assertThatThrownBy(image::flush).isInstanceOf(ImageFencedException.class);
            assertThatThrownBy(() -> image.write(0, SharedImage.bytes(512, 3))).isInstanceOf(ImageFencedException.class);
        } catch (ImageFencedException fromClose) {
            assertThat(shared.record().epoch()).isEqualTo(2);
        }
    }

    @Test
    void writesRereadTheRecordOnceTheRecheckIntervalHasPassedOnTheHandlesClock() throws Exception {
        long interval = TimeUnit.MILLISECONDS.toNanos(100);
        AtomicLong now = new AtomicLong(1_000);
        OwnedImage image = openActive(ImageTuning.DEFAULT.withRecheckNanos(interval).withClock(now::get));
        image.write(0, SharedImage.bytes(512, 1));
        takeOver(2);
        long reads = shared.records.reads();
        now.addAndGet(interval - 1); // one nanosecond short of the interval since the activation read the record
        image.write(512, SharedImage.bytes(512, 2)); // the documented window: admitted on the epoch it has seen
        assertThat(shared.records.reads()).isEqualTo(reads);
        now.addAndGet(1);
        long mutations = device.mutations();
        assertThatThrownBy(() -> image.write(0, SharedImage.bytes(512, 3))).isInstanceOf(ImageFencedException.class);
        assertThat(shared.records.reads()).isEqualTo(reads + 1);
        assertThat(device.mutations()).isEqualTo(mutations);
        assertThat(SharedImage.read(shared.disk, 0, 512)).isEqualTo(SharedImage.filled(512, 1));
    }

    @Test
    void withAZeroIntervalEveryWriteRereadsTheRecord() throws Exception {
        OwnedImage image = openActive(ImageTuning.DEFAULT.withRecheckNanos(0));
        long reads = shared.records.reads();
        image.write(0, SharedImage.bytes(512, 1));
        image.write(0, SharedImage.bytes(512, 1));
        assertThat(shared.records.reads()).isEqualTo(reads + 2);
        takeOver(2);
        assertThatThrownBy(() -> image.write(0, SharedImage.bytes(512, 2))).isInstanceOf(ImageFencedException.class);
    }

    @Test
    void aFencedHandleWritesNothingWhenInactivatedAndBecomesInactive() throws Exception {
        OwnedImage image = openActive(NO_TIMED_RECHECK);
        image.write(0, SharedImage.bytes(512, 1));
        takeOver(5);
        long mutations = device.mutations();
        long recordWrites = shared.records.writes();
        assertThatThrownBy(image::inactivate).isInstanceOf(ImageFencedException.class)
                .hasMessageContaining("now INACTIVE");
        assertThat(image.state()).isEqualTo(INACTIVE);
        assertThat(device.mutations()).isEqualTo(mutations);
        assertThat(shared.records.writes()).isEqualTo(recordWrites);
        assertThat(shared.record()).isEqualTo(new OwnershipRecord(5, "new", false));
        image.close();
        assertThat(device.mutations()).isEqualTo(mutations);
        assertThat(shared.records.writes()).isEqualTo(recordWrites);
    }

    @Test
    void aFencedHandleCanActivateAgainAboveTheNewestEpoch() throws Exception {
        try (OwnedImage image = openActive(NO_TIMED_RECHECK)) {
            takeOver(7);
            assertThatThrownBy(image::inactivate).isInstanceOf(ImageFencedException.class);
            image.activate();
            assertThat(image.epoch()).isEqualTo(8);
            image.write(0, SharedImage.bytes(512, 1));
            image.flush();
        }
    }

    @Test
    void epochsNeverGoBackwardsEvenIfTheRecordDoes() throws Exception {
        try (OwnedImage image = openActive(NO_TIMED_RECHECK)) {
            takeOver(9);
            assertThatThrownBy(image::flush).isInstanceOf(ImageFencedException.class);
            assertThatThrownBy(image::inactivate).isInstanceOf(ImageFencedException.class);
            shared.overwrite(OwnershipRecord.ABSENT); // a record reset behind our back
            image.activate();
            assertThat(image.epoch()).isEqualTo(10);
        }
    }

    @Test
    void fencingStopsTheOldOwnerEvenWhenASecondActivationBypassedTheLock() throws Exception {
        OwnedImage old = openActive(NO_TIMED_RECHECK);
        OwnedImage intruder = shared.openWithFailedLock("intruder", INACTIVE);
        intruder.activate(); // double active: only possible when the lock fails to exclude
        assertThat(intruder.epoch()).isEqualTo(2);
        old.write(0, SharedImage.bytes(512, 1)); // inside the window
        assertThatThrownBy(old::flush).isInstanceOf(ImageFencedException.class);
        assertThatThrownBy(() -> old.write(0, SharedImage.bytes(512, 1))).isInstanceOf(ImageFencedException.class);
        intruder.write(0, SharedImage.bytes(512, 2));
        intruder.flush();
        intruder.close();
        assertThatThrownBy(old::close).isInstanceOf(ImageFencedException.class);
        assertThat(shared.record()).isEqualTo(new OwnershipRecord(2, "intruder", true));
    }

    @Test
    void anUnreadableRecordFailsTheFlushWithoutFlushing() throws Exception {
        try (OwnedImage image = openActive(NO_TIMED_RECHECK)) {
            shared.records.failNextReads(1);
            assertThatThrownBy(image::flush).isInstanceOf(DeviceException.class)
                    .satisfies(e -> assertThat(((DeviceException) e).kind()).isEqualTo(DeviceException.Kind.IO_ERROR));
            assertThat(device.flushes()).isZero();
            image.flush();
            assertThat(device.flushes()).isEqualTo(1);
        }
    }
}
