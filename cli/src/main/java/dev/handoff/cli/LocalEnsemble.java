package dev.handoff.cli;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Three ZooKeeper servers on loopback, each in its own JVM ({@code QuorumPeerMain} from this
 * command's own class path), forming one ensemble: what {@code handoff ensemble-demo} runs its
 * holders against. Data under a directory the caller owns; every server is killed on close.
 */
final class LocalEnsemble implements AutoCloseable {
    static final int TICK_MILLIS = 500;

    /** One server: its id, client port and process. */
    static final class Server {
        final int id;
        final int clientPort;
        Process process;

        Server(int id, int clientPort) {
            this.id = id;
            this.clientPort = clientPort;
        }
    }

    private final List<Server> servers = new ArrayList<>();

    private LocalEnsemble() {
    }

    /** Starts three servers under {@code dir} and waits (up to {@code timeout}) until they form a quorum. */
    static LocalEnsemble start(Path dir, Duration timeout) throws IOException, InterruptedException {
        LocalEnsemble e = new LocalEnsemble();
        try {
            int[][] ports = new int[3][3];
            for (int[] p : ports) {
                for (int i = 0; i < 3; i++) {
                    p[i] = freePort();
                }
            }
            StringBuilder members = new StringBuilder();
            for (int i = 0; i < 3; i++) {
                members.append("server.").append(i + 1).append("=127.0.0.1:").append(ports[i][1]).append(':')
                        .append(ports[i][2]).append('\n');
            }
            for (int i = 0; i < 3; i++) {
                Path data = Files.createDirectories(dir.resolve("zk" + (i + 1)));
                Files.writeString(data.resolve("myid"), (i + 1) + "\n");
                Path cfg = dir.resolve("zk" + (i + 1) + ".cfg");
                Files.writeString(cfg, "tickTime=" + TICK_MILLIS + "\ninitLimit=10\nsyncLimit=4\n"
                        + "dataDir=" + data.toAbsolutePath() + "\nclientPort=" + ports[i][0]
                        + "\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=srvr\n" + members);
                Server s = new Server(i + 1, ports[i][0]);
                s.process = new ProcessBuilder(javaCommand("-Xmx128m", "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                        cfg.toAbsolutePath().toString()))
                        .redirectErrorStream(true).redirectOutput(dir.resolve("zk" + (i + 1) + ".log").toFile()).start();
                e.servers.add(s);
            }
            long end = System.nanoTime() + timeout.toNanos();
            while (true) {
                int up = 0;
                for (Server s : e.servers) {
                    String m = mode(s);
                    up += "leader".equals(m) || "follower".equals(m) ? 1 : 0;
                }
                if (up == 3) {
                    return e;
                }
                if (System.nanoTime() - end > 0) {
                    throw new IOException("the local ZooKeeper ensemble did not form within " + timeout.toSeconds()
                            + " s; see " + dir + "/zk*.log");
                }
                Thread.sleep(200);
            }
        } catch (IOException | InterruptedException | RuntimeException failure) {
            e.close();
            throw failure;
        }
    }

    /** {@code java -cp <this command's class path> ARGS...}. */
    static List<String> javaCommand(String... args) {
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String classpath = String.join(File.pathSeparator, java.util.Arrays.stream(
                System.getProperty("java.class.path").split(File.pathSeparator))
                .map(p -> Path.of(p).toAbsolutePath().toString()).toList());
        List<String> cmd = new ArrayList<>(List.of(javaBin, "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", classpath));
        cmd.addAll(List.of(args));
        return cmd;
    }

    List<Server> servers() {
        return servers;
    }

    String connectString() {
        StringBuilder b = new StringBuilder();
        for (Server s : servers) {
            b.append(b.length() == 0 ? "" : ",").append("127.0.0.1:").append(s.clientPort);
        }
        return b.toString();
    }

    /** The server that leads now, waiting up to {@code timeout} for an election. */
    Server leader(Duration timeout) throws InterruptedException, IOException {
        long end = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() - end < 0) {
            for (Server s : servers) {
                if (s.process.isAlive() && "leader".equals(mode(s))) {
                    return s;
                }
            }
            Thread.sleep(100);
        }
        throw new IOException("no ZooKeeper leader elected within " + timeout.toSeconds() + " s");
    }

    /** SIGKILL. */
    void kill(Server s) throws InterruptedException {
        s.process.destroyForcibly();
        s.process.waitFor(10, TimeUnit.SECONDS);
    }

    /** "leader", "follower", or null if the server does not answer ZooKeeper's {@code srvr} command. */
    static String mode(Server s) {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), s.clientPort), 500);
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

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    @Override
    public void close() {
        for (Server s : servers) {
            if (s.process != null && s.process.isAlive()) {
                s.process.destroyForcibly();
            }
        }
        for (Server s : servers) {
            if (s.process != null) {
                try {
                    s.process.waitFor(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }
}
