package dev.handoff.ownership;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.handoff.device.DeviceException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipalLookupService;
import java.util.Arrays;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The record's layout, its corruption checks, the sidecar's crash-safe replacement, and the owner
 * and permissions the sidecar files take from the image.
 */
@Timeout(60)
class OwnershipRecordTest {
    /** For the tests the catalog names (its launcher selects methods without parameters). */
    @TempDir
    Path temp;


    @Test
    void encodesAndDecodesEveryField() throws Exception {
        for (OwnershipRecord r : new OwnershipRecord[] {OwnershipRecord.ABSENT, new OwnershipRecord(1, "a", false),
                new OwnershipRecord(Long.MAX_VALUE, "host-b/4242 \u00e9\u6771", true),
                new OwnershipRecord(42, "x".repeat(OwnershipRecord.MAX_OWNER_ID_BYTES), false)}) {
            assertThat(OwnershipRecord.decode(r.encode(), "test")).isEqualTo(r);
        }
    }

    @Test
    void layoutMatchesTheDiagram() {
        byte[] b = new OwnershipRecord(0x0102030405060708L, "abc", true).encode();
        ByteBuffer buf = ByteBuffer.wrap(b);
        assertThat(b).hasSize(22 + 3);
        assertThat(buf.getInt(0)).isEqualTo(0x484F574E);
        assertThat(new String(b, 0, 4, StandardCharsets.US_ASCII)).isEqualTo("HOWN");
        assertThat(buf.getShort(4)).isEqualTo((short) 1);
        assertThat(buf.getShort(6)).isEqualTo((short) 1);
        assertThat(buf.getLong(8)).isEqualTo(0x0102030405060708L);
        assertThat(buf.getShort(16)).isEqualTo((short) 3);
        assertThat(new String(b, 18, 3, StandardCharsets.UTF_8)).isEqualTo("abc");
        CRC32C crc = new CRC32C();
        crc.update(b, 0, 21);
        assertThat(buf.getInt(21)).isEqualTo((int) crc.getValue());
        assertThat(ByteBuffer.wrap(new OwnershipRecord(1, "", false).encode()).getShort(6)).isZero();
    }

    @Test
    void everySingleByteCorruptionIsRefusedRatherThanReadAsEpochZero() {
        byte[] good = new OwnershipRecord(7, "owner", true).encode();
        for (int i = 0; i < good.length; i++) {
            byte[] bad = good.clone();
            bad[i] ^= 0x10;
            assertThatThrownBy(() -> OwnershipRecord.decode(bad, "test")).isInstanceOf(DeviceException.class)
                    .hasMessageContaining("corrupt");
        }
        for (int n = 0; n < good.length; n++) {
            byte[] shortened = Arrays.copyOf(good, n);
            assertThatThrownBy(() -> OwnershipRecord.decode(shortened, "test")).hasMessageContaining("corrupt");
        }
        byte[] longer = Arrays.copyOf(good, good.length + 1);
        assertThatThrownBy(() -> OwnershipRecord.decode(longer, "test")).hasMessageContaining("corrupt");
    }

    @Test
    void unknownVersionOrFlagsAreRefusedEvenWithAValidChecksum() {
        for (int[] patch : new int[][] {{4, 0, 2}, {6, 0, 2}}) {
            byte[] b = new OwnershipRecord(7, "o", true).encode();
            b[patch[0]] = (byte) patch[1];
            b[patch[0] + 1] = (byte) patch[2];
            CRC32C crc = new CRC32C();
            crc.update(b, 0, b.length - 4);
            ByteBuffer.wrap(b).putInt(b.length - 4, (int) crc.getValue());
            assertThatThrownBy(() -> OwnershipRecord.decode(b, "test")).hasMessageContaining("corrupt");
        }
    }

    @Test
    void refusesInvalidValues() {
        assertThatThrownBy(() -> new OwnershipRecord(-1, "a", true)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new OwnershipRecord(1, "\u00e9".repeat(128), true))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new HandoffToken(0, "a")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void sidecarSitsNextToTheImage(@TempDir Path dir) {
        assertThat(OwnershipRecord.sidecarOf(dir.resolve("disk.img"))).isEqualTo(dir.resolve("disk.img.owner"));
    }

    @Test
    void missingSidecarReadsAsAbsent(@TempDir Path dir) throws Exception {
        assertThat(new SidecarRecordStore(dir.resolve("x.owner")).read()).isEqualTo(OwnershipRecord.ABSENT);
    }

    @Test
    void sidecarWriteReplacesTheRecordAndLeavesNoTemporaryFile(@TempDir Path dir) throws Exception {
        SidecarRecordStore store = new SidecarRecordStore(dir.resolve("x.owner"));
        store.compareAndWrite(0, new OwnershipRecord(1, "a", false));
        store.compareAndWrite(1, new OwnershipRecord(2, "b", true));
        assertThat(store.read()).isEqualTo(new OwnershipRecord(2, "b", true));
        assertThat(Files.readAllBytes(dir.resolve("x.owner"))).isEqualTo(new OwnershipRecord(2, "b", true).encode());
        try (var files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("x.owner", "x.owner.lock");
        }
    }

    @Test
    void theRecordAndItsLockFileTakeTheImagesPermissions() throws Exception {
        Path dir = temp;
        for (String mode : new String[] {"rw-------", "rw-rw-rw-", "rwxr-x---"}) {
            Path image = Files.createFile(dir.resolve("i" + mode.hashCode()));
            Files.setPosixFilePermissions(image, PosixFilePermissions.fromString(mode));
            SidecarRecordStore store = new SidecarRecordStore(OwnershipRecord.sidecarOf(image), image);
            store.compareAndWrite(0, new OwnershipRecord(1, "a", false)); // creates the lock file, then the record
            String expected = mode.replace('x', '-');
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(OwnershipRecord.sidecarOf(image))))
                    .as("record of a %s image", mode).isEqualTo(expected);
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(
                    dir.resolve(image.getFileName() + ".owner.lock")))).as("lock file of a %s image", mode).isEqualTo(expected);
        }
    }

    @Test
    void theRecordAndItsLockFileTakeTheImagesOwner() throws Exception {
        Path dir = temp;
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "only root may give a file away");
        Path image = Files.createFile(dir.resolve("disk.img"));
        UserPrincipalLookupService users = dir.getFileSystem().getUserPrincipalLookupService();
        PosixFileAttributeView view = Files.getFileAttributeView(image, PosixFileAttributeView.class);
        view.setOwner(users.lookupPrincipalByName("4321"));
        view.setGroup(users.lookupPrincipalByGroupName("4322"));
        SidecarRecordStore store = new SidecarRecordStore(OwnershipRecord.sidecarOf(image), image);
        store.compareAndWrite(0, new OwnershipRecord(1, "a", false));
        store.compareAndWrite(1, new OwnershipRecord(2, "a", true)); // a later write replaces the file: still the image's
        for (Path p : new Path[] {OwnershipRecord.sidecarOf(image), dir.resolve("disk.img.owner.lock")}) {
            PosixFileAttributes a = Files.readAttributes(p, PosixFileAttributes.class);
            assertThat(a.owner().getName()).as(p.toString()).isEqualTo("4321");
            assertThat(a.group().getName()).as(p.toString()).isEqualTo("4322");
        }
    }

    @Test
    void aStrayTemporaryFileFromACrashIsIgnored(@TempDir Path dir) throws Exception {
        SidecarRecordStore store = new SidecarRecordStore(dir.resolve("x.owner"));
        store.compareAndWrite(0, new OwnershipRecord(3, "a", true));
        // A crash after writing the temporary file, before the rename: half a record, never renamed.
        Files.write(dir.resolve(".x.owner.999.1.tmp"), Arrays.copyOf(new OwnershipRecord(4, "b", false).encode(), 10));
        assertThat(store.read()).isEqualTo(new OwnershipRecord(3, "a", true));
        store.compareAndWrite(3, new OwnershipRecord(4, "b", false));
        assertThat(store.read()).isEqualTo(new OwnershipRecord(4, "b", false));
    }

    @Test
    void aTornSidecarIsReportedAsCorrupt(@TempDir Path dir) throws Exception {
        Path sidecar = dir.resolve("x.owner");
        Files.write(sidecar, Arrays.copyOf(new OwnershipRecord(4, "b", false).encode(), 12));
        assertThatThrownBy(() -> new SidecarRecordStore(sidecar).read()).isInstanceOf(DeviceException.class)
                .hasMessageContaining("corrupt");
    }

    @Test
    void compareAndWriteWritesOnlyOverTheExpectedEpoch(@TempDir Path dir) throws Exception {
        for (RecordStore store : new RecordStore[] {new SidecarRecordStore(dir.resolve("x.owner")), new MemoryRecordStore("m")}) {
            assertThat(store.compareAndWrite(0, new OwnershipRecord(1, "a", false))).isEqualTo(OwnershipRecord.ABSENT);
            assertThat(store.read()).isEqualTo(new OwnershipRecord(1, "a", false));
            assertThat(store.compareAndWrite(0, new OwnershipRecord(1, "b", false)))
                    .isEqualTo(new OwnershipRecord(1, "a", false));
            assertThat(store.read()).isEqualTo(new OwnershipRecord(1, "a", false));
            assertThat(store.compareAndWrite(1, new OwnershipRecord(1, "a", true))).isEqualTo(new OwnershipRecord(1, "a", false));
            assertThat(store.read()).isEqualTo(new OwnershipRecord(1, "a", true));
        }
        assertThat(dir.resolve("x.owner.lock")).exists();
    }

    @Test
    void concurrentCompareAndWritesFromOneEpochHaveExactlyOneWinner(@TempDir Path dir) throws Exception {
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(4);
        try {
            for (int round = 0; round < 20; round++) {
                for (RecordStore store : new RecordStore[] {
                        new SidecarRecordStore(dir.resolve("r" + round + ".owner")), new MemoryRecordStore("m" + round)}) {
                    java.util.concurrent.CyclicBarrier start = new java.util.concurrent.CyclicBarrier(4);
                    java.util.List<java.util.concurrent.Future<Boolean>> tries = new java.util.ArrayList<>();
                    for (int t = 0; t < 4; t++) {
                        String owner = "t" + t;
                        tries.add(pool.submit(() -> {
                            start.await();
                            return store.compareAndWrite(0, new OwnershipRecord(1, owner, false)).epoch() == 0;
                        }));
                    }
                    int winners = 0;
                    for (var f : tries) {
                        winners += f.get() ? 1 : 0;
                    }
                    assertThat(winners).isEqualTo(1);
                    assertThat(store.read().epoch()).isEqualTo(1);
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aFailedCompareAndWriteKeepsTheOldRecordAndLeavesNoTemporaryFile(@TempDir Path dir) throws Exception {
        Path sidecar = dir.resolve("x.owner");
        SidecarRecordStore store = new SidecarRecordStore(sidecar);
        store.compareAndWrite(0, new OwnershipRecord(1, "a", true));
        Path blocked = dir.resolve("y.owner");
        Files.createDirectories(blocked.resolve("not-empty"));
        // A sidecar that is a non-empty directory: neither readable nor replaceable.
        assertThatThrownBy(() -> new SidecarRecordStore(blocked).compareAndWrite(0, new OwnershipRecord(2, "b", true)))
                .isInstanceOf(DeviceException.class).hasMessageContaining("ownership record " + blocked);
        assertThat(store.read()).isEqualTo(new OwnershipRecord(1, "a", true));
        try (var files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("x.owner", "x.owner.lock", "y.owner", "y.owner.lock");
        }
    }
}
