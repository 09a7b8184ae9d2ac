package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mirror jobs started on a running {@code serve} over QMP, as QEMU's users start them: a target
 * node made by {@code blockdev-add} (an NBD export of another serve) with every job option, and a
 * {@code drive-mirror} to a file, while qemu-io writes through the served export. Judged by
 * qemu-io's pattern reads and qemu-img compare.
 */
@Timeout(300)
class ServeMirrorIT {
    private static final long SIZE = 24L << 20;

    @TempDir
    Path dir;

    @Test
    void blockdevMirrorToAnNbdNodeWithEveryJobOptionPivotsWhenFinalized() throws Exception {
        QemuTools.require("qemu-io");
        Images.randomImage(dir.resolve("a.img"), SIZE, 51);
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("b.img").toFile(), "rw")) {
            f.setLength(SIZE);
        }
        String onA = "nbd+unix:///disk?socket=" + dir.resolve("a.sock");
        String onB = "nbd+unix:///disk?socket=" + dir.resolve("b.sock");
        try (Cli.Running b = Cli.start(dir, "serve", "b.img", "--nbd", "unix:b.sock", "--control", "b.qmp");
             Cli.Running a = Cli.start(dir, "serve", "a.img", "--nbd", "unix:a.sock", "--control", "a.qmp",
                     "--node-name", "src")) {
            b.awaitLine("serving b.img");
            a.awaitLine("serving a.img");
            try (QmpClient qmp = QmpClient.connect(dir.resolve("a.qmp"), a);
                 QmpClient qmpB = QmpClient.connect(dir.resolve("b.qmp"), b)) {
                qmp.execute("qmp_capabilities");
                qmpB.execute("qmp_capabilities");
                assertThat(qmp.execute("query-block-jobs").path("return").size()).as("no job yet: []").isZero();
                ok(qmp.execute("blockdev-add", "{\"driver\":\"raw\",\"node-name\":\"b\",\"file\":{\"driver\":\"nbd\","
                        + "\"server\":{\"type\":\"unix\",\"path\":\"" + dir.resolve("b.sock") + "\"},\"export\":\"disk\"}}"));
                qemuIo(onA, "write -P 0x31 1M 64k").expectOk();
                ok(qmp.execute("blockdev-mirror", "{\"job-id\":\"m\",\"device\":\"src\",\"target\":\"b\",\"sync\":\"full\","
                        + "\"speed\":8388608,\"granularity\":131072,\"buf-size\":4194304,\"on-source-error\":\"report\","
                        + "\"on-target-error\":\"ignore\",\"copy-mode\":\"write-blocking\",\"auto-finalize\":false,"
                        + "\"auto-dismiss\":false,\"filter-node-name\":\"f\"}"));
                JsonNode info = qmp.execute("query-block-jobs").path("return").get(0);
                assertThat(info.path("speed").asLong()).isEqualTo(8L << 20);
                assertThat(info.path("copy-mode").asText()).isEqualTo("write-blocking");
                assertThat(info.path("auto-finalize").asBoolean()).isFalse();
                assertThat(info.path("auto-dismiss").asBoolean()).isFalse();
                qemuIo(onA, "write -P 0x32 20M 256k").expectOk(); // during the copy: written through to B
                ok(qmp.execute("block-job-set-speed", "{\"device\":\"m\",\"speed\":0}"));
                qmp.awaitEvent("BLOCK_JOB_READY");
                qemuIo(onA, "write -P 0x33 3M 4k").expectOk();
                ok(qmp.execute("block-job-complete", "{\"device\":\"m\"}"));
                qmp.awaitEvent("BLOCK_JOB_PENDING");
                assertThat(qmp.execute("query-jobs").path("return").get(0).path("status").asText()).isEqualTo("pending");
                ok(qmp.execute("job-finalize", "{\"id\":\"m\"}"));
                qmp.awaitEvent("BLOCK_JOB_COMPLETED");
                qmp.awaitStatus("concluded");
                assertThat(qmp.execute("blockdev-del", "{\"node-name\":\"b\"}").path("error").path("desc").asText())
                        .as("the export now writes to node b").contains("in use");
                ok(qmp.execute("job-dismiss", "{\"id\":\"m\"}"));
                qmp.awaitStatus("null");
                assertThat(qmp.execute("query-block-jobs").path("return").size()).isZero();
                qemuIo(onA, "write -P 0x34 5M 4k").expectOk(); // pivoted: lands on B only
                qemuIo(onB, "read -P 0x31 1M 64k", "read -P 0x32 20M 256k", "read -P 0x33 3M 4k",
                        "read -P 0x34 5M 4k").expectOk();
                assertThat(qmp.execute("blockdev-mirror", "{\"job-id\":\"n\",\"device\":\"src\",\"target\":\"b\","
                        + "\"sync\":\"full\"}").path("error").path("desc").asText()).contains("pivoted");
                qmp.execute("quit");
                qmpB.execute("quit");
            }
            assertThat(a.waitFor().exit()).isZero();
            assertThat(b.waitFor().exit()).isZero();
        }
    }

    @Test
    void driveMirrorToANewFileWhileQemuIoWritesEndsWithAConsistentCopyOnASoftCancel() throws Exception {
        QemuTools.require("qemu-io");
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 52);
        String onSrc = "nbd+unix:///disk?socket=" + dir.resolve("s.sock");
        try (Cli.Running serve = Cli.start(dir, "serve", "src.img", "--nbd", "unix:s.sock", "--control", "s.qmp")) {
            serve.awaitLine("serving src.img");
            try (QmpClient qmp = QmpClient.connect(dir.resolve("s.qmp"), serve)) {
                qmp.execute("qmp_capabilities");
                assertThat(qmp.execute("drive-mirror", "{\"job-id\":\"d\",\"device\":\"disk\",\"target\":\""
                        + dir.resolve("copy.qcow2") + "\",\"format\":\"qcow2\",\"sync\":\"full\"}").path("error")
                        .path("desc").asText()).contains("raw images only");
                ok(qmp.execute("drive-mirror", "{\"job-id\":\"d\",\"device\":\"disk\",\"target\":\""
                        + dir.resolve("copy.img") + "\",\"format\":\"raw\",\"sync\":\"full\",\"mode\":\"absolute-paths\","
                        + "\"speed\":4194304,\"unmap\":true}"));
                qemuIo(onSrc, "write -P 0x41 2M 1M", "write -P 0x42 23M 64k").expectOk();
                ok(qmp.execute("block-job-set-speed", "{\"device\":\"d\",\"speed\":0}"));
                qmp.awaitEvent("BLOCK_JOB_READY");
                qemuIo(onSrc, "write -P 0x43 7M 4k").expectOk(); // phase 2: kept in sync
                ok(qmp.execute("block-job-cancel", "{\"device\":\"d\"}"));
                JsonNode done = qmp.awaitEvent("BLOCK_JOB_COMPLETED");
                assertThat(done.path("data").has("error")).isFalse();
                qmp.awaitStatus("null");
                qmp.execute("quit");
            }
            assertThat(serve.waitFor().exit()).isZero();
        }
        assertThat(QemuTools.compare(src, dir.resolve("copy.img"))).as("a consistent copy, every write included").isZero();
    }

    private static void ok(JsonNode reply) {
        assertThat(reply.has("return")).as(reply.toString()).isTrue();
    }

    record Outcome(int exit, String output) {
        Outcome expectOk() {
            assertThat(exit).as(output).isZero();
            assertThat(output).as(output).doesNotContain("failed", "Pattern verification");
            return this;
        }
    }

    private Outcome qemuIo(String uri, String... commands) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", "raw", uri));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        Path log = Files.createTempFile(dir, "qemu-io", ".log");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                throw new AssertionError("qemu-io " + String.join(" ", commands) + " did not finish");
            }
            return new Outcome(p.exitValue(), Files.readString(log));
        } finally {
            p.destroyForcibly();
        }
    }
}
