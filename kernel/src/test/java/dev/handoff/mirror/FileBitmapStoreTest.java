package dev.handoff.mirror;

import dev.handoff.device.DeviceException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The bitmap file (DESIGN §2.10): what is written comes back, a header rewrite never tears the one
 * in force, and a file that does not belong is refused with its reason and left as it was.
 */
class FileBitmapStoreTest {
    private static final long SIZE = 10L << 20; // 10 MiB: 10 regions of 1 MiB
    private static final int REGION = 1 << 20;

    @TempDir
    Path dir;

    private static BitmapHeader header() {
        return BitmapHeader.create(SIZE, SIZE, REGION, "src:1", "dst:2");
    }

    @Test
    void aNewBitmapForAFullCopyHasEveryRegionAndNoBitPastTheLast() throws Exception {
        Path file = dir.resolve("b.bitmap");
        try (FileBitmapStore s = FileBitmapStore.create(file, header(), true)) {
            assertThat(s.load()).containsExactly(0x3FFL);
            assertThat(s.header().generation()).isEqualTo(1);
        }
        try (FileBitmapStore s = FileBitmapStore.create(file, header(), false)) {
            assertThat(s.load()).containsExactly(0L);
        }
        assertThat(Files.size(file)).isEqualTo(FileBitmapStore.BITS_OFFSET + 8);
    }

    @Test
    void writtenAndSyncedBitsComeBackAtTheNextOpenWithTheNextGeneration() throws Exception {
        Path file = dir.resolve("b.bitmap");
        try (FileBitmapStore s = FileBitmapStore.create(file, header(), false)) {
            s.write(new long[] {0b1010_0001L}, 0, 1);
            s.sync();
        }
        try (FileBitmapStore s = FileBitmapStore.open(file, header(), 0, 0)) {
            assertThat(s.load()).containsExactly(0b1010_0001L);
            assertThat(s.header().generation()).isEqualTo(2);
            assertThat(s.header().state()).isEqualTo(BitmapHeader.State.ACTIVE);
        }
        assertThat(FileBitmapStore.inspect(file).generation()).isEqualTo(2);
    }

    @Test
    void aCleanStopRecordsTheStampsAndAChangedImageMakesTheBitmapStale() throws Exception {
        Path file = dir.resolve("b.bitmap");
        try (FileBitmapStore s = FileBitmapStore.create(file, header(), true)) {
            s.stop(111, 222);
        }
        BitmapHeader stopped = FileBitmapStore.inspect(file);
        assertThat(stopped.state()).isEqualTo(BitmapHeader.State.STOPPED);
        assertThat(stopped.sourceStamp()).isEqualTo(111);
        assertThat(stopped.targetStamp()).isEqualTo(222);
        byte[] before = Files.readAllBytes(file);
        assertRefused(() -> FileBitmapStore.open(file, header(), 112, 222), BitmapRefusedException.Reason.STALE,
                "the source changed");
        assertRefused(() -> FileBitmapStore.open(file, header(), 111, 223), BitmapRefusedException.Reason.STALE,
                "the target changed");
        assertThat(Files.readAllBytes(file)).as("a refusal changes nothing").isEqualTo(before);
        try (FileBitmapStore s = FileBitmapStore.open(file, header(), 111, 222)) {
            assertThat(s.load()).containsExactly(0x3FFL);
        }
    }

    @Test
    void aBitmapOfOtherImagesIsRefusedAsForeignAndLeftAsItWas() throws Exception {
        Path file = dir.resolve("b.bitmap");
        FileBitmapStore.create(file, header(), true).close();
        byte[] before = Files.readAllBytes(file);
        assertRefused(() -> FileBitmapStore.open(file, BitmapHeader.create(SIZE, SIZE, REGION, "src:9", "dst:2"), 0, 0),
                BitmapRefusedException.Reason.FOREIGN, "another source");
        assertRefused(() -> FileBitmapStore.open(file, BitmapHeader.create(SIZE, SIZE, REGION, "src:1", "dst:9"), 0, 0),
                BitmapRefusedException.Reason.FOREIGN, "another target");
        assertRefused(() -> FileBitmapStore.open(file, BitmapHeader.create(SIZE * 2, SIZE * 2, REGION, "src:1", "dst:2"),
                0, 0), BitmapRefusedException.Reason.FOREIGN, "another source");
        assertThat(Files.readAllBytes(file)).isEqualTo(before);
    }

    @Test
    void aBitmapOpenElsewhereIsRefusedAsLocked() throws Exception {
        Path file = dir.resolve("b.bitmap");
        try (FileBitmapStore held = FileBitmapStore.create(file, header(), true)) {
            byte[] before = Files.readAllBytes(file);
            assertRefused(() -> FileBitmapStore.open(file, header(), 0, 0), BitmapRefusedException.Reason.LOCKED,
                    "in use");
            assertRefused(() -> FileBitmapStore.create(file, header(), false), BitmapRefusedException.Reason.LOCKED,
                    "in use");
            assertThat(Files.readAllBytes(file)).isEqualTo(before);
            assertThat(held.load()).containsExactly(0x3FFL);
        }
        assertThat(dir.toFile().list()).containsExactly("b.bitmap"); // no temporary file left behind
    }

    @Test
    void aDamagedFileIsRefusedAsCorruptAndLeftAsItWas() throws Exception {
        Path file = dir.resolve("b.bitmap");
        Files.write(file, "not a bitmap at all".getBytes());
        assertRefused(() -> FileBitmapStore.open(file, header(), 0, 0), BitmapRefusedException.Reason.CORRUPT,
                "not a write-intent bitmap");
        assertThat(Files.readString(file)).isEqualTo("not a bitmap at all");

        FileBitmapStore.create(file, header(), true).close();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(FileBitmapStore.BITS_OFFSET + 4);
        }
        assertRefused(() -> FileBitmapStore.open(file, header(), 0, 0), BitmapRefusedException.Reason.CORRUPT,
                "damaged");

        FileBitmapStore.create(file, header(), true).close();
        flip(file, BitmapHeader.SLOT_BYTES + 40); // the one valid slot (generation 1)
        assertRefused(() -> FileBitmapStore.open(file, header(), 0, 0), BitmapRefusedException.Reason.CORRUPT,
                "header is damaged");

        FileBitmapStore.create(file, header(), false).close();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1L << 10), FileBitmapStore.BITS_OFFSET);
        }
        assertRefused(() -> FileBitmapStore.open(file, header(), 0, 0), BitmapRefusedException.Reason.CORRUPT,
                "past the last region");
    }

    @Test
    void aBitmapOfANewerFormatIsRefusedByVersion() throws Exception {
        Path file = dir.resolve("b.bitmap");
        FileBitmapStore.create(file, header(), true).close();
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer slot = ByteBuffer.wrap(bytes, BitmapHeader.SLOT_BYTES, BitmapHeader.SLOT_BYTES).slice()
                .order(ByteOrder.LITTLE_ENDIAN);
        slot.putInt(8, BitmapHeader.VERSION + 1);
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(bytes, BitmapHeader.SLOT_BYTES, BitmapHeader.SLOT_BYTES - 4);
        slot.putInt(BitmapHeader.SLOT_BYTES - 4, (int) crc.getValue());
        Files.write(file, bytes);
        assertRefused(() -> FileBitmapStore.open(file, header(), 0, 0), BitmapRefusedException.Reason.UNSUPPORTED_VERSION,
                "newer Handoff");
    }

    @Test
    void aTornHeaderRewriteLeavesTheHeaderInForce() throws Exception {
        Path file = dir.resolve("b.bitmap");
        FileBitmapStore.create(file, header(), true).close();  // generation 1 in slot 1
        FileBitmapStore.open(file, header(), 0, 0).close();     // generation 2 in slot 0
        flip(file, 100);                                         // slot 0 torn
        try (FileBitmapStore s = FileBitmapStore.open(file, header(), 0, 0)) {
            assertThat(s.header().generation()).as("generation 1 stays in force, and the next is 2").isEqualTo(2);
            assertThat(s.load()).containsExactly(0x3FFL);
        }
    }

    @Test
    void aRegionSizeThatIsNoPowerOfTwoOrAnIdentityTooLongIsRejected() {
        assertThatThrownBy(() -> BitmapHeader.create(SIZE, SIZE, 3000, "a", "b"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("power of two");
        assertThatThrownBy(() -> BitmapHeader.create(SIZE, SIZE, REGION, "x".repeat(600), "b"))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("longer than 512 bytes");
    }

    private static void flip(Path file, long at) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            ch.read(b, at);
            b.put(0, (byte) (b.get(0) ^ 0x5A));
            b.rewind();
            ch.write(b, at);
        }
    }

    interface Opening {
        FileBitmapStore open() throws Exception;
    }

    private static void assertRefused(Opening opening, BitmapRefusedException.Reason reason, String message) {
        assertThatThrownBy(() -> opening.open().close())
                .isInstanceOfSatisfying(BitmapRefusedException.class, e -> assertThat(e.reason()).isEqualTo(reason))
                .hasMessageContaining(message);
    }

    @Test
    void aMissingFileIsAnIoErrorNamingIt() {
        assertThatThrownBy(() -> FileBitmapStore.open(dir.resolve("none"), header(), 0, 0))
                .isInstanceOf(DeviceException.class).hasMessageContaining("no write-intent bitmap at");
    }
}
