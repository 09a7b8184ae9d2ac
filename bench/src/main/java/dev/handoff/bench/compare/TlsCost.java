package dev.handoff.bench.compare;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * What TLS costs an NBD export: {@code fio} (its {@code nbd} engine, which is libnbd, so the client
 * is neither Handoff's nor QEMU's) writes 4 KiB at random offsets at queue depth 1 and 16 through
 * {@code handoff serve} and through {@code qemu-storage-daemon}, each over TCP on loopback, with
 * TLS and without, in one run. Each round runs every server in both settings, the order of the two
 * settings alternating from round to round (A B, then B A), and each figure is the median over
 * the rounds; the ratio TLS / plain is taken within each system. Each server gets 5 s of
 * unmeasured writing first (a JVM's JIT compiles JSSE's paths in that time; QEMU needs none, but
 * gets the same). TLS is TLS 1.3 with the test certificates this class makes with openssl (EC
 * P-256, as a deployment would likely choose).
 */
final class TlsCost {
    private static final int[] DEPTHS = {1, 16};
    private static final String[] SYSTEMS = {"Handoff", "QEMU"};
    /** Unmeasured writing at the deepest queue right after each server starts. */
    private static final int WARM_UP_SECONDS = 5;

    /** One fio run: IOPS and completion latency percentiles in µs. */
    record Run(String system, int depth, boolean tls, double iops, double p50Micros, double p99Micros) {
    }

    private final PrintStream out;
    private final Path work;
    private final Path image;
    private final long size;
    private final List<String> java;
    private final Path handoffJar;
    private final int rounds;
    private final int seconds;
    private final List<Run> runs = new ArrayList<>();
    private Path pki;
    /** A home directory whose .pki/libnbd holds the client's credentials, for fio's libnbd. */
    private Path clientHome;
    private int failures;

    TlsCost(PrintStream out, Path work, Path image, long size, List<String> java, Path handoffJar, int rounds,
            int seconds) {
        this.out = out;
        this.work = work;
        this.image = image;
        this.size = size;
        this.java = java;
        this.handoffJar = handoffJar;
        this.rounds = rounds;
        this.seconds = seconds;
    }

    /** Runs every round; returns the number of measurements that failed. */
    int run() throws Exception {
        pki = makeCertificates(work.resolve("pki"));
        clientHome = clientHome();
        try {
            rounds();
        } finally {
            deleteTree(clientHome);
        }
        out.println();
        return failures;
    }

    private void rounds() {
        for (int r = 1; r <= rounds; r++) {
            for (String system : SYSTEMS) {
                boolean[] order = r % 2 == 1 ? new boolean[] {false, true} : new boolean[] {true, false};
                for (boolean tls : order) {
                    out.println("TLS round " + r + "/" + rounds + ", " + system + (tls ? " with TLS" : " plain") + " (load "
                            + Host.load() + ")");
                    try {
                        measure(system, tls);
                    } catch (Exception e) {
                        failures++;
                        out.println("  FAILED: " + e);
                    }
                }
            }
        }
    }

    /**
     * fio's engine does not let libnbd read {@code tls-certificates=} from the URI, so libnbd takes
     * the client's credentials from its default place: {@code $HOME/.pki/libnbd}, except for root,
     * whose place is {@code /etc/pki/libnbd}. So fio runs with a home made here, and, under root,
     * as {@code nobody}; the home is outside the (root-only) work directory.
     */
    private Path clientHome() throws IOException {
        Path home = Files.createTempDirectory(work.getParent(), "handoff-fio-home-");
        Path libnbd = Files.createDirectories(home.resolve(".pki/libnbd"));
        for (String f : List.of("ca-cert.pem", "client-cert.pem", "client-key.pem")) {
            Files.copy(pki.resolve(f), libnbd.resolve(f));
            Files.setPosixFilePermissions(libnbd.resolve(f), PosixFilePermissions.fromString("rw-r--r--"));
        }
        for (Path d : List.of(home, home.resolve(".pki"), libnbd)) {
            Files.setPosixFilePermissions(d, PosixFilePermissions.fromString("rwxr-xr-x"));
        }
        return home;
    }

    private static boolean root() {
        return "root".equals(System.getProperty("user.name"));
    }

    private static void deleteTree(Path dir) throws IOException {
        try (var walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    private void measure(String system, boolean tls) throws Exception {
        int port = freePort();
        try (Child server = system.equals("Handoff") ? handoff(port, tls) : qemu(port, tls)) {
            awaitListening(port, server);
            String uri = (tls ? "nbds" : "nbd") + "://127.0.0.1:" + port + "/disk";
            // A server runs for days: warm its JIT (JSSE is a lot of code) before measuring.
            fio(system, DEPTHS[DEPTHS.length - 1], tls, uri, WARM_UP_SECONDS);
            for (int depth : DEPTHS) {
                Run r = fio(system, depth, tls, uri, seconds);
                runs.add(r);
                out.printf(Locale.ROOT, "  QD%-2d %8.0f IOPS  p50 %s  p99 %s%n", depth, r.iops(), Stats.micros(r.p50Micros()),
                        Stats.micros(r.p99Micros()));
            }
        }
    }

    private Child handoff(int port, boolean tls) throws IOException {
        List<String> cmd = new ArrayList<>(java);
        cmd.addAll(List.of("-jar", handoffJar.toString(), "serve", image.toString(), "--nbd", "tcp:127.0.0.1:" + port,
                "--owner", "bench"));
        if (tls) {
            cmd.addAll(List.of("--tls-creds", pki.toString()));
        }
        return Child.start("handoff serve", cmd, work.resolve("tls-serve-" + port + ".log"));
    }

    private Child qemu(int port, boolean tls) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("qemu-storage-daemon",
                "--blockdev", "driver=file,node-name=file0,filename=" + image,
                "--blockdev", "driver=raw,node-name=disk0,file=file0"));
        String server = "addr.type=inet,addr.host=127.0.0.1,addr.port=" + port;
        if (tls) {
            cmd.addAll(List.of("--object", "tls-creds-x509,id=tls0,endpoint=server,verify-peer=on,dir=" + pki));
            server += ",tls-creds=tls0";
        }
        cmd.addAll(List.of("--nbd-server", server, "--export", "type=nbd,id=exp0,node-name=disk0,name=disk,writable=on"));
        return Child.start("qemu-storage-daemon", cmd, work.resolve("tls-qsd-" + port + ".log"));
    }

    /** One fio run of {@code seconds} after a second of ramp-up; its JSON report parsed. */
    private Run fio(String system, int depth, boolean tls, String uri, int seconds) throws Exception {
        List<String> cmd = new ArrayList<>();
        if (root()) {
            cmd.addAll(List.of("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"));
        }
        cmd.addAll(List.of("fio", "--name=tls", "--ioengine=nbd", "--uri=" + uri, "--rw=randwrite", "--bs=4k",
                "--iodepth=" + depth, "--size=" + size, "--time_based", "--runtime=" + seconds, "--ramp_time=1",
                "--output-format=json"));
        Path log = work.resolve("fio.log");
        int code = Child.run("fio", cmd, log, Map.of("HOME", clientHome.toString()), Duration.ofSeconds(seconds + 60L));
        String output = Files.readString(log);
        if (code != 0 || output.indexOf('{') < 0) {
            throw new IOException("fio exited " + code + ": " + output);
        }
        JsonNode write = new ObjectMapper().readTree(output.substring(output.indexOf('{'))).path("jobs").path(0)
                .path("write");
        JsonNode p = write.path("clat_ns").path("percentile");
        if (write.path("iops").asDouble() <= 0) {
            throw new IOException("fio wrote nothing through " + uri + ": " + output);
        }
        return new Run(system, depth, tls, write.path("iops").asDouble(), p.path("50.000000").asDouble() / 1e3,
                p.path("99.000000").asDouble() / 1e3);
    }

    /** Medians per system, depth and setting, and the ratios TLS / plain within each system. */
    void table() {
        out.println("== NBD over TLS: fio (libnbd) 4 KiB random writes over TCP on loopback, TLS 1.3 vs plain; medians of "
                + rounds + " rounds of " + seconds + " s ==");
        out.printf("%-8s %3s | %9s %8s %8s | %9s %8s %8s | %9s %9s%n", "system", "QD", "plain", "p50", "p99", "TLS",
                "p50", "p99", "IOPS", "p99");
        out.printf("%-8s %3s | %9s %8s %8s | %9s %8s %8s | %9s %9s%n", "", "", "IOPS", "", "", "IOPS", "", "",
                "TLS/plain", "TLS/plain");
        for (String system : SYSTEMS) {
            for (int depth : DEPTHS) {
                List<Run> plain = of(system, depth, false);
                List<Run> tls = of(system, depth, true);
                double plainIops = Stats.median(plain, Run::iops);
                double tlsIops = Stats.median(tls, Run::iops);
                out.printf(Locale.ROOT, "%-8s %3d | %9.0f %8s %8s | %9.0f %8s %8s | %9s %9s%n", system, depth,
                        plainIops, Stats.micros(Stats.median(plain, Run::p50Micros)),
                        Stats.micros(Stats.median(plain, Run::p99Micros)), tlsIops,
                        Stats.micros(Stats.median(tls, Run::p50Micros)), Stats.micros(Stats.median(tls, Run::p99Micros)),
                        Stats.ratio(tlsIops / plainIops),
                        Stats.ratio(Stats.median(tls, Run::p99Micros) / Stats.median(plain, Run::p99Micros)));
            }
        }
        out.println("ratio of medians, Handoff/QEMU with TLS: " + ratioLine());
        out.println();
    }

    private String ratioLine() {
        StringBuilder s = new StringBuilder();
        for (int depth : DEPTHS) {
            double h = Stats.median(of("Handoff", depth, true), Run::iops);
            double q = Stats.median(of("QEMU", depth, true), Run::iops);
            s.append("QD").append(depth).append(" IOPS ").append(Stats.ratio(h / q)).append("  ");
        }
        return s.toString().strip();
    }

    private List<Run> of(String system, int depth, boolean tls) {
        return runs.stream().filter(r -> r.system().equals(system) && r.depth() == depth && r.tls() == tls).toList();
    }

    /** A CA, and one directory holding it with a server (localhost, 127.0.0.1) and a client certificate. */
    private Path makeCertificates(Path dir) throws IOException, InterruptedException {
        Files.createDirectories(dir);
        Path scratch = Files.createDirectories(work.resolve("pki-work"));
        openssl(scratch, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca-key.pem");
        openssl(scratch, "req", "-x509", "-new", "-key", "ca-key.pem", "-subj", "/CN=bench CA", "-days", "2",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
                "-out", dir.resolve("ca-cert.pem").toString());
        for (String role : List.of("server", "client")) {
            Path key = dir.resolve(role + "-key.pem");
            openssl(scratch, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key.toString());
            Path ext = Files.writeString(scratch.resolve(role + ".ext"), "basicConstraints=critical,CA:FALSE\n"
                    + "keyUsage=critical,digitalSignature\nextendedKeyUsage=" + role + "Auth\n"
                    + (role.equals("server") ? "subjectAltName=DNS:localhost,IP:127.0.0.1\n" : ""));
            openssl(scratch, "req", "-new", "-key", key.toString(), "-subj", "/CN=bench-" + role, "-out", role + ".csr");
            openssl(scratch, "x509", "-req", "-in", role + ".csr", "-CA", dir.resolve("ca-cert.pem").toString(),
                    "-CAkey", "ca-key.pem", "-set_serial", Long.toString(System.nanoTime()), "-days", "2",
                    "-extfile", ext.toString(), "-out", dir.resolve(role + "-cert.pem").toString());
        }
        return dir;
    }

    private void openssl(Path dir, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("openssl"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("openssl.log").toFile()).start();
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            p.destroyForcibly();
            throw new IOException("openssl " + String.join(" ", args) + " failed: "
                    + Files.readString(dir.resolve("openssl.log")));
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private static void awaitListening(int port, Child server) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (true) {
            try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
                return;
            } catch (IOException notYet) {
                if (!server.isAlive() || System.nanoTime() > deadline) {
                    throw new IOException(server + " did not listen on port " + port + ": " + server.output());
                }
                Thread.sleep(50);
            }
        }
    }
}
