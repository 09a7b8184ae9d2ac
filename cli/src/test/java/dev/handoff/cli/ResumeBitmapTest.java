package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.handoff.mirror.BitmapHeader;
import dev.handoff.mirror.FileBitmapStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --bitmap FILE}: created for a full copy when absent, resumed when present, removed once the
 * copy is complete and kept after a stop; and each bitmap that does not belong refused with its exit
 * code, one line naming the way out (--restart), and no file changed.
 */
class ResumeBitmapTest {
    private static final long SIZE = 4L << 20;
    private static final int GRANULARITY = 64 << 10;

    @TempDir
    Path dir;
    Path src;
    Path dst;
    Path bitmap;

    @BeforeEach
    void images() throws Exception {
        src = dir.resolve("src.img");
        dst = dir.resolve("dst.img");
        bitmap = dir.resolve("copy.bitmap");
        Images.randomImage(src, SIZE, 1);
        Images.randomImage(dst, SIZE, 2);
    }

    private ResumeBitmap open(boolean restart) throws CliException {
        return ResumeBitmap.open(bitmap, restart, src, SIZE, dst, null, SIZE, GRANULARITY, true);
    }

    @Test
    void anAbsentBitmapIsCreatedForAFullCopyAndAPresentOneResumes() throws Exception {
        try (ResumeBitmap b = open(false)) {
            assertThat(b.resumed()).isFalse();
            assertThat(b.describe(SIZE)).contains("new, regions of 1 MiB");
        }
        try (ResumeBitmap b = open(false)) {
            assertThat(b.resumed()).isTrue();
            assertThat(b.copyAgain()).isEqualTo(SIZE);
            assertThat(b.describe(SIZE)).contains("resuming (generation 2, after a crash): 4 MiB of 4 MiB to copy again");
        }
    }

    @Test
    void aCompleteCopyRemovesTheBitmapAndAStopKeepsItForTheSameCommand() throws Exception {
        ResumeBitmap b = open(false);
        assertThat(b.finish(false)).contains("kept: the same command resumes");
        assertThat(FileBitmapStore.inspect(bitmap).state()).isEqualTo(BitmapHeader.State.STOPPED);
        ResumeBitmap again = open(false);
        assertThat(again.describe(SIZE)).contains("after a clean stop");
        assertThat(again.finish(true)).contains("removed: the copy is complete");
        assertThat(bitmap).doesNotExist();
    }

    @Test
    void restartDiscardsABitmapThatWouldBeRefused() throws Exception {
        Files.writeString(bitmap, "garbage");
        try (ResumeBitmap b = open(true)) {
            assertThat(b.resumed()).isFalse();
        }
        assertThat(FileBitmapStore.inspect(bitmap).generation()).isEqualTo(1);
    }

    @Test
    void aDamagedBitmapIsABadImageAndChangesNothing() throws Exception {
        Files.writeString(bitmap, "garbage");
        refused(ExitCodes.BAD_IMAGE, "is not a write-intent bitmap");
    }

    @Test
    void aBitmapOfAnotherTargetIsABadImageAndChangesNothing() throws Exception {
        open(false).close();
        Images.randomImage(dir.resolve("other.img"), SIZE, 3);
        Files.move(dir.resolve("other.img"), dst, java.nio.file.StandardCopyOption.REPLACE_EXISTING); // same name, another file
        refused(ExitCodes.BAD_IMAGE, "belongs to another target");
    }

    @Test
    void aBitmapWhoseSourceChangedAfterACleanStopIsStale() throws Exception {
        open(false).finish(false);
        Files.setLastModifiedTime(src, FileTime.fromMillis(Files.getLastModifiedTime(src).toMillis() + 5_000));
        refused(ExitCodes.BAD_IMAGE, "is stale: the source changed after its job stopped");
    }

    @Test
    void aBitmapHeldByALiveJobIsBusy() throws Exception {
        try (ResumeBitmap held = open(false)) {
            refused(ExitCodes.BUSY, "is in use by another job");
        }
    }

    @Test
    void aGranularityThatDoesNotDivideTheBitmapsRegionsIsAUsageError() throws Exception {
        open(false).close();
        Map<String, String> before = Images.snapshot(dir);
        assertThatThrownBy(() -> ResumeBitmap.open(bitmap, false, src, SIZE, dst, null, SIZE, 2 << 20, true))
                .isInstanceOfSatisfying(CliException.class, e -> assertThat(e.exitCode()).isEqualTo(ExitCodes.USAGE))
                .hasMessageContaining("does not divide");
        assertThat(Images.snapshot(dir).get("copy.bitmap")).isNotNull();
        assertThat(before.keySet()).isEqualTo(Images.snapshot(dir).keySet());
    }

    private void refused(int exit, String message) throws Exception {
        Map<String, String> before = Images.snapshot(dir);
        assertThatThrownBy(() -> open(false).close())
                .isInstanceOfSatisfying(CliException.class, e -> assertThat(e.exitCode()).isEqualTo(exit))
                .hasMessageContaining(message).hasMessageContaining("--restart discards it");
        assertThat(Images.snapshot(dir)).isEqualTo(before);
    }
}
