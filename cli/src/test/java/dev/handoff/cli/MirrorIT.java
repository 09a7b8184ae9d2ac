package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code handoff mirror} on real files, judged by QEMU's {@code qemu-img compare}; QEMU's
 * {@code qemu-io} checks that the source is held with QEMU's locks while the job runs; Ctrl-C stops
 * cleanly.
 */
class MirrorIT {
    private static final long SIZE = 40L << 20;

    @TempDir
    Path dir;

    @Test
    void mirrorOfARealFileIsIdenticalForQemuImgAndLeavesTheSourceUntouched() throws Exception {
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 11);
        String before = Images.sha256(src);
        Cli.Result r = Cli.run(dir, "mirror", "src.img", "tgt.img", "--progress", "lines");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("READY", "COMPLETED: ", "is a consistent copy");
        assertThat(r.stdout()).as("a plain copy has no guest to pivot").doesNotContain("pivot", "guest");
        assertThat(QemuTools.compare(src, dir.resolve("tgt.img"))).isZero();
        assertThat(Images.sha256(src)).isEqualTo(before);
    }

    @Test
    void qemuImgCompareCatchesOneFlippedByte() throws Exception {
        // The judge can fail: the same comparison on a target with one byte changed reports a difference.
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 12);
        Cli.Result r = Cli.run(dir, "mirror", "src.img", "tgt.img", "--granularity", "4K", "--progress", "none");
        assertThat(r.exit()).as(r.toString()).isZero();
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("tgt.img").toFile(), "rw")) {
            f.seek(SIZE / 2 + 7);
            int b = f.read();
            f.seek(SIZE / 2 + 7);
            f.write(b ^ 1);
        }
        assertThat(QemuTools.compare(src, dir.resolve("tgt.img"))).isEqualTo(1);
    }

    @Test
    void existingTargetOfTheSameSizeIsOverwrittenWithWriteBlockingAndSmallChunks() throws Exception {
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 13);
        Images.randomImage(dir.resolve("tgt.img"), SIZE, 99);
        Cli.Result r = Cli.run(dir, "mirror", "src.img", "tgt.img", "--copy-mode", "write-blocking", "--granularity",
                "4K", "--buf-size", "1M", "--progress", "none");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(QemuTools.compare(src, dir.resolve("tgt.img"))).isZero();
    }

    @Test
    void cancelWhenReadyLeavesAConsistentCopyWithoutPivot() throws Exception {
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 14);
        Cli.Result r = Cli.run(dir, "mirror", "src.img", "tgt.img", "--cancel-when-ready", "--progress", "none");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("COMPLETED (no pivot)");
        assertThat(QemuTools.compare(src, dir.resolve("tgt.img"))).isZero();
    }

    @Test
    void injectedTargetErrorsUnderIgnoreAreRetriedAndUnderReportFailTheJob() throws Exception {
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 15);
        Cli.Result ok = Cli.run(dir, "mirror", "src.img", "tgt.img", "--inject-target-errors", "3@0.2",
                "--on-target-error", "ignore", "--progress", "none");
        assertThat(ok.exit()).as(ok.toString()).isZero();
        assertThat(ok.stdout()).contains("ERROR target write", "-> ignore");
        assertThat(QemuTools.compare(src, dir.resolve("tgt.img"))).isZero();

        Cli.Result failed = Cli.run(dir, "mirror", "src.img", "tgt2.img", "--inject-target-errors", "1@1",
                "--progress", "none");
        assertThat(failed.exit()).as(failed.toString()).isEqualTo(ExitCodes.FAILED);
        assertThat(failed.stdout()).contains("-> report", "FAILED");
        assertThat(failed.errLines()).hasSize(1);
        assertThat(failed.stderr()).contains("NOT consistent");
    }

    /**
     * Many target errors under {@code ignore}, close together: every back-off must end in a retry.
     * Without the Copier's re-arming of its timer when a back-off is not yet over (an earlier,
     * shorter timer can fire first and leave the job with nothing to wake it) this stalled in
     * RUNNING on every run on 2 cores.
     */
    @Test
    void manyIgnoredTargetErrorsAreAllRetriedAndTheJobCompletes() throws Exception {
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 19);
        Cli.Result r = Cli.run(dir, "mirror", "src.img", "tgt.img", "--inject-target-errors", "30@0.5",
                "--on-target-error", "ignore", "--progress", "none");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(QemuTools.compare(src, dir.resolve("tgt.img"))).isZero();
    }

    @Test
    void sourceAndTargetAreHeldWithQemuLocksWhileTheJobRuns() throws Exception {
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 16);
        Path sock = dir.resolve("qmp.sock");
        QemuTools.require("qemu-io");
        try (Cli.Running mirror = Cli.start(dir, "mirror", "src.img", "tgt.img", "--speed", "1M", "--control",
                sock.toString(), "--progress", "none");
                QmpClient qmp = QmpClient.connect(sock, mirror)) {
            for (Path image : new Path[] {src, dir.resolve("tgt.img")}) {
                Object[] io = QemuTools.run("qemu-io", "-f", "raw", "-c", "write 0 4k", image.toString());
                assertThat((Integer) io[0]).as((String) io[1]).isNotZero();
                assertThat((String) io[1]).contains("Failed to get \"write\" lock");
            }
            qmp.execute("qmp_capabilities");
            qmp.execute("block-job-cancel", "{\"device\":\"mirror0\",\"force\":true}");
            assertThat(mirror.waitFor().exit()).isEqualTo(ExitCodes.CANCELLED);
        }
        // Released at exit: QEMU can write again.
        Object[] io = QemuTools.run("qemu-io", "-f", "raw", "-c", "write 0 4k", src.toString());
        assertThat((Integer) io[0]).as((String) io[1]).isZero();
    }

    @Test
    void ctrlCStopsCleanlyLeavesTheSourceUntouchedAndSaysTheTargetIsNotConsistent() throws Exception {
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 17);
        String before = Images.sha256(src);
        try (Cli.Running mirror = Cli.start(dir, "mirror", "src.img", "tgt.img", "--speed", "2M", "--progress", "lines")) {
            mirror.awaitLine("RUNNING");
            interrupt(mirror);
            Cli.Result r = mirror.waitFor();
            assertThat(r.exit()).as(r.toString()).isIn(ExitCodes.INTERRUPTED, 143);
            assertThat(r.stderr()).contains("src.img untouched", "tgt.img is NOT consistent (left as is)");
        }
        assertThat(Images.sha256(src)).isEqualTo(before);
        assertThat(Files.size(dir.resolve("tgt.img"))).isEqualTo(SIZE);
        assertThat(QemuTools.compare(src, dir.resolve("tgt.img"))).isEqualTo(1);
    }

    @Test
    void ctrlCWhileWaitingInReadyLeavesAConsistentCopy() throws Exception {
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 18);
        try (Cli.Running mirror = Cli.start(dir, "mirror", "src.img", "tgt.img", "--wait", "--progress", "none")) {
            mirror.awaitLine("READY:");
            interrupt(mirror);
            Cli.Result r = mirror.waitFor();
            assertThat(r.exit()).as(r.toString()).isIn(ExitCodes.INTERRUPTED, 143);
            assertThat(r.stderr()).contains("is a consistent copy");
        }
        assertThat(QemuTools.compare(src, dir.resolve("tgt.img"))).isZero();
    }

    /**
     * Ctrl-C is SIGINT. A JVM started with SIGINT ignored (a background job of a non-interactive
     * shell) keeps ignoring it, so then the test sends SIGTERM, which runs the same shutdown path.
     */
    static void interrupt(Cli.Running process) throws Exception {
        boolean ignoresInt = Files.readAllLines(Path.of("/proc/" + process.pid() + "/status")).stream()
                .filter(l -> l.startsWith("SigIgn:")).map(l -> Long.parseUnsignedLong(l.substring(7).trim(), 16))
                .anyMatch(mask -> (mask & (1L << 1)) != 0);
        process.signal(ignoresInt ? "TERM" : "INT");
    }
}
