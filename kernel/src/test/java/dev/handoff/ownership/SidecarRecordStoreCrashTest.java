package dev.handoff.ownership;

import dev.handoff.device.DeviceException;
import dev.handoff.fs.CrashFileSystem;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

/**
 * The ownership record survives power loss (DESIGN §4.3, {@link RecordStore}'s contract: "after a
 * crash the record is one that some write wrote completely"), on a {@link CrashFileSystem}, which
 * keeps only what was synced: a record write that returned is durable, and a power loss at any
 * point of a write leaves the old record or the new one, never a torn, empty or missing one.
 *
 * <p>Broken variants caught (mutants/): record-write-without-fsync (the temporary file is renamed
 * into place without being forced: the rename survives, its content does not) and
 * record-rename-without-directory-fsync (the directory is not forced after the rename: the old
 * record comes back).
 */
class SidecarRecordStoreCrashTest {

    private static OwnershipRecord record(long epoch) {
        return new OwnershipRecord(epoch, "owner-" + epoch, epoch % 2 == 0);
    }

    @Test
    void aRecordWriteThatReturnedSurvivesAPowerLoss() throws Exception {
        CrashFileSystem fs = new CrashFileSystem();
        Path sidecar = fs.createSyncedDirectories("/images").resolve("disk.img.owner");
        for (long epoch = 1; epoch <= 4; epoch++) {
            OwnershipRecord found = new SidecarRecordStore(sidecar).compareAndWrite(epoch - 1, record(epoch));
            assertThat(found.epoch()).isEqualTo(epoch - 1);
            fs.crash();
            OwnershipRecord after;
            try {
                after = new SidecarRecordStore(sidecar).read();
            } catch (DeviceException e) {
                throw new AssertionError("after a power loss the record written for epoch " + epoch
                        + " (its write had returned) is unreadable: " + e.getMessage(), e);
            }
            assertThat(after).as("the record after a power loss; the write for epoch %d had returned", epoch)
                    .isEqualTo(record(epoch));
        }
    }

    @Test
    void aPowerLossAtAnyPointOfARecordWriteLeavesTheOldRecordOrTheNew() throws Exception {
        for (int cut = 0; ; cut++) {
            CrashFileSystem fs = new CrashFileSystem();
            Path sidecar = fs.createSyncedDirectories("/images").resolve("disk.img.owner");
            new SidecarRecordStore(sidecar).compareAndWrite(0, record(1));
            fs.crash(); // the first record is durable (the test above checks that it must be)
            fs.powerLossAfter(cut);
            boolean returned;
            try {
                new SidecarRecordStore(sidecar).compareAndWrite(1, record(2));
                returned = true;
            } catch (DeviceException e) {
                assertThat(e).hasRootCauseInstanceOf(IOException.class);
                returned = false;
            }
            fs.crash();
            OwnershipRecord after;
            try {
                after = new SidecarRecordStore(sidecar).read();
            } catch (DeviceException e) {
                throw new AssertionError("a power loss after " + cut + " file system calls of a record write left"
                        + " an unreadable record: " + e.getMessage(), e);
            }
            if (returned) {
                assertThat(after).as("the write returned before the power loss").isEqualTo(record(2));
                return; // every earlier cut was checked
            }
            if (!after.equals(record(1)) && !after.equals(record(2))) {
                fail("a power loss after " + cut + " file system calls of a record write left " + after
                        + ", neither the old record nor the new");
            }
            if (cut > 100) {
                fail("the record write never completed");
            }
        }
    }
}
