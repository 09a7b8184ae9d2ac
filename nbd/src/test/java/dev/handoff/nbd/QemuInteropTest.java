package dev.handoff.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import dev.handoff.device.FileDevice;
import dev.handoff.device.MemoryDevice;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.Liveness;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import dev.handoff.workload.SyntheticGuest;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Handoff's server and client against QEMU's own NBD client and server: qemu-io, qemu-img
 * (compare, convert), qemu-nbd and qemu-storage-daemon (QEMU's mirror job writing into Handoff's
 * export). Each check is also shown to fail on a wrong image, so a pass means something.
 */
@Timeout(180)
class QemuInteropTest {
    private static final long SIZE = 16 << 20;
    private Path dir;

    @BeforeEach
    void directory() {
        dir = Sockets.newDirectory();
    }

    @AfterEach
    void cleanUp() {
        Sockets.deleteTree(dir);
    }

    @Test
    void qemuIoWritesAndReadsThroughHandoffsServer() throws Exception {
        String qemuIo = QemuTools.require("qemu-io");
        MemoryDevice disk = new MemoryDevice(SIZE);
        try (NbdServer server = NbdServer.builder().listen(NbdAddress.unix(dir.resolve("s")))
                .listen(NbdAddress.tcp(0)).export(NbdExport.of("disk", disk)).start()) {
            String unixUri = server.uri("disk").toString();
            QemuTools.Result r = QemuTools.run(dir, qemuIo, "-f", "raw", unixUri,
                    "-c", "write -P 0xab 0 64k",
                    "-c", "read -P 0xab 0 64k",
                    "-c", "write -P 0xcd 1M 1M",
                    "-c", "write -z 1M 4k",
                    "-c", "discard 2M 64k",
                    "-c", "flush",
                    "-c", "read -P 0 1M 4k",
                    "-c", "read -P 0xcd 1052672 1044480").expectSuccess("qemu-io over unix");
            assertThat(r.output()).doesNotContain("failed").contains("wrote 65536/65536").contains("read 65536/65536");
            assertThat(TestData.read(disk, 0, 65536)).containsOnly(0xab);
            assertThat(TestData.read(disk, (1 << 20) + 4096, 4096)).containsOnly(0xcd);

            NbdAddress.Tcp tcp = (NbdAddress.Tcp) server.addresses().get(1);
            String tcpUri = "nbd://127.0.0.1:" + tcp.port() + "/disk";
            QemuTools.run(dir, qemuIo, "-f", "raw", tcpUri, "-c", "read -P 0xab 0 64k", "-c", "write -P 0x11 8M 512")
                    .expectSuccess("qemu-io over TCP");
            assertThat(TestData.read(disk, 8 << 20, 512)).containsOnly(0x11);

            // The check can fail: a pattern the export does not hold is reported.
            QemuTools.Result wrong = QemuTools.run(dir, qemuIo, "-f", "raw", unixUri, "-c", "read -P 0xac 0 64k");
            assertThat(wrong.exitCode() != 0 || wrong.output().contains("Pattern verification failed"))
                    .as("qemu-io notices a wrong pattern:\n%s", wrong.output()).isTrue();
        }
    }

    @Test
    void qemuImgComparesTheExportWithAFileAndCatchesOneDifferentByte() throws Exception {
        String qemuImg = QemuTools.require("qemu-img");
        Path file = dir.resolve("image.raw");
        byte[] content = TestData.pattern(5, (int) SIZE);
        Files.write(file, content);
        MemoryDevice disk = new MemoryDevice(SIZE);
        disk.write(0, ByteBuffer.wrap(content));
        try (NbdServer server = NbdServer.builder().listen(NbdAddress.unix(dir.resolve("s")))
                .export(NbdExport.readOnly("disk", disk)).start()) {
            String uri = server.uri("disk").toString();
            QemuTools.Result same = QemuTools.run(dir, qemuImg, "compare", "-f", "raw", "-F", "raw", file.toString(), uri);
            assertThat(same.exitCode()).as(same.output()).isZero();
            assertThat(same.output()).contains("Images are identical");

            disk.write(12_345_678, ByteBuffer.wrap(new byte[] {(byte) ~content[12_345_678]}));
            QemuTools.Result different = QemuTools.run(dir, qemuImg, "compare", "-f", "raw", "-F", "raw",
                    file.toString(), uri);
            assertThat(different.exitCode()).as(different.output()).isEqualTo(1);
            // qemu-img names the first differing 512-byte sector
            assertThat(different.output()).contains("Content mismatch at offset " + (12_345_678 & ~511));
        }
    }

    @Test
    void qemuImgConvertWritesAFileIntoHandoffsExport() throws Exception {
        String qemuImg = QemuTools.require("qemu-img");
        Path file = dir.resolve("image.raw");
        byte[] content = TestData.pattern(6, (int) SIZE);
        java.util.Arrays.fill(content, 4 << 20, 8 << 20, (byte) 0); // a zero run: QEMU sends WRITE_ZEROES
        Files.write(file, content);
        MemoryDevice disk = new MemoryDevice(SIZE);
        TestData.fill(disk, 99); // not zero: the zero run must really be written
        try (NbdServer server = NbdServer.builder().listen(NbdAddress.unix(dir.resolve("s")))
                .export(NbdExport.of("disk", disk)).start()) {
            QemuTools.run(dir, qemuImg, "convert", "-n", "-f", "raw", "-O", "raw", file.toString(),
                    server.uri("disk").toString()).expectSuccess("qemu-img convert");
        }
        assertThat(TestData.read(disk, 0, (int) SIZE)).isEqualTo(content);
    }

    @Test
    void handoffMirrorsAFileIntoAQemuNbdExport() throws Exception {
        String qemuNbd = QemuTools.require("qemu-nbd");
        String qemuImg = QemuTools.require("qemu-img");
        Path sourceFile = dir.resolve("source.raw");
        Path targetFile = dir.resolve("target.raw");
        Files.write(sourceFile, TestData.pattern(7, (int) SIZE));
        QemuTools.run(dir, qemuImg, "create", "-f", "raw", targetFile.toString(), Long.toString(SIZE))
                .expectSuccess("qemu-img create");
        Path socket = dir.resolve("qemu.sock");
        long t0 = System.nanoTime();
        try (QemuTools.Child nbd = QemuTools.start(dir, qemuNbd, "-f", "raw", "-k", socket.toString(), "-x", "disk",
                targetFile.toString())) {
            QemuTools.awaitFile(socket, nbd);
            try (FileDevice source = FileDevice.open(sourceFile);
                 NbdDevice target = NbdDevice.open(new NbdUri(NbdAddress.unix(socket), "disk"))) {
                assertThat(target.size()).isEqualTo(SIZE);
                MirrorJob job = MirrorJob.create(source, target, MirrorOptions.builder().granularity(64 << 10).build());
                SyntheticGuest guest = new SyntheticGuest(job.guestDevice(), 2, 11, 64 << 10);
                guest.start(Long.MAX_VALUE);
                job.start();
                assertThat(Converge.awaitReady(job, QemuTools.TIMEOUT)).as("READY: %s", job.failureReason()).isTrue();
                Liveness.awaitWrites(guest, 1, QemuTools.TIMEOUT); // the guest wrote, however late its threads ran
                guest.stop();
                job.complete();
                assertThat(job.awaitConclusion(QemuTools.TIMEOUT)).isEqualTo(JobState.COMPLETED);
                assertThat(guest.failures()).isEmpty();
                assertThat(guest.writes()).isPositive();
                source.flush();
            }
            assertThat(nbd.awaitExit()).as("qemu-nbd exits after the client's NBD_CMD_DISC:\n%s", nbd.output()).isZero();
        }
        System.out.printf("mirror of %d MiB into qemu-nbd: %.2f s%n", SIZE >> 20, (System.nanoTime() - t0) / 1e9);
        QemuTools.Result same = QemuTools.run(dir, qemuImg, "compare", "-f", "raw", "-F", "raw",
                sourceFile.toString(), targetFile.toString());
        assertThat(same.exitCode()).as(same.output()).isZero();

        flipByte(targetFile, SIZE - 1); // and the comparison can fail
        QemuTools.Result different = QemuTools.run(dir, qemuImg, "compare", "-f", "raw", "-F", "raw",
                sourceFile.toString(), targetFile.toString());
        assertThat(different.exitCode()).as(different.output()).isEqualTo(1);
    }

    @Test
    void qemuStorageDaemonMirrorsIntoHandoffsExport() throws Exception {
        String qsd = QemuTools.require("qemu-storage-daemon");
        Path sourceFile = dir.resolve("source.raw");
        byte[] content = TestData.pattern(8, (int) SIZE);
        Files.write(sourceFile, content);
        MemoryDevice disk = new MemoryDevice(SIZE);
        Path qmpSocket = dir.resolve("qmp.sock");
        try (NbdServer server = NbdServer.builder().listen(NbdAddress.unix(dir.resolve("s")))
                .export(NbdExport.of("disk", disk)).start();
             QemuTools.Child daemon = QemuTools.start(dir, qsd,
                     "--blockdev", "driver=file,node-name=src-file,filename=" + sourceFile,
                     "--blockdev", "driver=raw,node-name=src,file=src-file",
                     "--blockdev", "driver=nbd,node-name=tgt,server.type=unix,server.path=" + dir.resolve("s")
                             + ",export=disk",
                     "--chardev", "socket,id=qmp,path=" + qmpSocket + ",server=on,wait=off",
                     "--monitor", "chardev=qmp")) {
            QemuTools.awaitFile(qmpSocket, daemon);
            try (Qmp qmp = new Qmp(qmpSocket)) {
                qmp.execute("{\"execute\":\"blockdev-mirror\",\"arguments\":{\"job-id\":\"m\",\"device\":\"src\","
                        + "\"target\":\"tgt\",\"sync\":\"full\"}}");
                qmp.expect("BLOCK_JOB_READY", QemuTools.TIMEOUT);
                qmp.execute("{\"execute\":\"block-job-complete\",\"arguments\":{\"device\":\"m\"}}");
                String completed = qmp.expect("BLOCK_JOB_COMPLETED", QemuTools.TIMEOUT);
                assertThat(completed).doesNotContain("\"error\"");
                qmp.execute("{\"execute\":\"quit\"}");
            }
            assertThat(daemon.awaitExit()).as(daemon.output()).isZero();
            assertThat(server.exports()).hasSize(1);
        }
        assertThat(TestData.read(disk, 0, (int) SIZE)).isEqualTo(content);
    }

    private static void flipByte(Path file, long offset) throws Exception {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            ch.read(b, offset);
            b.put(0, (byte) ~b.get(0)).rewind();
            ch.write(b, offset);
        }
    }

    static Duration since(long t0) {
        return Duration.ofNanos(System.nanoTime() - t0);
    }
}
