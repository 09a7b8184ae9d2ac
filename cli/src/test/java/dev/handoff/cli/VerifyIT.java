package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code handoff verify} as users run it, from the shaded jar: the test kit and JUnit's API it is
 * written against are inside, and an image is checked on a scratch copy and left as it was.
 */
@Timeout(120)
class VerifyIT {
    @TempDir
    Path dir;

    @Test
    void theShadedJarVerifiesAnImageOnAScratchCopyAndLeavesTheDirectoryAsItWas() throws Exception {
        Path image = dir.resolve("disk.img");
        Images.randomImage(image, 4L << 20, 11);
        Map<String, String> before = Images.snapshot(dir);
        Cli.Result r = Cli.run(dir, "verify", "--image", image.toString(), "--check",
                "starts-all-zero,checksummed-concurrent-writes,flushed-writes-survive-a-power-loss", "--seeds", "1");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("scratch copy").containsPattern("checksummed-concurrent-writes +passed +1 ")
                .contains("2 passed, 0 failed, 1 skipped");
        assertThat(Images.snapshot(dir)).isEqualTo(before);
    }
}
