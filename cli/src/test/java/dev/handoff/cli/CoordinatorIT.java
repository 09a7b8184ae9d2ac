package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.curator.test.InstanceSpec;
import org.apache.curator.test.TestingCluster;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --coordinator zk://...} on owner, serve and mirror, against a real three-server ensemble
 * on loopback: a handoff between two processes, status, and the errors (a bad address, an
 * ensemble that does not answer, a PATH of another image, a session lost mid-command).
 */
@Timeout(240)
class CoordinatorIT {
    private static final long SIZE = 4L << 20;
    private static TestingCluster ensemble;
    private static final AtomicInteger paths = new AtomicInteger();

    @TempDir
    Path dir;

    @BeforeAll
    static void startEnsemble() throws Exception {
        System.setProperty("zookeeper.admin.enableServer", "false");
        System.setProperty("zookeeper.forceSync", "no");
        List<InstanceSpec> specs = new ArrayList<>();
        for (int id = 1; id <= 3; id++) {
            specs.add(new InstanceSpec(null, -1, -1, -1, true, id, 250, -1)); // sessions of 0.5 s to 5 s
        }
        ensemble = new TestingCluster(specs);
        ensemble.start();
    }

    @AfterAll
    static void stopEnsemble() throws Exception {
        ensemble.close();
    }

    private static String coordinator() {
        return "zk://" + ensemble.getConnectString() + "/handoff/cli/image-" + paths.incrementAndGet();
    }

    @Test
    void twoOwnerProcessesHandAnImageOverThroughZooKeeper() throws Exception {
        Images.randomImage(dir.resolve("disk.img"), SIZE, 31);
        String zk = coordinator();
        Cli.Result never = Cli.run(dir, "owner", "status", "disk.img", "--coordinator", zk);
        assertThat(never.exit()).as(never.toString()).isZero();
        assertThat(never.stdout()).contains("unclaimed", "epoch 0: never activated", "none: nobody holds the lock");
        try (Cli.Running src = Cli.start(dir, "owner", "activate", "disk.img", "--owner", "src", "--coordinator", zk,
                "--session-timeout", "4s")) {
            assertThat(src.nextLine()).startsWith("ok ACTIVE epoch=1 owner=src");
            Cli.Result status = Cli.run(dir, "owner", "status", "disk.img", "--coordinator", zk);
            assertThat(status.stdout()).contains("epoch 1, owner src, unclean", "ACTIVE elsewhere: owner 'src'",
                    "(pid " + src.pid() + ", ZooKeeper session 0x");
            Cli.Result json = Cli.run(dir, "owner", "status", "disk.img", "--coordinator", zk, "--json");
            JsonNode o = Json.MAPPER.readTree(json.stdout());
            assertThat(o.path("record").path("epoch").asLong()).isEqualTo(1);
            assertThat(o.path("holder").path("owner").asText()).isEqualTo("src");
            assertThat(o.path("holder").path("session").asText()).startsWith("0x");
            Cli.Result second = Cli.run(dir, "owner", "activate", "disk.img", "--owner", "x", "--coordinator", zk);
            assertThat(second.exit()).as(second.toString()).isEqualTo(ExitCodes.BUSY);
            assertThat(second.errLines()).hasSize(1);
            assertThat(second.stderr()).contains("locked by another holder", "owner 'src'");
            assertThat(src.send("write 0 4K")).startsWith("ok wrote 4096 bytes at 0");
            assertThat(src.send("prepare")).startsWith("ok INACTIVE epoch=1 owner=src").endsWith("token=1:src");
            try (Cli.Running dst = Cli.start(dir, "owner", "accept", "disk.img", "--token", "1:src", "--owner", "dst",
                    "--coordinator", zk)) {
                assertThat(dst.nextLine()).startsWith("ok ACTIVE epoch=2 owner=dst");
                assertThat(src.send("abort")).startsWith("refused busy:");
                assertThat(dst.send("write 0 4K")).startsWith("ok wrote");
                assertThat(dst.send("quit")).startsWith("ok closed (was ACTIVE with epoch 2");
                assertThat(dst.waitFor().exit()).isZero();
            }
            assertThat(src.send("abort")).startsWith("refused fenced:");
            assertThat(src.send("status")).isEqualTo("ok INACTIVE epoch=1 owner=src record=2:dst:clean");
            assertThat(src.send("quit")).contains("was INACTIVE: nothing written");
        }
        Cli.Result stale = Cli.run(dir, "owner", "accept", "disk.img", "--token", "1:src", "--coordinator", zk);
        assertThat(stale.exit()).as(stale.toString()).isEqualTo(ExitCodes.FENCED);
        assertThat(stale.errLines()).hasSize(1);
        assertThat(dir.resolve("disk.img.owner")).doesNotExist(); // the record lives in ZooKeeper only
    }

    @Test
    void badCoordinatorArgumentsAreUsageErrors() throws Exception {
        Images.randomImage(dir.resolve("disk.img"), SIZE, 32);
        for (String bad : List.of("zk://127.0.0.1:2181", "http://h:1/x", "zk://h:99999/x", "zk:///x", "zk://h:1/x/")) {
            Cli.Result r = Cli.run(dir, "owner", "activate", "disk.img", "--coordinator", bad);
            assertThat(r.exit()).as(bad + ": " + r).isEqualTo(ExitCodes.USAGE);
            assertThat(r.errLines()).as(bad).hasSize(1);
            assertThat(r.stderr()).contains("--coordinator");
        }
        Cli.Result timeout = Cli.run(dir, "owner", "status", "disk.img", "--coordinator", "zk://h:1/x", "--session-timeout", "soon");
        assertThat(timeout.exit()).isEqualTo(ExitCodes.USAGE);
        assertThat(timeout.stderr()).contains("--session-timeout");
    }

    @Test
    void anEnsembleThatDoesNotAnswerFailsWithOneLine() throws Exception {
        Images.randomImage(dir.resolve("disk.img"), SIZE, 33);
        // A port bound and never listening: connections to it are refused, and no other process (another
        // build's ensemble, say) can take it while the test runs, as it could a port closed after bind(0).
        try (Socket reserved = new Socket()) {
            reserved.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            int port = reserved.getLocalPort();
            Cli.Result r = Cli.run(dir, "owner", "activate", "disk.img", "--coordinator", "zk://127.0.0.1:" + port + "/x");
            assertThat(r.exit()).as(r.toString()).isEqualTo(ExitCodes.FAILED);
            assertThat(r.errLines()).hasSize(1);
            assertThat(r.stderr()).contains("cannot reach the ZooKeeper ensemble 127.0.0.1:" + port);
        }
    }

    @Test
    void aPathThatBelongsToAnotherImageIsABadImage() throws Exception {
        Images.randomImage(dir.resolve("a.img"), SIZE, 34);
        Images.randomImage(dir.resolve("b.img"), SIZE, 35);
        String zk = coordinator();
        try (Cli.Running a = Cli.start(dir, "owner", "activate", "a.img", "--coordinator", zk)) {
            assertThat(a.nextLine()).startsWith("ok ACTIVE epoch=1");
            assertThat(a.send("quit")).startsWith("ok closed");
        }
        for (String cmd : List.of("status", "activate")) {
            Cli.Result r = Cli.run(dir, "owner", cmd, "b.img", "--coordinator", zk);
            assertThat(r.exit()).as(cmd + ": " + r).isEqualTo(ExitCodes.BAD_IMAGE);
            assertThat(r.errLines()).hasSize(1);
            assertThat(r.stderr()).contains("belongs to another image: 'a.img'", "not 'b.img'");
        }
    }

    @Test
    void aHolderWhoseSessionIsLostMidCommandExitsFencedWithOneLine() throws Exception {
        Images.randomImage(dir.resolve("disk.img"), SIZE, 36);
        String zk = coordinator();
        try (Cli.Running a = Cli.start(dir, "owner", "activate", "disk.img", "--owner", "a", "--coordinator", zk,
                "--session-timeout", "1s")) {
            assertThat(a.nextLine()).startsWith("ok ACTIVE epoch=1 owner=a");
            a.signal("STOP"); // a pause past the session timeout: the ensemble expires the session
            long end = System.nanoTime() + 60_000_000_000L;
            while (Cli.run(dir, "owner", "status", "disk.img", "--coordinator", zk).stdout().contains("ACTIVE elsewhere")) {
                assertThat(System.nanoTime()).isLessThan(end);
                Thread.sleep(200);
            }
            a.signal("CONT");
            Cli.Result r = a.waitFor();
            assertThat(r.exit()).as(r.toString()).isEqualTo(ExitCodes.FENCED);
            assertThat(r.errLines()).hasSize(1);
            assertThat(r.stderr()).contains("ZooKeeper session lost mid-command", "disk.img is fenced here");
        }
        Cli.Result status = Cli.run(dir, "owner", "status", "disk.img", "--coordinator", zk);
        assertThat(status.stdout()).contains("epoch 1, owner a, unclean", "none: nobody holds the lock");
    }

    @Test
    void serveAndMirrorStopFencedWithOneLineWhenTheirSessionIsLostMidCommand() throws Exception {
        Images.randomImage(dir.resolve("served.img"), SIZE, 38);
        Images.randomImage(dir.resolve("source.img"), SIZE, 39);
        String servedAt = coordinator();
        String sourceAt = coordinator();
        try (Cli.Running server = Cli.start(dir, "serve", "served.img", "--nbd", "unix:s.sock", "--coordinator", servedAt,
                "--session-timeout", "1s");
                Cli.Running mirror = Cli.start(dir, "mirror", "source.img", "copy.img", "--speed", "512K",
                        "--progress", "none", "--coordinator", sourceAt, "--session-timeout", "1s")) {
            server.awaitLine("serving served.img");
            mirror.awaitLine("mirror source.img");
            server.signal("STOP");
            mirror.signal("STOP"); // both paused past their sessions: the ensemble expires them
            awaitNoHolder("served.img", servedAt);
            awaitNoHolder("source.img", sourceAt);
            server.signal("CONT");
            mirror.signal("CONT");
            Cli.Result served = server.waitFor();
            assertThat(served.exit()).as(served.toString()).isEqualTo(ExitCodes.FENCED);
            assertThat(served.errLines()).hasSize(1);
            assertThat(served.stderr()).contains("ZooKeeper session lost mid-command", "no longer served");
            Cli.Result mirrored = mirror.waitFor();
            assertThat(mirrored.exit()).as(mirrored.toString()).isEqualTo(ExitCodes.FENCED);
            assertThat(mirrored.errLines()).hasSize(1);
            assertThat(mirrored.stderr()).contains("ZooKeeper session lost mid-command", "copy.img is NOT consistent");
        }
    }

    private void awaitNoHolder(String image, String zk) throws Exception {
        long end = System.nanoTime() + 60_000_000_000L;
        while (Cli.run(dir, "owner", "status", image, "--coordinator", zk).stdout().contains("ACTIVE elsewhere")) {
            assertThat(System.nanoTime()).isLessThan(end);
            Thread.sleep(200);
        }
    }

    @Test
    void serveAndMirrorHoldTheImageThroughZooKeeper() throws Exception {
        Images.randomImage(dir.resolve("disk.img"), SIZE, 37);
        String zk = coordinator();
        try (Cli.Running server = Cli.start(dir, "serve", "disk.img", "--nbd", "unix:s.sock", "--control", "s.qmp",
                "--owner", "S", "--coordinator", zk)) {
            assertThat(server.awaitLine("serving disk.img")).contains("ACTIVE, owner S, epoch 1", "coordinator " + zk);
            Cli.Result status = Cli.run(dir, "owner", "status", "disk.img", "--coordinator", zk);
            assertThat(status.stdout()).contains("ACTIVE elsewhere: owner 'S'");
            Cli.Result mirror = Cli.run(dir, "mirror", "disk.img", "copy.img", "--coordinator", zk, "--progress", "none");
            assertThat(mirror.exit()).as(mirror.toString()).isEqualTo(ExitCodes.BUSY);
            assertThat(mirror.errLines()).hasSize(1);
            try (QmpClient qmp = QmpClient.connect(dir.resolve("s.qmp"), server)) {
                qmp.execute("qmp_capabilities");
                assertThat(qmp.execute("x-query-ownership").path("return").path("epoch").asLong()).isEqualTo(1);
                qmp.execute("quit");
            }
            assertThat(server.waitFor().exit()).isZero();
        }
        Cli.Result mirror = Cli.run(dir, "mirror", "disk.img", "copy.img", "--coordinator", zk, "--progress", "none");
        assertThat(mirror.exit()).as(mirror.toString()).isZero();
        assertThat(Images.sha256(dir.resolve("copy.img"))).isEqualTo(Images.sha256(dir.resolve("disk.img")));
        Cli.Result after = Cli.run(dir, "owner", "status", "disk.img", "--coordinator", zk);
        assertThat(after.stdout()).contains("epoch 2, owner mirror-", "clean (the owner flushed and let go)");
    }
}
