package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Regression: a non-raw image was copied as if its bytes were a disk ({@code mirror disk.qcow2
 * out.img} exited 0 with "a consistent copy" of the qcow2 file), and a qcow2 target of the same
 * file size was overwritten. Images made by {@code qemu-img create} in each format QEMU probes are
 * refused by name, as source and as target, with nothing written; {@code --format raw} forces raw.
 */
@Timeout(300)
class ImageFormatIT {
    @TempDir
    Path dir;

    /** Makes a {@code format} image with qemu-img; returns its path. */
    private Path qemuImage(String format) throws Exception {
        QemuTools.require("qemu-img");
        Path img = dir.resolve("disk." + format);
        Object[] r = null;
        // LUKS benchmarks its key derivation and gives up when it cannot time it on a busy machine: retry.
        for (int iterTime : new int[] {100, 500, 2000}) {
            List<String> cmd = new ArrayList<>(List.of("qemu-img", "create"));
            if (format.equals("luks")) {
                cmd.addAll(List.of("--object", "secret,id=sec0,data=handoff", "-f", "luks", "-o",
                        "key-secret=sec0,iter-time=" + iterTime));
            } else {
                cmd.addAll(List.of("-f", format));
            }
            cmd.addAll(List.of(img.toString(), "4M"));
            Files.deleteIfExists(img);
            r = QemuTools.run(cmd.toArray(String[]::new));
            if ((Integer) r[0] == 0) {
                return img;
            }
        }
        throw new AssertionError("qemu-img create -f " + format + ": " + r[1]);
    }

    private void refused(String formatName, String role, String... args) throws Exception {
        Map<String, String> before = Images.snapshot(dir);
        Cli.Result r = Cli.run(dir, args);
        assertThat(r.exit()).as(r.toString()).isEqualTo(ExitCodes.BAD_IMAGE);
        assertThat(r.errLines()).as(r.toString()).singleElement().asString()
                .contains(role + " ", "is a " + formatName + " image, not raw", "--format raw");
        assertThat(Images.snapshot(dir)).as("nothing written by: " + String.join(" ", args)).isEqualTo(before);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qcow2", "qcow", "vmdk", "vhdx", "vdi", "vpc", "qed", "parallels", "luks"})
    void anImageInAnotherFormatIsRefusedByNameAsSourceAndAsTargetWithNothingWritten(String format) throws Exception {
        Path img = qemuImage(format);
        refused(format, "source", "mirror", img.getFileName().toString(), "out.img");
        Images.randomImage(dir.resolve("raw.img"), Files.size(img), 31);
        refused(format, "target", "mirror", "raw.img", img.getFileName().toString());
        if (format.equals("qcow2")) { // serve checks images the same way: once is enough
            refused(format, "source", "serve", img.getFileName().toString(), "--nbd", "unix:s.sock");
            refused(format, "target", "serve", "raw.img", "--nbd", "unix:s.sock", "--mirror-to",
                    img.getFileName().toString());
        }
    }

    @Test
    void formatRawCopiesTheBytesAsTheyAreWhenThatIsWhatTheUserMeans() throws Exception {
        Path img = qemuImage("qcow2");
        Cli.Result r = Cli.run(dir, "mirror", img.getFileName().toString(), "out.img", "--format", "raw",
                "--progress", "none");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(QemuTools.compare(img, dir.resolve("out.img"))).isZero();
        Cli.Result other = Cli.run(dir, "mirror", img.getFileName().toString(), "out2.img", "--format", "qcow2");
        assertThat(other.exit()).as(other.toString()).isEqualTo(ExitCodes.USAGE);
        assertThat(other.stderr()).contains("raw images only");
    }
}
