package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import dev.handoff.nbd.TestPki;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * NBD over TLS with QEMU and libnbd as the peers, both ways: {@code qemu-io}, {@code qemu-img},
 * {@code nbdinfo} and {@code nbdcopy} against {@code handoff serve --tls-creds}, and
 * {@code handoff mirror} into a {@code qemu-storage-daemon} export with {@code tls-creds} and
 * {@code tls-authz}. Everyone who does not belong is refused with one line, while the others
 * are served; and nothing listens unauthenticated, or world-connectable, by default. The
 * certificates are made by the test with openssl ({@link TestPki}).
 */
@Timeout(300)
class TlsIT {
    private static final long SIZE = 16L << 20;
    private static final Pattern PORT = Pattern.compile("as nbds://127\\.0\\.0\\.1:(\\d+)/disk");

    @TempDir
    Path dir;

    private final TestPki pki = TestPki.get();

    @Test
    void qemuAndLibnbdUseServeOverTlsAndEveryoneElseIsRefusedWithOneLine() throws Exception {
        QemuTools.require("qemu-io");
        QemuTools.require("qemu-img");
        QemuTools.require("nbdinfo");
        QemuTools.require("nbdcopy");
        Path image = Images.randomImage(dir.resolve("a.img"), SIZE, 41);
        Path allow = Files.writeString(dir.resolve("allow"), "# the backup host only\n" + TestPki.CLIENT_A + "\n");
        try (Cli.Running serve = Cli.start(dir, "serve", "a.img", "--nbd", "tcp:127.0.0.1:0", "--tls-creds",
                pki.server().toString(), "--tls-authz", allow.toString())) {
            Matcher m = PORT.matcher(serve.awaitLine("serving a.img"));
            assertThat(m.find()).isTrue();
            int port = Integer.parseInt(m.group(1));
            String qemuA = qemuImage(port);

            // QEMU writes and reads, qemu-img compares the export with a file, libnbd reads and copies.
            run("qemu-io", "--object", creds(pki.clientA()), "--image-opts", qemuA, "-c", "write -P 0x5c 1M 64k",
                    "-c", "read -P 0x5c 1M 64k").expectOk();
            Path copy = dir.resolve("copy.img");
            String nbds = "nbds://127.0.0.1:" + port + "/disk?tls-certificates=" + pki.clientA();
            run("nbdcopy", nbds, copy.toString()).expectOk();
            run("qemu-img", "compare", "--object", creds(pki.clientA()), "--image-opts", qemuA,
                    "driver=raw,file.driver=file,file.filename=" + copy).expectOk();
            assertThat(run("nbdinfo", "--size", nbds).expectOk().output().strip()).isEqualTo(Long.toString(SIZE));
            assertThat(serve.stderrSoFar()).as("nobody refused yet").isEmpty();

            // A client without TLS, a client whose certificate another CA signed, one not on the list.
            assertThat(run("qemu-io", "-f", "raw", "nbd://127.0.0.1:" + port + "/disk", "-c", "read 0 4k").exit())
                    .isNotZero();
            // (libnbd: QEMU itself refuses to load client credentials that its own CA did not sign.)
            Outcome rogue = run("nbdinfo", "nbds://127.0.0.1:" + port + "/disk?tls-certificates=" + pki.rogueClient());
            assertThat(rogue.exit()).as(rogue.output()).isNotZero();
            Outcome outsider = run("nbdinfo", "nbds://127.0.0.1:" + port + "/disk?tls-certificates=" + pki.clientB());
            assertThat(outsider.exit()).as(outsider.output()).isNotZero();
            // ... one whose certificate has expired, and one that does not trust this server.
            Outcome expired = run("nbdinfo", "nbds://127.0.0.1:" + port + "/disk?tls-certificates=" + pki.expiredClient());
            assertThat(expired.exit()).as(expired.output()).isNotZero();
            Outcome distrusting = run("nbdinfo", "nbds://127.0.0.1:" + port + "/disk?tls-certificates=" + pki.otherCa());
            assertThat(distrusting.exit()).as(distrusting.output()).isNotZero();

            List<String> lines = awaitStderrLines(serve, 5);
            assertThat(lines.get(0)).startsWith("handoff serve: nbd client 127.0.0.1:")
                    .contains("before NBD_OPT_STARTTLS (this server requires TLS); the client left");
            assertThat(lines.get(1)).contains(": refused: ").matches(".*(not signed by this server's certificate"
                    + " authority|sent no certificate).*");
            assertThat(lines.get(2)).endsWith(": refused: client certificate " + TestPki.CLIENT_B + " is not in " + allow);
            assertThat(lines.get(3)).endsWith(": refused: the client's certificate has expired");
            assertThat(lines.get(4)).matches(".*: refused: the client (hung up during the TLS handshake \\(does it trust"
                    + " this server's certificate\\?\\)|aborted the TLS handshake .*)");

            // ... and the server still serves the client that belongs.
            run("qemu-io", "--object", creds(pki.clientA()), "--image-opts", qemuA, "-c", "read -P 0x5c 1M 64k")
                    .expectOk();
            serve.signal("TERM");
            serve.waitFor();
        }
        assertThat(Files.size(image)).isEqualTo(SIZE);
    }

    @Test
    void mirrorWritesIntoAQemuStorageDaemonTlsExportAndOnlyWithTheRightCertificate() throws Exception {
        QemuTools.require("qemu-storage-daemon");
        QemuTools.require("qemu-img");
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 42);
        Path tgt = dir.resolve("tgt.img");
        try (RandomAccessFile f = new RandomAccessFile(tgt.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        Path log = dir.resolve("qsd.log");
        // QEMU writes identities in the certificate's order (O first); Handoff's allow-list takes both.
        Qsd started = startListening(log, port -> new ProcessBuilder("qemu-storage-daemon",
                "--object", "tls-creds-x509,id=tls0,endpoint=server,verify-peer=on,dir=" + pki.server(),
                "--object", "authz-simple,id=authz0,identity=O=Handoff tests,,CN=client-a",
                "--blockdev", "driver=file,node-name=tgt,filename=" + tgt,
                "--nbd-server", "addr.type=inet,addr.host=127.0.0.1,addr.port=" + port + ",tls-creds=tls0,tls-authz=authz0",
                "--export", "type=nbd,id=e0,node-name=tgt,name=disk,writable=on"));
        Process qsd = started.process();
        int port = started.port();
        try {
            String target = "nbds://127.0.0.1:" + port + "/disk";

            Cli.Result plain = Cli.run(dir, "mirror", "src.img", "nbd://127.0.0.1:" + port + "/disk");
            assertThat(plain.exit()).as(plain.toString()).isEqualTo(ExitCodes.BAD_IMAGE);
            assertThat(plain.errLines()).singleElement().asString().contains("requires TLS");

            Cli.Result outsider = Cli.run(dir, "mirror", "src.img", target, "--tls-creds", pki.clientB().toString());
            assertThat(outsider.exit()).as(outsider.toString()).isEqualTo(ExitCodes.BAD_IMAGE);
            assertThat(outsider.errLines()).singleElement().asString().startsWith("handoff mirror: cannot use target "
                    + target + ": ").contains("accept this client's certificate");

            Cli.Result untrusting = Cli.run(dir, "mirror", "src.img", target, "--tls-creds", pki.otherCa().toString());
            assertThat(untrusting.exit()).as(untrusting.toString()).isEqualTo(ExitCodes.BAD_IMAGE);
            assertThat(untrusting.errLines()).singleElement().asString().contains("the server's certificate is not"
                    + " signed by the certificate authority in " + pki.otherCa().resolve("ca-cert.pem"));

            Cli.Result r = Cli.run(dir, "mirror", "src.img", target, "--tls-creds", pki.clientA().toString(),
                    "--progress", "none");
            assertThat(r.exit()).as(r + "\nqemu-storage-daemon: " + Files.readString(log)).isZero();
            assertThat(r.stdout()).contains("is a consistent copy");
        } finally {
            qsd.destroyForcibly();
            qsd.waitFor(10, TimeUnit.SECONDS);
        }
        assertThat(QemuTools.compare(src, tgt)).isZero();
    }

    @Test
    void badTlsInputGetsOneLineAndTouchesNothing() throws Exception {
        Images.randomImage(dir.resolve("x.img"), 1 << 20, 43);
        Path allow = Files.writeString(dir.resolve("allow"), "not a name\n");
        expectUsage(Cli.run(dir, "serve", "x.img", "--nbd", "unix:s", "--tls-creds", dir.resolve("none").toString()),
                "invalid value for option '--tls-creds': TLS credentials " + dir.resolve("none") + ": no such directory");
        expectUsage(Cli.run(dir, "serve", "x.img", "--nbd", "unix:s", "--tls-creds", pki.mismatchedServerKey().toString()),
                "this key does not belong to the certificate in server-cert.pem");
        expectUsage(Cli.run(dir, "serve", "x.img", "--nbd", "unix:s", "--tls-creds", pki.expiredServer().toString()),
                "server-cert.pem: the certificate expired on");
        expectUsage(Cli.run(dir, "serve", "x.img", "--nbd", "unix:s", "--tls-authz", allow.toString()),
                "--tls-authz needs --tls-creds");
        expectUsage(Cli.run(dir, "serve", "x.img", "--nbd", "unix:s", "--tls-creds", pki.server().toString(),
                "--tls-authz", allow.toString()), allow + " line 1: not a distinguished name");
        expectUsage(Cli.run(dir, "serve", "x.img", "--nbd", "unix:s", "--socket-mode", "0999"), "not an octal mode");
        expectUsage(Cli.run(dir, "mirror", "x.img", "nbds+unix:///disk?socket=/nowhere"),
                "needs --tls-creds DIR");
        expectUsage(Cli.run(dir, "mirror", "x.img", "nbd+unix:///disk?socket=/nowhere", "--tls-creds",
                pki.clientA().toString()), "--tls-creds is for a TLS target: write nbds:// or nbds+unix://");
        expectUsage(Cli.run(dir, "mirror", "x.img", "y.img", "--tls-creds", pki.clientA().toString()),
                "--tls-creds is for a TLS target");
        expectUsage(Cli.run(dir, "serve", "x.img", "--nbd", "unix:s", "--mirror-tls-creds", pki.clientA().toString()),
                "--mirror-tls-creds is for a TLS mirror target (nbds:// or nbds+unix://): of --mirror-to, or of"
                        + " drive-mirror over --control");
        assertThat(dir.resolve("x.img.owner")).doesNotExist();
        assertThat(dir.resolve("s")).doesNotExist();
        assertThat(dir.resolve("y.img")).doesNotExist();
    }

    @Test
    void nothingListensUnauthenticatedBeyondLoopbackOrOpenToOtherUsers() throws Exception {
        Images.randomImage(dir.resolve("x.img"), 1 << 20, 44);
        Cli.Result open = Cli.run(dir, "serve", "x.img", "--nbd", "tcp:0.0.0.0:0");
        expectUsage(open, "refusing to serve on tcp:0.0.0.0:0 without TLS: it is not a loopback address, so anyone who"
                + " can reach it could read and write the exports; give --tls-creds DIR to require TLS of every client,"
                + " or --insecure if every host that can reach it is trusted");
        assertThat(dir.resolve("x.img.owner")).doesNotExist();

        try (Cli.Running insecure = Cli.start(dir, "serve", "x.img", "--nbd", "tcp:0.0.0.0:0", "--insecure",
                "--control", "c.qmp");
             Cli.Running local = startAfter(insecure, "serve", "y.img", "--nbd", "unix:y.sock", "--control", "y.qmp")) {
            local.awaitLine("serving y.img");
            for (String socket : List.of("c.qmp", "y.sock", "y.qmp")) {
                assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(socket))))
                        .as(socket).isEqualTo("rw-------");
            }
            insecure.signal("TERM");
            local.signal("TERM");
            insecure.waitFor();
            local.waitFor();
        }
        try (Cli.Running group = Cli.start(dir, "serve", "x.img", "--nbd", "unix:g.sock", "--control", "g.qmp",
                "--socket-mode", "0660")) {
            group.awaitLine("serving x.img");
            for (String socket : List.of("g.sock", "g.qmp")) {
                assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(socket))))
                        .as(socket).isEqualTo("rw-rw----");
            }
            group.signal("TERM");
            group.waitFor();
        }
    }

    /* ---------------- helpers ---------------- */

    private Cli.Running startAfter(Cli.Running first, String... args) throws Exception {
        first.awaitLine("serving ");
        Images.randomImage(dir.resolve("y.img"), 1 << 20, 45);
        return Cli.start(dir, args);
    }

    private static void expectUsage(Cli.Result r, String message) {
        assertThat(r.exit()).as(r.toString()).isEqualTo(ExitCodes.USAGE);
        assertThat(r.errLines()).as(r.toString()).singleElement().asString().contains(message);
    }

    /** QEMU's client credentials object for a directory of the test PKI. */
    private static String creds(Path dir) {
        return "tls-creds-x509,id=tls0,endpoint=client,dir=" + dir;
    }

    /** The export at {@code port} as QEMU's block options, over the credentials object {@code tls0}. */
    private static String qemuImage(int port) {
        return "driver=raw,file.driver=nbd,file.host=127.0.0.1,file.port=" + port + ",file.export=disk,file.tls-creds=tls0";
    }

    private static List<String> awaitStderrLines(Cli.Running process, int n) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            List<String> lines = process.stderrSoFar().lines().filter(l -> !l.isBlank()).toList();
            if (lines.size() >= n || System.nanoTime() > deadline) {
                assertThat(lines).as("one line per refused client").hasSize(n);
                return lines;
            }
            Thread.sleep(50);
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /** A started qemu-storage-daemon and the loopback port it listens on. */
    private record Qsd(Process process, int port) {
    }

    /** Makes the daemon's command line for a port. */
    private interface QsdCommand {
        ProcessBuilder on(int port);
    }

    /**
     * Starts the daemon on a free port and waits until it listens. The daemon cannot be told to
     * pick a port itself, so the port is probed first; another process may take it before the
     * daemon binds, which the daemon reports as "Address already in use": then it is tried again
     * on another port (at most three times).
     */
    private static Qsd startListening(Path log, QsdCommand command) throws Exception {
        for (int attempt = 1; ; attempt++) {
            int port = freePort();
            Process p = command.on(port).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (true) {
                try (java.net.Socket s = new java.net.Socket(InetAddress.getLoopbackAddress(), port)) {
                    return new Qsd(p, port);
                } catch (IOException notYet) {
                    if (!p.isAlive()) {
                        String out = Files.readString(log);
                        if (attempt < 3 && out.contains("Address already in use")) {
                            break; // the probed port was taken before the daemon bound it
                        }
                        fail("qemu-storage-daemon exited: " + out);
                    }
                    if (System.nanoTime() - deadline > 0) {
                        p.destroyForcibly();
                        fail("qemu-storage-daemon does not listen on " + port + " after 60 s: " + Files.readString(log));
                    }
                    Thread.sleep(50);
                }
            }
        }
    }

    record Outcome(int exit, String output) {
        Outcome expectOk() {
            assertThat(exit).as(output).isZero();
            assertThat(output).as(output).doesNotContain("failed");
            return this;
        }
    }

    /** A tool with a deadline; its output goes to a file, never a pipe that could fill. */
    private Outcome run(String... command) throws IOException, InterruptedException {
        Path log = Files.createTempFile(dir, "tool", ".log");
        Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                throw new AssertionError(String.join(" ", command) + " did not finish within 60 s");
            }
            return new Outcome(p.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
        } finally {
            p.destroyForcibly();
        }
    }
}
