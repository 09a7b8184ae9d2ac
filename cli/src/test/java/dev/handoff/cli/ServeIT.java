package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code handoff serve} and {@code handoff mirror ... nbd+unix://...} as separate processes, with
 * QEMU's tools as the clients and the judge: the two-process migration on loopback, a handoff on
 * shared storage, and a mirror into qemu-nbd. Every process is killed when its test ends.
 */
@Timeout(240)
class ServeIT {
    private static final long SIZE = 32L << 20;

    @TempDir
    Path dir;

    /**
     * The migration of the NBD issue: A serves its image and mirrors it into B's export while
     * qemu-io writes through A's export; at READY A cancels (no pivot: B holds a consistent copy,
     * as QEMU does for a migration) and hands over; B serves the image, A refuses writes.
     */
    @Test
    void migratesToAnotherProcessWhileQemuIoWritesAndTheSourceIsRefusedAfterwards() throws Exception {
        QemuTools.require("qemu-io");
        QemuTools.require("qemu-img");
        Path a = Images.randomImage(dir.resolve("a.img"), SIZE, 21);
        Path b = dir.resolve("b.img");
        try (RandomAccessFile f = new RandomAccessFile(b.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        String toB = "nbd+unix:///disk?socket=" + dir.resolve("b.sock");
        String toA = "nbd+unix:///disk?socket=" + dir.resolve("a.sock");
        try (Cli.Running serverB = Cli.start(dir, "serve", "b.img", "--nbd", "unix:b.sock", "--control", "b.qmp",
                "--owner", "B", "--no-inline-requests");
             Cli.Running serverA = startAfter(serverB, "serve", "a.img", "--nbd", "unix:a.sock", "--mirror-to", toB,
                     "--control", "a.qmp", "--owner", "A", "--speed", "16M", "--inline-requests")) {
            serverA.awaitLine("serving a.img");
            try (QmpClient qmpA = QmpClient.connect(dir.resolve("a.qmp"), serverA);
                 QmpClient qmpB = QmpClient.connect(dir.resolve("b.qmp"), serverB)) {
                qmpA.execute("qmp_capabilities");
                qmpB.execute("qmp_capabilities");
                qemuIo(toA, "write -P 0x5a 1M 1M", "write -P 0x5b 31M 64k").expectOk(); // during the bulk copy
                awaitReady(qmpA, serverA); // (polled: the event may precede the connection)
                qemuIo(toA, "write -P 0x6b 20M 256k", "read -P 0x5a 1M 1M").expectOk();   // phase 2: kept in sync
                assertThat(qmpA.execute("x-handoff-prepare").path("error").path("desc").asText())
                        .as("no handoff while the job runs").contains("complete or cancel");
                qmpA.execute("block-job-cancel", "{\"device\":\"mirror0\"}");
                qmpA.awaitEvent("BLOCK_JOB_COMPLETED");
                JsonNode token = qmpA.execute("x-handoff-prepare").path("return");
                assertThat(token.path("owner").asText()).isEqualTo("A");
                assertThat(qmpA.execute("x-query-ownership").path("return").path("state").asText()).isEqualTo("INACTIVE");

                Outcome refused = qemuIo(toA, "write -P 0x11 0 4k");
                assertThat(refused.output()).as("A refuses writes after the handoff").contains("Operation not permitted");
                qemuIo(toB, "read -P 0x5a 1M 1M", "read -P 0x5b 31M 64k", "read -P 0x6b 20M 256k").expectOk();

                qmpA.execute("quit");
                qmpB.execute("quit");
            }
            assertThat(serverA.waitFor().exit()).isZero();
            assertThat(serverB.waitFor().exit()).isZero();
        }
        assertThat(QemuTools.compare(a, b)).as("B holds A's image, every write included").isZero();
        try (RandomAccessFile f = new RandomAccessFile(b.toFile(), "rw")) {
            f.seek(SIZE - 1);
            f.write(~f.read() & 0xff);
        }
        assertThat(QemuTools.compare(a, b)).as("and the comparison can fail").isEqualTo(1);
    }

    /**
     * The same migration ended with block-job-complete: after the pivot, A's export forwards its
     * clients' writes to B (through A's NBD client); after the handoff A refuses them.
     */
    @Test
    void migratesWithAPivotAndForwardsWritesToBUntilTheHandoff() throws Exception {
        QemuTools.require("qemu-io");
        Images.randomImage(dir.resolve("a.img"), SIZE, 25);
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("b.img").toFile(), "rw")) {
            f.setLength(SIZE);
        }
        String toB = "nbd+unix:///disk?socket=" + dir.resolve("b.sock");
        String toA = "nbd+unix:///disk?socket=" + dir.resolve("a.sock");
        try (Cli.Running serverB = Cli.start(dir, "serve", "b.img", "--nbd", "unix:b.sock", "--control", "b.qmp",
                "--owner", "B");
             Cli.Running serverA = startAfter(serverB, "serve", "a.img", "--nbd", "unix:a.sock", "--mirror-to", toB,
                     "--control", "a.qmp", "--owner", "A")) {
            serverA.awaitLine("serving a.img");
            try (QmpClient qmpA = QmpClient.connect(dir.resolve("a.qmp"), serverA);
                 QmpClient qmpB = QmpClient.connect(dir.resolve("b.qmp"), serverB)) {
                qmpA.execute("qmp_capabilities");
                qmpB.execute("qmp_capabilities");
                qemuIo(toA, "write -P 0x5a 2M 1M").expectOk();
                awaitReady(qmpA, serverA);
                qmpA.execute("block-job-complete", "{\"device\":\"mirror0\"}");
                qmpA.awaitEvent("BLOCK_JOB_COMPLETED");
                qemuIo(toA, "write -P 0x7c 4M 64k").expectOk();            // pivoted: lands on B only
                qemuIo(toB, "read -P 0x7c 4M 64k", "read -P 0x5a 2M 1M").expectOk();
                assertThat(qmpA.execute("x-handoff-prepare").path("return").path("owner").asText()).isEqualTo("A");
                assertThat(qemuIo(toA, "write -P 0x11 0 4k").output()).contains("Operation not permitted");
                qemuIo(toA, "read -P 0x7c 4M 64k").expectOk();            // reads still served (from B)
                qmpA.execute("quit");
                qmpB.execute("quit");
            }
            assertThat(serverA.waitFor().exit()).isZero();
            assertThat(serverB.waitFor().exit()).isZero();
        }
    }

    /** Shared storage: both processes serve the same file; the token moves the writer from A to B. */
    @Test
    void handsASharedImageFromOneServerToTheOther() throws Exception {
        QemuTools.require("qemu-io");
        Images.randomImage(dir.resolve("shared.img"), SIZE, 22);
        String onA = "nbd+unix:///disk?socket=" + dir.resolve("a.sock");
        String onB = "nbd+unix:///disk?socket=" + dir.resolve("b.sock");
        try (Cli.Running serverA = Cli.start(dir, "serve", "shared.img", "--nbd", "unix:a.sock", "--control", "a.qmp",
                "--owner", "A");
             Cli.Running serverB = startAfter(serverA, "serve", "shared.img", "--nbd", "unix:b.sock", "--control",
                     "b.qmp", "--owner", "B", "--inactive")) {
            serverB.awaitLine("serving shared.img");
            try (QmpClient qmpA = QmpClient.connect(dir.resolve("a.qmp"), serverA);
                 QmpClient qmpB = QmpClient.connect(dir.resolve("b.qmp"), serverB)) {
                qmpA.execute("qmp_capabilities");
                qmpB.execute("qmp_capabilities");
                qemuIo(onA, "write -P 0x42 0 64k").expectOk();
                assertThat(qemuIo(onB, "write -P 0x43 0 4k").output()).contains("Operation not permitted");
                qemuIo(onB, "read -P 0x42 0 64k").expectOk();

                JsonNode token = qmpA.execute("x-handoff-prepare").path("return");
                JsonNode reply = qmpB.execute("x-handoff-accept", "{\"epoch\":" + token.path("epoch").asLong()
                        + ",\"owner\":\"" + token.path("owner").asText() + "\"}");
                JsonNode accepted = reply.path("return");
                assertThat(accepted.isObject()).as("accept: %s (token %s)", reply, token).isTrue();
                assertThat(accepted.path("state").asText()).isEqualTo("ACTIVE");
                assertThat(accepted.path("epoch").asLong()).isEqualTo(token.path("epoch").asLong() + 1);

                qemuIo(onB, "write -P 0x44 64k 64k", "read -P 0x42 0 64k").expectOk();
                assertThat(qemuIo(onA, "write -P 0x45 0 4k").output()).contains("Operation not permitted");
                assertThat(qmpA.execute("x-handoff-abort").path("error").path("desc").asText())
                        .as("A cannot take the image back once B has it").contains("refused");
                qmpA.execute("quit");
                qmpB.execute("quit");
            }
            assertThat(serverA.waitFor().exit()).isZero();
            assertThat(serverB.waitFor().exit()).isZero();
        }
    }

    @Test
    void mirrorCopiesAnImageIntoAQemuNbdExport() throws Exception {
        QemuTools.require("qemu-nbd");
        QemuTools.require("qemu-img");
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 23);
        Path tgt = dir.resolve("tgt.img");
        try (RandomAccessFile f = new RandomAccessFile(tgt.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        Path socket = dir.resolve("q.sock");
        Process qemuNbd = new ProcessBuilder("qemu-nbd", "-f", "raw", "-k", socket.toString(), "-x", "disk",
                tgt.toString()).redirectErrorStream(true).redirectOutput(dir.resolve("qemu-nbd.log").toFile()).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!Files.exists(socket)) {
                assertThat(qemuNbd.isAlive()).as("qemu-nbd: %s", Files.readString(dir.resolve("qemu-nbd.log"))).isTrue();
                assertThat(System.nanoTime()).as("qemu-nbd socket").isLessThan(deadline);
                Thread.sleep(20);
            }
            Cli.Result r = Cli.run(dir, "mirror", "src.img", "nbd+unix:///disk?socket=" + socket, "--progress", "lines");
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(r.stdout()).contains("is a consistent copy");
            assertThat(qemuNbd.waitFor(60, TimeUnit.SECONDS)).as("qemu-nbd exits when its client leaves").isTrue();
        } finally {
            qemuNbd.destroyForcibly();
            qemuNbd.waitFor(10, TimeUnit.SECONDS);
        }
        assertThat(QemuTools.compare(src, tgt)).isZero();
    }

    @Test
    void serveRefusesBadInputBeforeTouchingAnything() throws Exception {
        Images.randomImage(dir.resolve("x.img"), 1 << 20, 24);
        Cli.Result missing = Cli.run(dir, "serve", "nope.img", "--nbd", "unix:s");
        assertThat(missing.exit()).as(missing.toString()).isEqualTo(ExitCodes.BAD_IMAGE);
        Cli.Result badAddress = Cli.run(dir, "serve", "x.img", "--nbd", "nonsense");
        assertThat(badAddress.exit()).as(badAddress.toString()).isEqualTo(ExitCodes.USAGE);
        Cli.Result both = Cli.run(dir, "serve", "x.img", "--nbd", "unix:s", "--inactive", "--mirror-to", "y.img");
        assertThat(both.exit()).as(both.toString()).isEqualTo(ExitCodes.USAGE);
        Cli.Result badUri = Cli.run(dir, "mirror", "x.img", "nbd+unix:///disk");
        assertThat(badUri.exit()).as(badUri.toString()).isEqualTo(ExitCodes.USAGE);
        Cli.Result unreachable = Cli.run(dir, "mirror", "x.img", "nbd+unix:///disk?socket=" + dir.resolve("none.sock"));
        assertThat(unreachable.exit()).as(unreachable.toString()).isEqualTo(ExitCodes.BAD_IMAGE);
        assertThat(Files.exists(dir.resolve("y.img"))).isFalse();
        assertThat(Files.exists(dir.resolve("x.img.owner"))).isFalse();
    }

    /**
     * Regression: a serve that failed to start (an address in use, a socket in a missing directory)
     * had already activated the image: it bumped the epoch, wrote the record, and so fenced a pending
     * handoff (accept and abort both refused), once more on every retry. A command that fails
     * changes no ownership state: here the handoff prepared before three failed serves still completes.
     */
    @Test
    void aServeThatFailsToStartChangesNoOwnershipStateAndAPendingHandoffStillCompletes() throws Exception {
        Images.randomImage(dir.resolve("fresh.img"), 1 << 20, 26);
        Cli.Result missingDir = Cli.run(dir, "serve", "fresh.img", "--nbd", "unix:" + dir.resolve("nope/x.sock"));
        assertThat(missingDir.exit()).as(missingDir.toString()).isEqualTo(ExitCodes.BAD_IMAGE);
        assertThat(missingDir.errLines()).singleElement().asString().contains("no such directory");
        assertThat(dir.resolve("fresh.img.owner")).as("no record written").doesNotExist();

        try (java.nio.channels.ServerSocketChannel busy = java.nio.channels.ServerSocketChannel
                .open(java.net.StandardProtocolFamily.UNIX)) {
            busy.bind(java.net.UnixDomainSocketAddress.of(dir.resolve("busy.sock")));
            Cli.Result inUse = Cli.run(dir, "serve", "fresh.img", "--nbd", "unix:busy.sock");
            assertThat(inUse.exit()).as(inUse.toString()).isEqualTo(ExitCodes.BUSY);
            assertThat(dir.resolve("fresh.img.owner")).doesNotExist();

            try (Cli.Running a = Cli.start(dir, "owner", "activate", "fresh.img", "--owner", "a")) {
                assertThat(a.nextLine()).startsWith("ok ACTIVE epoch=1");
                assertThat(a.send("prepare")).endsWith("token=1:a");
                for (int i = 0; i < 2; i++) {
                    Cli.Result retry = Cli.run(dir, "serve", "fresh.img", "--nbd", "unix:busy.sock", "--owner", "c");
                    assertThat(retry.exit()).as(retry.toString()).isEqualTo(ExitCodes.BUSY);
                }
                Cli.Result badTarget = Cli.run(dir, "serve", "fresh.img", "--nbd", "unix:ok.sock", "--owner", "c",
                        "--mirror-to", "nbd+unix:///x?socket=" + dir.resolve("none.sock"));
                assertThat(badTarget.exit()).as(badTarget.toString()).isEqualTo(ExitCodes.BAD_IMAGE);
                assertThat(Cli.run(dir, "owner", "status", "fresh.img").stdout())
                        .as("the record is as prepare left it").contains("epoch 1, owner a, clean");
                try (Cli.Running b = Cli.start(dir, "owner", "accept", "fresh.img", "--token", "1:a", "--owner", "b")) {
                    assertThat(b.nextLine()).as("the pending handoff completes").startsWith("ok ACTIVE epoch=2 owner=b");
                    b.send("quit");
                    assertThat(b.waitFor().exit()).isZero();
                }
                a.send("quit");
                assertThat(a.waitFor().exit()).isZero();
            }
        }
    }

    /**
     * Regression: serve --read-only took the exclusive write lock, bumped the epoch and marked the
     * record unclean, so QEMU could not open the image meanwhile. Now it holds the image as QEMU's
     * own read-only exporter does: QEMU may write it, NBD clients may not, and no record appears.
     */
    @Test
    void aReadOnlyServeTakesNoWriteLockAndWritesNoOwnershipRecord() throws Exception {
        QemuTools.require("qemu-io");
        Path img = Images.randomImage(dir.resolve("ro.img"), SIZE, 27);
        String ownUri = "nbd+unix:///disk?socket=" + dir.resolve("ro.sock");
        try (Cli.Running server = Cli.start(dir, "serve", "ro.img", "--nbd", "unix:ro.sock", "--read-only",
                "--control", "ro.qmp")) {
            assertThat(server.awaitLine("serving ro.img")).contains("read-only");
            assertThat(qemuIo(ownUri, "write -P 0x11 0 4k").output()).as("NBD clients may not write")
                    .containsAnyOf("Permission denied", "Operation not permitted");
            Object[] io = QemuTools.run("qemu-io", "-f", "raw", "-c", "write -P 0x22 1M 4k", img.toString());
            assertThat((Integer) io[0]).as("QEMU may open and write the image meanwhile: %s", io[1]).isZero();
            Object[] read = QemuTools.run("qemu-io", "-r", "-f", "raw", "-c", "read -P 0x22 1M 4k", ownUri);
            assertThat((Integer) read[0]).as("clients read what QEMU wrote: %s", read[1]).isZero();
            assertThat((String) read[1]).doesNotContain("Pattern verification failed");
            Object[] resize = QemuTools.run("qemu-img", "resize", "-f", "raw", img.toString(), "+1M");
            assertThat((Integer) resize[0]).as("but not resize it, as with QEMU's read-only export: %s", resize[1])
                    .isNotZero();
            try (QmpClient qmp = QmpClient.connect(dir.resolve("ro.qmp"), server)) {
                qmp.execute("qmp_capabilities");
                assertThat(qmp.execute("x-query-ownership").path("return").path("state").asText()).isEqualTo("READ-ONLY");
                assertThat(qmp.execute("x-handoff-prepare").path("error").path("desc").asText()).contains("read-only");
                qmp.execute("quit");
            }
            assertThat(server.waitFor().exit()).isZero();
        }
        assertThat(dir.resolve("ro.img.owner")).as("no ownership record").doesNotExist();
        assertThat(Cli.run(dir, "owner", "status", "ro.img").stdout()).contains("epoch 0: never activated");
    }

    /* ---------------- helpers ---------------- */

    /** Starts a second server once the first has printed its "serving" line. */
    private Cli.Running startAfter(Cli.Running first, String... args) throws IOException, InterruptedException {
        first.awaitLine("serving ");
        return Cli.start(dir, args);
    }

    private static void awaitReady(QmpClient qmp, Cli.Running server) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        JsonNode jobs;
        while (!(jobs = qmp.execute("query-block-jobs")).path("return").path(0).path("ready").asBoolean()) {
            assertThat(System.nanoTime()).as("the mirror job becomes READY: %s; events %s; output %s", jobs,
                    qmp.eventLog(), server.stdoutSoFar()).isLessThan(deadline);
            Thread.sleep(50);
        }
    }

    record Outcome(int exit, String output) {
        Outcome expectOk() {
            assertThat(exit).as(output).isZero();
            assertThat(output).as(output).doesNotContain("failed");
            return this;
        }
    }

    /** qemu-io on an NBD URI with a deadline; its output goes to a file, never a pipe that could fill. */
    private Outcome qemuIo(String uri, String... commands) throws IOException, InterruptedException {
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
            return new Outcome(p.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
        } finally {
            p.destroyForcibly();
        }
    }
}
