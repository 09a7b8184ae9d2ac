package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Each bad input of the issue: one clear line on stderr, the documented exit code, and no file
 * changed (the directory is snapshotted before and after: names, sizes, times, contents).
 */
@Timeout(300)
class BadInputIT {
    private static final long SIZE = 4L << 20;

    @TempDir
    Path dir;

    @BeforeEach
    void source() throws IOException {
        Images.randomImage(dir.resolve("src.img"), SIZE, 7);
    }

    /** Runs the CLI and checks the exit code, a single stderr line containing {@code message}, and no change. */
    private Cli.Result refused(int exit, String message, String... args) throws Exception {
        return refusedWithJvm(List.of(), exit, message, args);
    }

    private Cli.Result refusedWithJvm(List<String> jvm, int exit, String message, String... args) throws Exception {
        Map<String, String> before = Images.snapshot(dir);
        Cli.Result r = Cli.runWithJvm(dir, jvm, args);
        assertThat(r.exit()).as(r.toString()).isEqualTo(exit);
        assertThat(r.errLines()).as(r.toString()).hasSize(1);
        assertThat(r.errLines().get(0)).as(r.toString()).contains(message);
        assertThat(Images.snapshot(dir)).as("files changed by: " + String.join(" ", args)).isEqualTo(before);
        return r;
    }

    @Test
    void aBitmapThatDoesNotBelongOrARestartWithoutOne() throws Exception {
        refused(ExitCodes.USAGE, "--restart discards a --bitmap FILE", "mirror", "src.img", "tgt.img", "--restart");
        Files.writeString(dir.resolve("copy.bitmap"), "not a bitmap");
        // The target is created, then removed again when the bitmap is refused: nothing changes.
        refused(ExitCodes.BAD_IMAGE, "is not a write-intent bitmap (12 bytes, shorter than its header); --restart discards it",
                "mirror", "src.img", "tgt.img", "--bitmap", "copy.bitmap");
        refused(ExitCodes.USAGE, "--bitmap is the --mirror-to job's", "serve", "src.img", "--nbd", "unix:s.sock",
                "--bitmap", "copy.bitmap");
    }

    @Test
    void missingSource() throws Exception {
        refused(ExitCodes.BAD_IMAGE, "source nope.img does not exist", "mirror", "nope.img", "tgt.img");
    }

    @Test
    void targetSmallerOrLargerThanTheSource() throws Exception {
        Images.randomImage(dir.resolve("small.img"), SIZE - 512, 8);
        Images.randomImage(dir.resolve("large.img"), SIZE + (1 << 20), 9);
        refused(ExitCodes.BAD_IMAGE, "must have the source's size", "mirror", "src.img", "small.img");
        refused(ExitCodes.BAD_IMAGE, "must have the source's size", "mirror", "src.img", "large.img");
    }

    @Test
    void targetIsTheSourceUnderAnotherName() throws Exception {
        Files.createDirectories(dir.resolve("sub"));
        Files.createSymbolicLink(dir.resolve("link.img"), dir.resolve("src.img"));
        Files.createLink(dir.resolve("hard.img"), dir.resolve("src.img"));
        refused(ExitCodes.BAD_IMAGE, "is the source", "mirror", "src.img", "src.img");
        refused(ExitCodes.BAD_IMAGE, "is the source", "mirror", "src.img", "sub/../src.img");
        refused(ExitCodes.BAD_IMAGE, "is the source", "mirror", "src.img", dir.resolve("src.img").toString());
        refused(ExitCodes.BAD_IMAGE, "is the source", "mirror", "src.img", "link.img");
        refused(ExitCodes.BAD_IMAGE, "is the source", "mirror", "src.img", "hard.img");
    }

    @Test
    void unwritableTarget() throws Exception {
        Path ro = Images.randomImage(dir.resolve("ro.img"), SIZE, 10);
        Path roDir = Files.createDirectories(dir.resolve("rodir"));
        Unwritable a = Unwritable.make(ro);
        Unwritable b = Unwritable.make(roDir);
        try {
            refused(ExitCodes.BAD_IMAGE, "target ro.img is not writable", "mirror", "src.img", "ro.img");
            refused(ExitCodes.BAD_IMAGE, "is not writable", "mirror", "src.img", "rodir/new.img");
        } finally {
            a.restore();
            b.restore();
        }
        refused(ExitCodes.BAD_IMAGE, "no such directory", "mirror", "src.img", "missing/new.img");
    }

    @Test
    void sourceLockedByAnotherHandoffProcess() throws Exception {
        try (Cli.Running holder = Cli.start(dir, "owner", "activate", "src.img", "--owner", "other")) {
            assertThat(holder.nextLine()).startsWith("ok ACTIVE epoch=1");
            refused(ExitCodes.BUSY, "source is in use: Failed to get \"write\" lock", "mirror", "src.img", "tgt.img");
            holder.send("quit");
            assertThat(holder.waitFor().exit()).isZero();
        }
    }

    @Test
    void sourceOrTargetLockedByQemu() throws Exception {
        Process qemu = QemuTools.holdWithQemuIo(dir.resolve("src.img"));
        try {
            refused(ExitCodes.BUSY, "source is in use", "mirror", "src.img", "tgt.img");
        } finally {
            qemu.destroy();
            qemu.waitFor();
        }
        Images.randomImage(dir.resolve("tgt.img"), SIZE, 11);
        qemu = QemuTools.holdWithQemuIo(dir.resolve("tgt.img"));
        try {
            refused(ExitCodes.BUSY, "target is in use", "mirror", "src.img", "tgt.img");
        } finally {
            qemu.destroy();
            qemu.waitFor();
        }
    }

    @Test
    void invalidGranularity() throws Exception {
        refused(ExitCodes.USAGE, "granularity must be a power of two", "mirror", "src.img", "tgt.img", "--granularity", "3000");
        refused(ExitCodes.USAGE, "granularity must be a power of two", "mirror", "src.img", "tgt.img", "--granularity", "256");
        refused(ExitCodes.USAGE, "granularity must be a power of two", "mirror", "src.img", "tgt.img", "--granularity", "128M");
        refused(ExitCodes.USAGE, "'abc' is not a size", "mirror", "src.img", "tgt.img", "--granularity", "abc");
    }

    @Test
    void invalidSizes() throws Exception {
        refused(ExitCodes.USAGE, "buf-size must be positive", "mirror", "src.img", "tgt.img", "--buf-size", "0");
        refused(ExitCodes.USAGE, "must be at least the granularity", "mirror", "src.img", "tgt.img", "--buf-size", "4K");
        refused(ExitCodes.USAGE, "'-1' is not a size", "mirror", "src.img", "tgt.img", "--speed", "-1");
        refused(ExitCodes.USAGE, "is too large", "mirror", "src.img", "tgt.img", "--speed", "99999999999T");
        refused(ExitCodes.USAGE, "max copy bytes", "mirror", "src.img", "tgt.img", "--max-copy", "4K");
        refused(ExitCodes.USAGE, "copies while the guest writes must be >= 1", "mirror", "src.img", "tgt.img",
                "--copies-while-guest-writes", "0");
        refused(ExitCodes.USAGE, "--size must be at least 1M", "demo", "--size", "4K");
    }

    /**
     * Regression: {@code --buf-size 1T --max-copy 1G} on a small heap died of an OutOfMemoryError in
     * the middle of the copy, with a stack trace and a misleading "interrupted" line.
     */
    @Test
    void copyBuffersLargerThanTheJvmsDirectMemoryAreRefusedBeforeAnythingIsOpened() throws Exception {
        List<String> smallHeap = List.of("-Xmx64m");
        refusedWithJvm(smallHeap, ExitCodes.USAGE, "--buf-size 1 TiB is more than this JVM's",
                "mirror", "src.img", "tgt.img", "--buf-size", "1T", "--max-copy", "1G");
        refusedWithJvm(smallHeap, ExitCodes.USAGE, "the job's copy buffers need up to 128",
                "mirror", "src.img", "tgt.img", "--buf-size", "64M", "--max-copy", "32M");
        refusedWithJvm(List.of("-Xmx256m", "-XX:MaxDirectMemorySize=32m"), ExitCodes.USAGE, "lower --max-copy",
                "mirror", "src.img", "tgt.img", "--max-copy", "16M");
        refusedWithJvm(smallHeap, ExitCodes.USAGE, "of direct memory",
                "serve", "src.img", "--nbd", "unix:s.sock", "--mirror-to", "tgt.img", "--buf-size", "1T");
    }

    /** Regression: stop and enospc paused a job without a control socket forever, with no way out and no hint. */
    @Test
    void stopAndEnospcPoliciesWithoutAControlSocketAreRefusedWithAHint() throws Exception {
        refused(ExitCodes.USAGE, "--on-target-error stop pauses the job on an error until block-job-resume, and only a"
                + " control socket can resume it: add --control SOCKET", "mirror", "src.img", "tgt.img",
                "--on-target-error", "stop");
        refused(ExitCodes.USAGE, "--on-source-error enospc pauses the job when the target runs out of space",
                "mirror", "src.img", "tgt.img", "--on-source-error", "enospc");
        refused(ExitCodes.USAGE, "add --control SOCKET", "serve", "src.img", "--nbd", "unix:s.sock", "--mirror-to",
                "tgt.img", "--on-target-error", "enospc");
        refused(ExitCodes.USAGE, "the demo has no control socket", "demo", "--on-target-error", "stop");
    }

    /** Regression: the top-level help listed exit 130 (Ctrl-C) but not 143 (SIGTERM). */
    @Test
    void topLevelHelpListsEveryExitCode() throws Exception {
        Cli.Result r = Cli.run(dir, "--help");
        assertThat(r.exit()).isZero();
        for (String code : List.of(" 0 ", " 1 ", " 2 ", " 3 ", " 4 ", " 5 ", " 6 ", " 130 ", " 143 ")) {
            assertThat(r.stdout()).as(r.stdout()).contains(code);
        }
        assertThat(r.stdout()).contains("SIGTERM");
    }

    @Test
    void unknownOptionCommandOrMissingArgument() throws Exception {
        refused(ExitCodes.USAGE, "Unknown option: '--frobnicate'", "mirror", "src.img", "tgt.img", "--frobnicate");
        refused(ExitCodes.USAGE, "Unmatched argument", "frobnicate");
        refused(ExitCodes.USAGE, "Missing required parameter", "mirror", "src.img");
        refused(ExitCodes.USAGE, "a command is required");
        refused(ExitCodes.USAGE, "'sideways' is not a copy mode", "mirror", "src.img", "tgt.img", "--copy-mode", "sideways");
        refused(ExitCodes.USAGE, "'shrug' is not a error policy", "mirror", "src.img", "tgt.img", "--on-target-error", "shrug");
    }

    @Test
    void contradictoryOrUselessOptions() throws Exception {
        refused(ExitCodes.USAGE, "exclude each other", "mirror", "src.img", "tgt.img", "--wait", "--cancel-when-ready");
        refused(ExitCodes.USAGE, "would copy nothing", "mirror", "src.img", "tgt.img", "--sync", "none");
        refused(ExitCodes.USAGE, "--inject-target-errors", "mirror", "src.img", "tgt.img", "--inject-target-errors", "lots");
        Files.writeString(dir.resolve("not-a-socket"), "x");
        refused(ExitCodes.USAGE, "exists and is not a socket", "mirror", "src.img", "tgt.img", "--control", "not-a-socket");
    }

    @Test
    void ownerCommandsOnBadInput() throws Exception {
        refused(ExitCodes.BAD_IMAGE, "does not exist", "owner", "status", "nope.img");
        refused(ExitCodes.USAGE, "is not a handoff token", "owner", "accept", "src.img", "--token", "garbage");
        refused(ExitCodes.FENCED, "refused", "owner", "accept", "src.img", "--token", "1:nobody");
    }

    /** Makes a file or directory unwritable even for root (chattr +i), and undoes it. */
    private static final class Unwritable {
        private final Path path;
        private final boolean immutable;
        private final String mode;

        private Unwritable(Path path, boolean immutable, String mode) {
            this.path = path;
            this.immutable = immutable;
            this.mode = mode;
        }

        static Unwritable make(Path path) throws Exception {
            String mode = PosixFilePermissions.toString(Files.getPosixFilePermissions(path));
            Files.setPosixFilePermissions(path, PosixFilePermissions.fromString(Files.isDirectory(path) ? "r-xr-xr-x" : "r--r--r--"));
            boolean immutable = false;
            if (Files.isWritable(path)) { // root ignores modes
                Object[] r = QemuTools.run("chattr", "+i", path.toString());
                immutable = (Integer) r[0] == 0;
                if (!immutable || Files.isWritable(path)) {
                    throw new AssertionError("cannot make " + path + " unwritable for this user: " + r[1]);
                }
            }
            return new Unwritable(path, immutable, mode);
        }

        void restore() throws Exception {
            if (immutable) {
                QemuTools.run("chattr", "-i", path.toString());
            }
            Files.setPosixFilePermissions(path, PosixFilePermissions.fromString(mode));
        }
    }
}
