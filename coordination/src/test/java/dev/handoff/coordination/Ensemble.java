package dev.handoff.coordination;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.curator.test.InstanceSpec;
import org.apache.curator.test.TestingCluster;

/**
 * A real three-server ZooKeeper ensemble on loopback (Curator's {@link TestingCluster}, servers in
 * this JVM), with a short tick so that session timeouts of a few seconds are allowed
 * (ZooKeeper grants 2 to 20 ticks).
 */
final class Ensemble implements AutoCloseable {
    /** 250 ms: sessions of 0.5 s to 5 s. */
    static final int TICK_MILLIS = 250;

    private final TestingCluster cluster;

    private Ensemble(TestingCluster cluster) {
        this.cluster = cluster;
    }

    static Ensemble start() throws Exception {
        System.setProperty("zookeeper.4lw.commands.whitelist", "srvr");
        System.setProperty("zookeeper.admin.enableServer", "false");
        System.setProperty("zookeeper.forceSync", "no"); // a test ensemble need not survive a power cut
        List<InstanceSpec> specs = new ArrayList<>();
        for (int id = 1; id <= 3; id++) {
            specs.add(new InstanceSpec(null, -1, -1, -1, true, id, TICK_MILLIS, -1));
        }
        TestingCluster cluster = new TestingCluster(specs);
        cluster.start();
        Ensemble e = new Ensemble(cluster);
        e.awaitLeader(Duration.ofSeconds(60));
        return e;
    }

    String connectString() {
        return cluster.getConnectString();
    }

    /** The servers' client ports. */
    List<Integer> ports() {
        List<Integer> ports = new ArrayList<>();
        for (InstanceSpec s : cluster.getInstances()) {
            ports.add(s.getPort());
        }
        return ports;
    }

    ZkAddress address(String path) {
        return new ZkAddress(connectString(), path);
    }

    /** The server that is leader now, waiting up to {@code timeout} for an election to end. */
    InstanceSpec awaitLeader(Duration timeout) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() - end < 0) {
            for (InstanceSpec s : cluster.getInstances()) {
                if ("leader".equals(mode(s))) {
                    return s;
                }
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("no leader elected within " + timeout);
    }

    /** Kills the current leader; returns it. */
    InstanceSpec killLeader() throws Exception {
        InstanceSpec leader = awaitLeader(Duration.ofSeconds(30));
        if (!cluster.killServer(leader)) {
            throw new IllegalStateException("could not kill " + leader);
        }
        return leader;
    }

    void restart(InstanceSpec s) throws Exception {
        cluster.restartServer(s);
    }

    /** "leader", "follower", or null if the server does not answer. */
    static String mode(InstanceSpec s) {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress("127.0.0.1", s.getPort()), 1000);
            socket.setSoTimeout(1000);
            OutputStream out = socket.getOutputStream();
            out.write("srvr".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.US_ASCII));
            for (String line; (line = in.readLine()) != null; ) {
                if (line.startsWith("Mode: ")) {
                    return line.substring(6).trim();
                }
            }
        } catch (IOException e) {
            return null;
        }
        return null;
    }

    @Override
    public void close() throws IOException {
        cluster.close();
    }
}
