package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Block devices as source and target, and sparse images, with loop devices the test attaches:
 * size from the device, optional O_DIRECT, QEMU's locks on the device node, a target kept as
 * sparse as its source (write-zeroes reach a loop device's backing file as holes), judged by
 * qemu-img compare and by the allocation stat(1) reports.
 */
@Timeout(300)
class BlockDeviceIT {
    private static final long SIZE = 32L << 20;
    private static final int GRANULARITY = 64 << 10;

    @TempDir
    Path dir;

    /** A sparse image: 4 KiB of data at each of {@code extents} offsets, the rest holes. */
    private static Path sparseImage(Path p, long size, long... extents) throws Exception {
        SplittableRandom r = new SplittableRandom(61);
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            for (long at : extents) {
                byte[] b = new byte[4096];
                r.nextBytes(b);
                ch.write(ByteBuffer.wrap(b), at);
            }
        }
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(size);
        }
        return p;
    }

    /** A file of {@code size} bytes, every block allocated and holding data. */
    private static Path fullImage(Path p, long size) throws Exception {
        SplittableRandom r = new SplittableRandom(62);
        byte[] b = new byte[1 << 20];
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            for (long at = 0; at < size; at += b.length) {
                r.nextBytes(b);
                ch.write(ByteBuffer.wrap(b, 0, (int) Math.min(b.length, size - at)), at);
            }
        }
        return p;
    }

    @Test
    void mirrorsAFileOntoABlockDeviceAndBackWithDirectIo() throws Exception {
        QemuTools.require("qemu-img");
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 63);
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("backing.img").toFile(), "rw")) {
            f.setLength(SIZE);
        }
        try (LoopDevice loop = LoopDevice.attach(dir.resolve("backing.img"))) {
            Cli.Result toDevice = Cli.run(dir, "mirror", "src.img", loop.device.toString(), "--progress", "none");
            assertThat(toDevice.exit()).as(toDevice.toString()).isZero();
            assertThat(toDevice.stdout()).contains("(32 MiB)");
            assertThat(QemuTools.compare(src, loop.device)).isZero();

            Cli.Result back = Cli.run(dir, "mirror", loop.device.toString(), "back.img", "--direct", "--progress", "none");
            assertThat(back.exit()).as(back.toString()).isZero();
            assertThat(QemuTools.compare(src, dir.resolve("back.img"))).isZero();

            Cli.Result small = Cli.run(dir, "mirror", loop.device.toString(), "x.img", "--direct", "--granularity", "512");
            assertThat(small.exit()).as(small.toString()).isEqualTo(ExitCodes.USAGE);
            assertThat(small.stderr()).contains("multiples of the block size");
        }
    }

    @Test
    void aServedBlockDeviceHoldsQemusLocksOnTheDeviceNodeAndNeedsAPlaceForItsRecord() throws Exception {
        QemuTools.require("qemu-io");
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("backing.img").toFile(), "rw")) {
            f.setLength(SIZE);
        }
        try (LoopDevice loop = LoopDevice.attach(dir.resolve("backing.img"))) {
            Cli.Result noRecord = Cli.run(dir, "serve", loop.device.toString(), "--nbd", "unix:d.sock");
            assertThat(noRecord.exit()).as(noRecord.toString()).isEqualTo(ExitCodes.USAGE);
            assertThat(noRecord.stderr()).contains("is a block device: give --record FILE");
            try (Cli.Running serve = Cli.start(dir, "serve", loop.device.toString(), "--nbd", "unix:d.sock",
                    "--record", "loop.owner", "--control", "d.qmp")) {
                serve.awaitLine("serving " + loop.device);
                Object[] io = QemuTools.run("qemu-io", "-f", "raw", "-c", "write 0 4k", loop.device.toString());
                assertThat((String) io[1]).as("QEMU's write lock on the device node").contains("Failed to get \"write\" lock");
                Object[] nbd = QemuTools.run("qemu-io", "-f", "raw", "-c", "write -P 0x5c 1M 64k",
                        "nbd+unix:///disk?socket=" + dir.resolve("d.sock"));
                assertThat((Integer) nbd[0]).as((String) nbd[1]).isZero();
                try (QmpClient qmp = QmpClient.connect(dir.resolve("d.qmp"), serve)) {
                    qmp.execute("qmp_capabilities");
                    assertThat(qmp.execute("x-query-ownership").path("return").path("epoch").asLong()).isEqualTo(1);
                    qmp.execute("quit");
                }
                assertThat(serve.waitFor().exit()).isZero();
            }
            assertThat(dir.resolve("loop.owner")).exists();
            Object[] read = QemuTools.run("qemu-io", "-f", "raw", "-c", "read -P 0x5c 1M 64k", loop.device.toString());
            assertThat((String) read[1]).as("the client's write is on the device").doesNotContain("verification failed");
        }
    }

    @Test
    void aSparseSourceStaysSparseOnAFileTargetAndOnABlockDevicesBackingFile() throws Exception {
        QemuTools.require("qemu-img");
        long[] extents = {3L << 20, (9L << 20) + 4096, 17L << 20, (30L << 20) + 12288, SIZE - 4096};
        Path src = sparseImage(dir.resolve("sparse.img"), SIZE, extents);
        long bound = LoopDevice.allocated(src) + extents.length * (long) GRANULARITY;

        Cli.Result toFile = Cli.run(dir, "mirror", "sparse.img", "new.img", "--progress", "none");
        assertThat(toFile.exit()).as(toFile.toString()).isZero();
        assertThat(QemuTools.compare(src, dir.resolve("new.img"))).isZero();
        assertThat(LoopDevice.allocated(dir.resolve("new.img"))).as("a new target: the source's extents only")
                .isLessThanOrEqualTo(bound);

        Path old = fullImage(dir.resolve("old.img"), SIZE);
        Cli.Result overData = Cli.run(dir, "mirror", "sparse.img", "old.img", "--max-copy", "4M", "--buf-size", "16M",
                "--progress", "none");
        assertThat(overData.exit()).as(overData.toString()).isZero();
        assertThat(QemuTools.compare(src, old)).isZero();
        assertThat(LoopDevice.allocated(old)).as("an existing target full of data: zero chunks become holes")
                .isLessThanOrEqualTo(bound);

        Path backing = fullImage(dir.resolve("backing.img"), SIZE);
        try (LoopDevice loop = LoopDevice.attach(backing)) {
            Cli.Result toDevice = Cli.run(dir, "mirror", "sparse.img", loop.device.toString(), "--progress", "none");
            assertThat(toDevice.exit()).as(toDevice.toString()).isZero();
            assertThat(QemuTools.compare(src, loop.device)).isZero();
        }
        assertThat(LoopDevice.allocated(backing)).as("the device's zeroing reached its backing file as holes")
                .isLessThanOrEqualTo(bound);
    }
}
