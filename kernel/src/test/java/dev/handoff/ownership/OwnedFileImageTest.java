package dev.handoff.ownership;

import static dev.handoff.ownership.OwnedImage.State.ACTIVE;
import static dev.handoff.ownership.OwnedImage.State.INACTIVE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.FaultyDevice;
import dev.handoff.device.FileDevice;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * File images: the sidecar record, QEMU's lock bytes, one channel per image per process, and
 * close of an inactive image leaving both files untouched byte for byte.
 */
class OwnedFileImageTest {

    @TempDir
    Path dir;
    private Path image;
    private Path sidecar;

    @BeforeEach
    void createImage() throws Exception {
        image = dir.resolve("disk.img");
        sidecar = OwnershipRecord.sidecarOf(image);
        FileDevice.create(image, 1 << 20).close();
    }

    @Test
    void openingInactiveCreatesNoSidecarAndWritesNothing() throws Exception {
        byte[] before = Files.readAllBytes(image);
        try (OwnedImage handle = OwnedImage.openFile(image, "dst", INACTIVE)) {
            assertThat(handle.state()).isEqualTo(INACTIVE);
            assertThat(handle.readRecord()).isEqualTo(OwnershipRecord.ABSENT);
        }
        assertThat(sidecar).doesNotExist();
        assertThat(Files.readAllBytes(image)).isEqualTo(before);
    }

    @Test
    void activationWritesTheSidecarAndCloseMarksItClean() throws Exception {
        try (OwnedImage handle = OwnedImage.openFile(image, "src", ACTIVE)) {
            handle.write(0, SharedImage.bytes(4096, 0x11));
            assertThat(new SidecarRecordStore(sidecar).read()).isEqualTo(new OwnershipRecord(1, "src", false));
        }
        assertThat(new SidecarRecordStore(sidecar).read()).isEqualTo(new OwnershipRecord(1, "src", true));
        assertThat(Files.readAllBytes(image)).startsWith(SharedImage.filled(4096, 0x11));
        try (OwnedImage again = OwnedImage.openFile(image, "src", ACTIVE)) {
            assertThat(again.epoch()).isEqualTo(2);
        }
    }

    @Test
    void closeOfAnInactiveFileImageLeavesImageAndSidecarUnchangedByteForByte() throws Exception {
        try (OwnedImage handle = OwnedImage.openFile(image, "src", ACTIVE)) {
            handle.write(0, SharedImage.bytes(4096, 0x22));
        }
        byte[] imageBefore = Files.readAllBytes(image);
        byte[] sidecarBefore = Files.readAllBytes(sidecar);
        FileTime imageTime = Files.getLastModifiedTime(image);
        FileTime sidecarTime = Files.getLastModifiedTime(sidecar);
        Thread.sleep(20); // a write would move the modification time

        EventLog log = new EventLog();
        ImageFiles.Lease lease = ImageFiles.open(image);
        FaultyDevice tripwire = new FaultyDevice(lease.device());
        // Any write or flush that reached the device would fail loudly as well as being logged.
        tripwire.inject(FaultyDevice.Fault.error(DeviceException.Kind.IO_ERROR).on(FaultyDevice.Op.WRITE,
                FaultyDevice.Op.WRITE_ZEROES, FaultyDevice.Op.DISCARD, FaultyDevice.Op.FLUSH));
        RecordingDevice device = new RecordingDevice(tripwire, log);
        RecordingRecordStore records = new RecordingRecordStore(new SidecarRecordStore(sidecar), log);
        OwnedImage handle = ImageOpener.assemble(device, lease, records, new QemuFileLock(lease.device()), "dst",
                image.toString(), INACTIVE, ImageTuning.DEFAULT);
        SharedImage.read(handle, 0, 4096);
        assertThatThrownBy(() -> handle.write(0, SharedImage.bytes(1, 1))).isInstanceOf(ImageInactiveException.class);
        assertThatThrownBy(handle::flush).isInstanceOf(ImageInactiveException.class);
        handle.close();

        assertThat(device.mutations()).isZero();
        assertThat(records.writes()).isZero();
        assertThat(tripwire.injectedCount()).isZero();
        assertThat(Files.readAllBytes(image)).isEqualTo(imageBefore);
        assertThat(Files.readAllBytes(sidecar)).isEqualTo(sidecarBefore);
        assertThat(Files.getLastModifiedTime(image)).isEqualTo(imageTime);
        assertThat(Files.getLastModifiedTime(sidecar)).isEqualTo(sidecarTime);
        try (var files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString()))
                    .containsExactlyInAnyOrder("disk.img", "disk.img.owner", "disk.img.owner.lock");
        }
    }

    @Test
    void anActiveHandleHoldsQemusWriteBytesAndReleasesThemWhenInactive() throws Exception {
        assumeTrue(ProcLocks.available(), "needs /proc/locks (Linux)");
        try (OwnedImage handle = OwnedImage.openFile(image, "src", ACTIVE)) {
            assertThat(ProcLocks.ofThisProcess(image)).containsExactlyInAnyOrder("READ 101-101", "WRITE 201-201");
            handle.inactivate();
            assertThat(ProcLocks.ofThisProcess(image)).isEmpty();
            handle.activate();
            assertThat(ProcLocks.ofThisProcess(image)).containsExactlyInAnyOrder("READ 101-101", "WRITE 201-201");
        }
        assertThat(ProcLocks.ofThisProcess(image)).isEmpty();
    }

    @Test
    void aSecondHandleInThisProcessIsRefusedWhileTheFirstIsActive() throws Exception {
        try (OwnedImage first = OwnedImage.openFile(image, "a", ACTIVE);
                OwnedImage second = OwnedImage.openFile(image, "b", INACTIVE)) {
            assertThatThrownBy(second::activate).isInstanceOf(ImageInactiveException.class)
                    .hasMessageContaining("locked by another handle in this process");
            assertThat(second.state()).isEqualTo(INACTIVE);
            first.inactivate();
            second.activate();
            assertThat(second.epoch()).isEqualTo(2);
            assertThatThrownBy(first::activate).isInstanceOf(ImageInactiveException.class);
        }
    }

    @Test
    void handlesOnOneFileShareOneChannelSoClosingOneKeepsTheOthersLock() throws Exception {
        assumeTrue(ProcLocks.available(), "needs /proc/locks (Linux)");
        int openBefore = ImageFiles.openCount();
        OwnedImage active = OwnedImage.openFile(image, "a", ACTIVE);
        OwnedImage inactive = OwnedImage.openFile(dir.resolve(".").resolve("disk.img"), "b", INACTIVE);
        assertThat(ImageFiles.openCount()).isEqualTo(openBefore + 1);
        inactive.close(); // with a channel of its own, this would drop the active handle's locks
        assertThat(ProcLocks.ofThisProcess(image)).containsExactlyInAnyOrder("READ 101-101", "WRITE 201-201");
        active.write(0, SharedImage.bytes(512, 3));
        active.flush();
        active.close();
        assertThat(ImageFiles.openCount()).isEqualTo(openBefore);
        assertThat(ProcLocks.ofThisProcess(image)).isEmpty();
    }

    @Test
    void aCorruptSidecarStopsActivationInsteadOfRestartingEpochs() throws Exception {
        Files.write(sidecar, new byte[] {1, 2, 3});
        int openBefore = ImageFiles.openCount();
        try (OwnedImage handle = OwnedImage.openFile(image, "a", INACTIVE)) {
            throw new AssertionError("opened despite a corrupt record: " + handle);
        } catch (DeviceException e) {
            assertThat(e).hasMessageContaining("corrupt");
        }
        assertThatThrownBy(() -> OwnedImage.openFile(image, "a", ACTIVE)).hasMessageContaining("corrupt");
        assertThat(ImageFiles.openCount()).isEqualTo(openBefore);
        assertThat(Files.readAllBytes(sidecar)).containsExactly(1, 2, 3);
    }

    @Test
    void openingAMissingImageFails() {
        assertThatThrownBy(() -> OwnedImage.openFile(dir.resolve("missing.img"), "a", INACTIVE))
                .isInstanceOf(DeviceException.class).hasMessageContaining("no such image");
    }

    @Test
    void memoryImagesOpenedOnTheSameDeviceShareRecordAndLock() throws Exception {
        BlockDevice disk = new dev.handoff.device.MemoryDevice(1 << 16);
        try (OwnedImage a = OwnedImage.openMemory(disk, "a", ACTIVE); OwnedImage b = OwnedImage.openMemory(disk, "b", INACTIVE)) {
            assertThatThrownBy(b::activate).isInstanceOf(ImageInactiveException.class);
            b.acceptHandoff(a.prepareHandoff());
            assertThat(b.readRecord()).isEqualTo(new OwnershipRecord(2, "b", false));
        }
        disk.write(0, SharedImage.bytes(1, 1)); // the caller's device stays open
    }
}
