package dev.handoff.nbd;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * Certificates made by the tests with {@code openssl} (Debian package openssl), once per JVM,
 * laid out in directories as QEMU's {@code tls-creds-x509} and libnbd's {@code tls-certificates}
 * read them. Every directory holds a {@code ca-cert.pem}; the names say what else:
 * <ul>
 *   <li>{@link #server()}: the trusted CA, the server's certificate (for {@code localhost} and
 *       {@code 127.0.0.1}; an EC key in SEC 1 form, {@code EC PRIVATE KEY}) and a client's,
 *       {@link #CLIENT_A} (EC key in PKCS#8): one directory for both roles, as QEMU's tests use;</li>
 *   <li>{@link #clientA()}: the trusted CA and client A only; {@link #clientB()}: client
 *       {@link #CLIENT_B}, signed by the same CA (RSA key in PKCS#1, {@code RSA PRIVATE KEY});</li>
 *   <li>{@link #noClientCertificate()}: the CA only;</li>
 *   <li>{@link #rogueClient()}: trusts the real CA, but its client certificate comes from another CA;</li>
 *   <li>{@link #otherCa()}: trusts only the other CA (so no certificate of the real one);</li>
 *   <li>{@link #expiredClient()}, {@link #expiredServer()}: signed by the real CA, expired;</li>
 *   <li>{@link #wrongHostServer()}: a server certificate for {@code elsewhere.example} only;</li>
 *   <li>{@link #mismatchedServerKey()}: the server's certificate with another key.</li>
 * </ul>
 * A missing openssl fails the test under CI (the variable CI is set) and skips it otherwise.
 */
public final class TestPki {
    public static final String CLIENT_A = "CN=client-a,O=Handoff tests";
    public static final String CLIENT_B = "CN=client-b,O=Handoff tests";

    private static TestPki instance;

    public final Path root;

    private TestPki(Path root) {
        this.root = root;
    }

    /** The certificates, made on first use. */
    public static synchronized TestPki get() {
        if (instance == null) {
            String openssl = require("openssl");
            Path root;
            try {
                root = Files.createTempDirectory(Path.of(System.getProperty("java.io.tmpdir")), "pki").toAbsolutePath();
                new Maker(openssl, root).makeAll();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
            instance = new TestPki(root);
        }
        return instance;
    }

    public Path server() {
        return root.resolve("server");
    }

    public Path clientA() {
        return root.resolve("client-a");
    }

    public Path clientB() {
        return root.resolve("client-b");
    }

    public Path noClientCertificate() {
        return root.resolve("no-client-cert");
    }

    public Path rogueClient() {
        return root.resolve("rogue-client");
    }

    public Path otherCa() {
        return root.resolve("other-ca");
    }

    public Path expiredClient() {
        return root.resolve("expired-client");
    }

    public Path expiredServer() {
        return root.resolve("expired-server");
    }

    public Path wrongHostServer() {
        return root.resolve("wrong-host-server");
    }

    public Path mismatchedServerKey() {
        return root.resolve("mismatched-server-key");
    }

    /** The openssl binary; fails under CI, skips otherwise, if it is missing. */
    static String require(String tool) {
        String path = System.getenv().getOrDefault("PATH", "") + File.pathSeparator + "/usr/bin:/usr/local/bin";
        for (String dir : path.split(File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, tool))) {
                return Path.of(dir, tool).toString();
            }
        }
        String message = tool + " is not installed (Debian: apt-get install -y openssl)";
        if (System.getenv("CI") != null) {
            fail(message + "; CI is set, so this test must run");
        }
        Assumptions.abort(message);
        return null;
    }

    /** Runs openssl to make every file, then copies them into the directories. */
    private static final class Maker {
        private final String openssl;
        private final Path work;
        private final Path root;

        Maker(String openssl, Path root) throws IOException {
            this.openssl = openssl;
            this.root = root;
            this.work = Files.createDirectories(root.resolve("work"));
        }

        void makeAll() throws IOException, InterruptedException {
            ca("ca", "/O=Handoff tests/CN=Handoff test CA");
            ca("other-ca", "/O=Somebody else/CN=Another CA");
            ecKeySec1("server-key.pem");
            ecKey("client-a-key.pem");
            rsaKeyPkcs1("client-b-key.pem");
            ecKey("rogue-key.pem");
            ecKey("spare-key.pem");
            String serverExt = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                    + "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n";
            String wrongHostExt = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                    + "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:elsewhere.example\n";
            String clientExt = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                    + "extendedKeyUsage=clientAuth\n";
            certificate("server-cert.pem", "server-key.pem", "/O=Handoff tests/CN=localhost", "ca", serverExt, 30);
            certificate("client-a-cert.pem", "client-a-key.pem", "/O=Handoff tests/CN=client-a", "ca", clientExt, 30);
            certificate("client-b-cert.pem", "client-b-key.pem", "/O=Handoff tests/CN=client-b", "ca", clientExt, 30);
            certificate("rogue-cert.pem", "rogue-key.pem", "/O=Handoff tests/CN=client-a", "other-ca", clientExt, 30);
            certificate("expired-client-cert.pem", "client-a-key.pem", "/O=Handoff tests/CN=client-a", "ca", clientExt, -1);
            certificate("expired-server-cert.pem", "server-key.pem", "/O=Handoff tests/CN=localhost", "ca", serverExt, -1);
            certificate("wrong-host-cert.pem", "server-key.pem", "/O=Handoff tests/CN=elsewhere.example", "ca",
                    wrongHostExt, 30);

            dir("server", "ca", "server-cert.pem", "server-key.pem", "client-a-cert.pem", "client-a-key.pem");
            dir("client-a", "ca", null, null, "client-a-cert.pem", "client-a-key.pem");
            dir("client-b", "ca", null, null, "client-b-cert.pem", "client-b-key.pem");
            dir("no-client-cert", "ca", null, null, null, null);
            dir("rogue-client", "ca", null, null, "rogue-cert.pem", "rogue-key.pem");
            dir("other-ca", "other-ca", null, null, "rogue-cert.pem", "rogue-key.pem");
            dir("expired-client", "ca", null, null, "expired-client-cert.pem", "client-a-key.pem");
            dir("expired-server", "ca", "expired-server-cert.pem", "server-key.pem", null, null);
            dir("wrong-host-server", "ca", "wrong-host-cert.pem", "server-key.pem", null, null);
            dir("mismatched-server-key", "ca", "server-cert.pem", "spare-key.pem", null, null);
        }

        private void ca(String name, String subject) throws IOException, InterruptedException {
            ecKey(name + "-key.pem");
            run(openssl, "req", "-x509", "-new", "-key", name + "-key.pem", "-subj", subject, "-days", "30",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                    "-out", name + "-cert.pem");
        }

        private void ecKey(String file) throws IOException, InterruptedException {
            run(openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", file);
        }

        private void ecKeySec1(String file) throws IOException, InterruptedException {
            run(openssl, "ecparam", "-genkey", "-name", "prime256v1", "-out", file);
        }

        private void rsaKeyPkcs1(String file) throws IOException, InterruptedException {
            run(openssl, "genrsa", "-traditional", "-out", file, "2048");
        }

        private void certificate(String file, String key, String subject, String ca, String extensions, int days)
                throws IOException, InterruptedException {
            Path ext = work.resolve(file + ".ext");
            Files.writeString(ext, extensions);
            run(openssl, "req", "-new", "-key", key, "-subj", subject, "-out", file + ".csr");
            run(openssl, "x509", "-req", "-in", file + ".csr", "-CA", ca + "-cert.pem", "-CAkey", ca + "-key.pem",
                    "-set_serial", Long.toString(System.nanoTime()), "-days", Integer.toString(days),
                    "-extfile", ext.toString(), "-out", file);
        }

        private void dir(String name, String ca, String serverCert, String serverKey, String clientCert, String clientKey)
                throws IOException {
            Path dir = Files.createDirectories(root.resolve(name));
            copy(ca + "-cert.pem", dir.resolve("ca-cert.pem"));
            copy(serverCert, dir.resolve("server-cert.pem"));
            copy(serverKey, dir.resolve("server-key.pem"));
            copy(clientCert, dir.resolve("client-cert.pem"));
            copy(clientKey, dir.resolve("client-key.pem"));
        }

        private void copy(String file, Path to) throws IOException {
            if (file != null) {
                Files.copy(work.resolve(file), to, StandardCopyOption.REPLACE_EXISTING);
            }
        }

        private void run(String... command) throws IOException, InterruptedException {
            List<String> cmd = new ArrayList<>(List.of(command));
            Path log = work.resolve("openssl.log");
            Process p = new ProcessBuilder(cmd).directory(work.toFile()).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                fail(String.join(" ", cmd) + " did not finish within 60 s");
            }
            if (p.exitValue() != 0) {
                fail(String.join(" ", cmd) + " exited " + p.exitValue() + ":\n"
                        + Files.readString(log, StandardCharsets.UTF_8));
            }
        }
    }
}
