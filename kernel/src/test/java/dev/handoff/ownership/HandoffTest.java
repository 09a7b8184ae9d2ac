package dev.handoff.ownership;

import static dev.handoff.ownership.OwnedImage.State.ACTIVE;
import static dev.handoff.ownership.OwnedImage.State.INACTIVE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.handoff.device.DeviceException;
import dev.handoff.device.FaultyDevice;
import dev.handoff.device.FileDevice;
import dev.handoff.mirror.CrashableDevice;
import java.nio.file.Path;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The migration sequence: destination opens inactive, source prepares (drain, flush, inactivate),
 * destination accepts, or source aborts; each failure point; exactly one of accept and abort wins.
 */
class HandoffTest {

    private final ExecutorService pool = Executors.newFixedThreadPool(2);

    @AfterEach
    void stopPool() {
        pool.shutdownNow();
    }

    @Test
    void handoffMovesOwnershipAndTheDestinationSeesEveryAcknowledgedWriteAfterACrash() throws Exception {
        CrashableDevice disk = new CrashableDevice(SharedImage.SIZE);
        SharedImage shared = new SharedImage(disk);
        OwnedImage source = shared.open("src", ACTIVE);
        OwnedImage destination = shared.open("dst", INACTIVE);
        source.write(0, SharedImage.bytes(4096, 0x5A));
        source.write(8192, SharedImage.bytes(4096, 0x6B));

        HandoffToken token = source.prepareHandoff();
        assertThat(token).isEqualTo(new HandoffToken(1, "src"));
        assertThat(source.state()).isEqualTo(INACTIVE);
        assertThat(shared.record()).isEqualTo(new OwnershipRecord(1, "src", true));
        disk.crash(); // whatever was not flushed is gone

        destination.acceptHandoff(token);
        assertThat(destination.state()).isEqualTo(ACTIVE);
        assertThat(destination.epoch()).isEqualTo(token.epoch() + 1);
        assertThat(shared.record()).isEqualTo(new OwnershipRecord(2, "dst", false));
        assertThat(SharedImage.read(destination, 0, 4096)).isEqualTo(SharedImage.filled(4096, 0x5A));
        assertThat(SharedImage.read(destination, 8192, 4096)).isEqualTo(SharedImage.filled(4096, 0x6B));
        assertThatThrownBy(() -> source.write(0, SharedImage.bytes(1, 1))).isInstanceOf(ImageInactiveException.class);
        source.close();
        destination.close();
        assertThat(shared.record()).isEqualTo(new OwnershipRecord(2, "dst", true));
    }

    @Test
    void prepareAcceptAndAbortAreIdempotent() throws Exception {
        SharedImage shared = new SharedImage();
        try (OwnedImage source = shared.open("src", ACTIVE); OwnedImage destination = shared.open("dst", INACTIVE)) {
            HandoffToken token = source.prepareHandoff();
            assertThat(source.prepareHandoff()).isEqualTo(token);
            long writes = shared.records.writes();
            destination.acceptHandoff(token);
            destination.acceptHandoff(token);
            assertThat(shared.records.writes()).isEqualTo(writes + 1);
            assertThat(destination.epoch()).isEqualTo(2);
            HandoffToken back = destination.prepareHandoff();
            source.acceptHandoff(back);
            HandoffToken again = source.prepareHandoff();
            source.abortHandoff();
            source.abortHandoff();
            assertThat(source.epoch()).isEqualTo(again.epoch() + 1);
            assertThat(shared.record()).isEqualTo(new OwnershipRecord(4, "src", false));
        }
    }

    @Test
    void roundTripsKeepEpochsIncreasing() throws Exception {
        SharedImage shared = new SharedImage();
        try (OwnedImage a = shared.open("a", ACTIVE); OwnedImage b = shared.open("b", INACTIVE)) {
            long last = a.epoch();
            for (int i = 0; i < 10; i++) {
                OwnedImage from = i % 2 == 0 ? a : b;
                OwnedImage to = i % 2 == 0 ? b : a;
                from.write(i * 512L, SharedImage.bytes(512, i + 1));
                to.acceptHandoff(from.prepareHandoff());
                assertThat(to.epoch()).isEqualTo(last + 1);
                last = to.epoch();
                for (int j = 0; j <= i; j++) {
                    assertThat(SharedImage.read(to, j * 512L, 512)).isEqualTo(SharedImage.filled(512, j + 1));
                }
            }
        }
    }

    // ---- failure points ----

    @Test
    void acceptBeforePrepareIsRefusedByTheLock() throws Exception {
        SharedImage shared = new SharedImage();
        try (OwnedImage source = shared.open("src", ACTIVE); OwnedImage destination = shared.open("dst", INACTIVE)) {
            assertThatThrownBy(() -> destination.acceptHandoff(new HandoffToken(1, "src")))
                    .isInstanceOf(ImageInactiveException.class);
            assertThat(destination.state()).isEqualTo(INACTIVE);
            assertThat(source.state()).isEqualTo(ACTIVE);
        }
    }

    @Test
    void prepareFailingAtTheFlushLeavesTheSourceActiveAndGivesNoToken() throws Exception {
        SharedImage shared = new SharedImage();
        FaultyDevice[] faulty = new FaultyDevice[1];
        OwnedImage source = shared.open("src", ACTIVE, d -> faulty[0] = new FaultyDevice(d), ImageTuning.DEFAULT);
        OwnedImage destination = shared.open("dst", INACTIVE);
        faulty[0].inject(FaultyDevice.Fault.error(DeviceException.Kind.IO_ERROR).on(FaultyDevice.Op.FLUSH).times(1));
        assertThatThrownBy(source::prepareHandoff).isInstanceOf(DeviceException.class).hasMessageContaining("remains ACTIVE");
        assertThat(source.state()).isEqualTo(ACTIVE);
        assertThatThrownBy(() -> destination.acceptHandoff(new HandoffToken(1, "src")))
                .isInstanceOf(ImageInactiveException.class);
        assertThatThrownBy(source::abortHandoff).isInstanceOf(IllegalStateException.class);
        HandoffToken token = source.prepareHandoff(); // retry
        destination.acceptHandoff(token);
        source.close();
        destination.close();
    }

    @Test
    void prepareFailingAtTheRecordWriteLeavesTheSourceActive() throws Exception {
        SharedImage shared = new SharedImage();
        try (OwnedImage source = shared.open("src", ACTIVE); OwnedImage destination = shared.open("dst", INACTIVE)) {
            shared.records.failNextWrites(1);
            assertThatThrownBy(source::prepareHandoff).isInstanceOf(DeviceException.class).hasMessageContaining("remains ACTIVE");
            assertThat(source.state()).isEqualTo(ACTIVE);
            assertThat(shared.record()).isEqualTo(new OwnershipRecord(1, "src", false));
            assertThatThrownBy(() -> destination.acceptHandoff(new HandoffToken(1, "src")))
                    .isInstanceOf(ImageInactiveException.class);
        }
    }

    @Test
    void acceptFailingAtTheRecordReadLeavesTheDestinationInactiveAndTheSourceMayAbort() throws Exception {
        SharedImage shared = new SharedImage();
        try (OwnedImage source = shared.open("src", ACTIVE); OwnedImage destination = shared.open("dst", INACTIVE)) {
            HandoffToken token = source.prepareHandoff();
            shared.records.failNextReads(1);
            assertThatThrownBy(() -> destination.acceptHandoff(token)).isInstanceOf(DeviceException.class)
                    .hasMessageContaining("remains INACTIVE and its lock is released");
            assertThat(destination.state()).isEqualTo(INACTIVE);
            source.abortHandoff();
            assertThat(source.state()).isEqualTo(ACTIVE);
            assertThat(source.epoch()).isEqualTo(2);
            assertThatThrownBy(() -> destination.acceptHandoff(token)).isInstanceOf(ImageInactiveException.class);
        }
    }

    @Test
    void acceptFailingAtTheRecordWriteLeavesTheDestinationInactiveAndARetrySucceeds() throws Exception {
        SharedImage shared = new SharedImage();
        try (OwnedImage source = shared.open("src", ACTIVE); OwnedImage destination = shared.open("dst", INACTIVE)) {
            HandoffToken token = source.prepareHandoff();
            shared.records.failNextWrites(1);
            assertThatThrownBy(() -> destination.acceptHandoff(token)).isInstanceOf(DeviceException.class)
                    .hasMessageContaining("remains INACTIVE");
            assertThat(shared.record()).isEqualTo(new OwnershipRecord(1, "src", true));
            destination.acceptHandoff(token);
            assertThat(destination.epoch()).isEqualTo(2);
            assertThatThrownBy(source::abortHandoff).isInstanceOf(ImageInactiveException.class);
        }
    }

    @Test
    void abortBeforeAcceptWinsAndAStaleTokenIsFencedForever() throws Exception {
        SharedImage shared = new SharedImage();
        try (OwnedImage source = shared.open("src", ACTIVE); OwnedImage destination = shared.open("dst", INACTIVE)) {
            HandoffToken token = source.prepareHandoff();
            source.abortHandoff();
            assertThat(source.epoch()).isEqualTo(2);
            assertThatThrownBy(() -> destination.acceptHandoff(token)).isInstanceOf(ImageInactiveException.class);
            source.inactivate(); // even once the lock is free, the token is stale
            assertThatThrownBy(() -> destination.acceptHandoff(token)).isInstanceOf(ImageFencedException.class)
                    .hasMessageContaining("stale");
            assertThat(destination.state()).isEqualTo(INACTIVE);
        }
    }

    @Test
    void abortAfterAcceptIsRefusedByTheLockAndLaterByTheEpoch() throws Exception {
        SharedImage shared = new SharedImage();
        try (OwnedImage source = shared.open("src", ACTIVE); OwnedImage destination = shared.open("dst", INACTIVE)) {
            HandoffToken token = source.prepareHandoff();
            destination.acceptHandoff(token);
            assertThatThrownBy(source::abortHandoff).isInstanceOf(ImageInactiveException.class);
            destination.inactivate();
            assertThatThrownBy(source::abortHandoff).isInstanceOf(ImageFencedException.class);
            assertThat(source.state()).isEqualTo(INACTIVE);
            assertThat(shared.record()).isEqualTo(new OwnershipRecord(2, "dst", true));
        }
    }

    @Test
    void aForgedTokenIsRefused() throws Exception {
        SharedImage shared = new SharedImage();
        try (OwnedImage source = shared.open("src", ACTIVE); OwnedImage destination = shared.open("dst", INACTIVE)) {
            source.prepareHandoff();
            assertThatThrownBy(() -> destination.acceptHandoff(new HandoffToken(1, "someone-else")))
                    .isInstanceOf(ImageFencedException.class);
            assertThatThrownBy(() -> destination.acceptHandoff(new HandoffToken(3, "src")))
                    .isInstanceOf(ImageFencedException.class);
            assertThat(shared.record()).isEqualTo(new OwnershipRecord(1, "src", true));
        }
    }

    @Test
    void aTokenFromASourceThatDiedActiveIsRefused() throws Exception {
        SharedImage shared = new SharedImage();
        try (OwnedImage destination = shared.open("dst", INACTIVE)) {
            shared.overwrite(new OwnershipRecord(1, "src", false)); // died while active: never clean
            assertThatThrownBy(() -> destination.acceptHandoff(new HandoffToken(1, "src")))
                    .isInstanceOf(ImageFencedException.class).hasMessageContaining("unclean");
            destination.activate(); // management may still take over explicitly
            assertThat(destination.epoch()).isEqualTo(2);
        }
    }

    // ---- the race ----

    @Test
    void acceptAndAbortRacingExactlyOneWinsInMemory() throws Exception {
        for (int round = 0; round < 300; round++) {
            SharedImage shared = new SharedImage();
            try (OwnedImage source = shared.open("src", ACTIVE); OwnedImage destination = shared.open("dst", INACTIVE)) {
                race(source, destination, shared.records);
            }
        }
    }

    @Test
    void acceptAndAbortRacingExactlyOneWinsOnAFileWithQemuLocks(@TempDir Path dir) throws Exception {
        for (int round = 0; round < 25; round++) {
            Path image = dir.resolve("race-" + round + ".img");
            FileDevice.create(image, 1 << 16).close();
            try (OwnedImage source = OwnedImage.openFile(image, "src", ACTIVE);
                    OwnedImage destination = OwnedImage.openFile(image, "dst", INACTIVE)) {
                race(source, destination, new SidecarRecordStore(OwnershipRecord.sidecarOf(image)));
            }
        }
    }

    @Test
    void acceptAndAbortRacingExactlyOneWinsByTheEpochCompareEvenWhenTheLockFails() throws Exception {
        for (int round = 0; round < 300; round++) {
            SharedImage shared = new SharedImage();
            try (OwnedImage source = shared.openWithFailedLock("src", ACTIVE);
                    OwnedImage destination = shared.openWithFailedLock("dst", INACTIVE)) {
                race(source, destination, shared.records);
            }
        }
    }

    @Test
    void acceptAndAbortRacingOnASidecarExactlyOneWinsEvenWhenTheLockFails(@TempDir Path dir) throws Exception {
        for (int round = 0; round < 25; round++) {
            RecordStore records = new SidecarRecordStore(dir.resolve("race-" + round + ".img.owner"));
            dev.handoff.device.MemoryDevice disk = new dev.handoff.device.MemoryDevice(1 << 16);
            try (OwnedImage source = ImageOpener.assemble(disk, () -> { }, records, new SharedImage.GrantingLock(), "src",
                    "race-" + round, ACTIVE, ImageTuning.DEFAULT);
                    OwnedImage destination = ImageOpener.assemble(disk, () -> { }, records, new SharedImage.GrantingLock(),
                            "dst", "race-" + round, INACTIVE, ImageTuning.DEFAULT)) {
                race(source, destination, records);
            }
        }
    }

    private void race(OwnedImage source, OwnedImage destination, RecordStore records) throws Exception {
        source.write(0, SharedImage.bytes(512, 1));
        HandoffToken token = source.prepareHandoff();
        CyclicBarrier start = new CyclicBarrier(2);
        Future<Throwable> accept = pool.submit(() -> attempt(start, () -> destination.acceptHandoff(token)));
        Future<Throwable> abort = pool.submit(() -> attempt(start, source::abortHandoff));
        Throwable acceptFailure = accept.get(10, TimeUnit.SECONDS);
        Throwable abortFailure = abort.get(10, TimeUnit.SECONDS);
        assertThat(acceptFailure == null ^ abortFailure == null)
                .as("exactly one wins: accept failed with %s, abort failed with %s", acceptFailure, abortFailure)
                .isTrue();
        Throwable loserFailure = acceptFailure != null ? acceptFailure : abortFailure;
        assertThat(loserFailure).isInstanceOfAny(ImageInactiveException.class, ImageFencedException.class);
        OwnedImage winner = acceptFailure == null ? destination : source;
        OwnedImage loser = acceptFailure == null ? source : destination;
        assertThat(winner.state()).isEqualTo(ACTIVE);
        assertThat(loser.state()).isEqualTo(INACTIVE);
        assertThat(winner.epoch()).isEqualTo(token.epoch() + 1);
        assertThat(records.read()).isEqualTo(new OwnershipRecord(token.epoch() + 1, winner.ownerId(), false));
        assertThat(SharedImage.read(winner, 0, 512)).isEqualTo(SharedImage.filled(512, 1));
    }

    private static Throwable attempt(CyclicBarrier start, OwnedImageStateTest.ThrowingRunnable action) throws Exception {
        start.await();
        try {
            action.run();
            return null;
        } catch (DeviceException e) {
            return e;
        }
    }
}
