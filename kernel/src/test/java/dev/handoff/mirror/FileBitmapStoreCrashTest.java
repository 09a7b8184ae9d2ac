package dev.handoff.mirror;

import dev.handoff.device.DeviceException;
import dev.handoff.fs.CrashFileSystem;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

/**
 * The bitmap file across power losses (DESIGN §2.10), on a {@link CrashFileSystem}, which keeps only
 * what was synced: a created bitmap that returned is there after a power loss; a power loss at any
 * point of its creation leaves no bitmap or a whole one; one at any point of a header rewrite (an
 * open, a clean stop) leaves the old header or the new one, never a damaged file; and synced bits
 * survive.
 */
class FileBitmapStoreCrashTest {
    private static final long SIZE = 200L << 20; // 200 regions of 1 MiB: four words
    private static final int REGION = 1 << 20;

    private static BitmapHeader header() {
        return BitmapHeader.create(SIZE, SIZE, REGION, "src", "dst");
    }

    private static Path bitmap(CrashFileSystem fs) throws IOException {
        return fs.createSyncedDirectories("/images").resolve("copy.bitmap");
    }

    @Test
    void aBitmapWhoseCreationReturnedSurvivesAPowerLossWhole() throws Exception {
        CrashFileSystem fs = new CrashFileSystem();
        Path file = bitmap(fs);
        FileBitmapStore.create(file, header(), true).close();
        fs.crash();
        try (FileBitmapStore s = FileBitmapStore.open(file, header(), 0, 0)) {
            assertThat(Long.bitCount(s.load()[0]) + Long.bitCount(s.load()[3])).isEqualTo(64 + 8);
            assertThat(s.found().generation()).isEqualTo(1);
        }
    }

    @Test
    void aPowerLossAtAnyPointOfACreationLeavesNoBitmapOrAWholeOne() throws Exception {
        for (int cut = 0; ; cut++) {
            CrashFileSystem fs = new CrashFileSystem();
            Path file = bitmap(fs);
            fs.powerLossAfter(cut);
            boolean returned;
            try {
                FileBitmapStore.create(file, header(), true).close();
                returned = true;
            } catch (DeviceException e) {
                returned = false;
            }
            fs.crash();
            if (Files.exists(file)) {
                try (FileBitmapStore s = FileBitmapStore.open(file, header(), 0, 0)) {
                    assertThat(s.load()[0]).as("cut %d", cut).isEqualTo(-1L);
                } catch (BitmapRefusedException e) {
                    fail("a power loss after " + cut + " file system calls of a creation left a damaged bitmap: "
                            + e.getMessage());
                }
            } else {
                assertThat(returned).as("a creation that returned (cut %d) left no bitmap", cut).isFalse();
            }
            if (returned) {
                return; // every earlier cut was checked
            }
            if (cut > 100) {
                fail("the creation never completed");
            }
        }
    }

    @Test
    void aPowerLossAtAnyPointOfAnOpenOrAStopLeavesTheOldHeaderOrTheNew() throws Exception {
        for (boolean stop : new boolean[] {false, true}) {
            for (int cut = 0; ; cut++) {
                CrashFileSystem fs = new CrashFileSystem();
                Path file = bitmap(fs);
                FileBitmapStore.create(file, header(), false).close();
                fs.crash();
                fs.powerLossAfter(cut);
                boolean returned = true;
                try (FileBitmapStore s = FileBitmapStore.open(file, header(), 0, 0)) {
                    if (stop) {
                        s.stop(5, 6);
                    }
                } catch (DeviceException e) {
                    returned = false;
                }
                fs.crash();
                BitmapHeader h;
                try {
                    h = FileBitmapStore.inspect(file);
                } catch (BitmapRefusedException e) {
                    throw new AssertionError("a power loss after " + cut + " calls of " + (stop ? "a stop" : "an open")
                            + " left a damaged bitmap: " + e.getMessage(), e);
                }
                long newest = stop ? 3 : 2;
                assertThat(h.generation()).as("cut %d", cut).isBetween(1L, newest);
                if (returned) {
                    assertThat(h.generation()).as("the rewrite returned").isEqualTo(newest);
                    if (stop) {
                        assertThat(h.state()).isEqualTo(BitmapHeader.State.STOPPED);
                    }
                    break;
                }
                if (cut > 100) {
                    fail("the rewrite never completed");
                }
            }
        }
    }

    @Test
    void syncedBitsSurviveAPowerLoss() throws Exception {
        CrashFileSystem fs = new CrashFileSystem();
        Path file = bitmap(fs);
        try (FileBitmapStore s = FileBitmapStore.create(file, header(), false)) {
            s.write(new long[] {0b1011L, 0, 0, 1L << 7}, 0, 4);
            s.sync();
            s.write(new long[] {0, 0, 1L << 5, 0}, 2, 3); // never synced: may be lost
        }
        fs.crash();
        try (FileBitmapStore s = FileBitmapStore.open(file, header(), 0, 0)) {
            long[] bits = s.load();
            assertThat(bits[0]).isEqualTo(0b1011L);
            assertThat(bits[3]).isEqualTo(1L << 7);
        }
    }
}
