package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.handoff.nbd.TestPki;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code handoff serve} as libnbd's and QEMU's tools expect it: the base:allocation map
 * ({@code nbdinfo --map}, {@code qemu-img map}), sparse copies out of and into an export with
 * {@code nbdcopy} and {@code qemu-img convert} (the copy as sparse as its source: {@code du} within
 * one 64 KiB granularity per extent), {@code qemu-io} on the default export, all of it over TLS
 * too, a mirror job's export mapping the device guest writes land on (the source, then after the
 * pivot the target), and a client over {@code --max-connections} told why. Every URI here names no export: the
 * default export is the one served.
 */
@Timeout(300)
class NbdParityIT {
    private static final long SIZE = 64L << 20;
    private static final int GRANULARITY = 64 << 10;
    private static final long[] EXTENTS = {(1L << 20) + 12288, 7L << 20, (20L << 20) + 4096, (45L << 20) + 8192};
    private static final Pattern MAP_LINE = Pattern.compile("^\\s*(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(.*)$");
    private static final Pattern TLS_PORT = Pattern.compile("as nbds://127\\.0\\.0\\.1:(\\d+)/disk");

    @TempDir
    Path dir;

    @Test
    void sparseImagesStaySparseThroughNbdinfoNbdcopyQemuImgAndQemuIo() throws Exception {
        for (String tool : List.of("nbdinfo", "nbdcopy", "qemu-img", "qemu-io")) {
            QemuTools.require(tool);
        }
        Path src = sparseImage(dir.resolve("src.img"));
        Path empty = dir.resolve("empty.img");
        try (RandomAccessFile f = new RandomAccessFile(empty.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        Path full = fullImage(dir.resolve("full.img"));
        long bound = LoopDevice.allocated(src) + EXTENTS.length * (long) GRANULARITY;
        try (Cli.Running source = Cli.start(dir, "serve", "src.img", "--nbd", "unix:src.sock", "--read-only");
             Cli.Running emptyTarget = Cli.start(dir, "serve", "empty.img", "--nbd", "unix:empty.sock");
             Cli.Running fullTarget = Cli.start(dir, "serve", "full.img", "--nbd", "unix:full.sock")) {
            source.awaitLine("serving src.img");
            emptyTarget.awaitLine("serving empty.img");
            fullTarget.awaitLine("serving full.img");
            String from = "nbd+unix:///?socket=" + dir.resolve("src.sock");

            assertMapIsTheSourcesExtents(run(Map.of(), "nbdinfo", "--map", from).expectOk().output());
            String qemuMap = run(Map.of(), "qemu-img", "map", "--output=json", "-f", "raw", from).expectOk().output();
            assertThat(Pattern.compile("\"data\": true").matcher(qemuMap).results().count())
                    .as("qemu-img map: one data extent per written block\n%s", qemuMap).isEqualTo(EXTENTS.length);

            // Out of the export: nbdcopy and qemu-img convert.
            Path copy = dir.resolve("copy.img");
            run(Map.of(), "nbdcopy", from, copy.toString()).expectOk();
            assertSameAndSparse(src, copy, bound);
            Path converted = dir.resolve("converted.img");
            run(Map.of(), "qemu-img", "convert", "-f", "raw", "-O", "raw", from, converted.toString()).expectOk();
            assertSameAndSparse(src, converted, bound);

            // Into an export: a fresh sparse target (fast zeroes succeed on its holes), and one full of
            // old data (fast zeroes refused: the tool zeroes, and the server punches holes).
            run(Map.of(), "nbdcopy", src.toString(), "nbd+unix:///?socket=" + dir.resolve("empty.sock")).expectOk();
            run(Map.of(), "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src.toString(),
                    "nbd+unix:///?socket=" + dir.resolve("full.sock")).expectOk();
            run(Map.of(), "qemu-io", "-f", "raw", "nbd+unix:///?socket=" + dir.resolve("full.sock"),
                    "-c", "read -P 0 0 64k", "-c", "read -P 0 " + (SIZE - 65536) + " 64k").expectOk();
            stop(source, emptyTarget, fullTarget);
        }
        assertSameAndSparse(src, empty, bound);
        assertSameAndSparse(src, full, bound);
    }

    @Test
    void overTlsTheMapAndSparseCopiesBothWaysWorkAlike() throws Exception {
        for (String tool : List.of("nbdinfo", "nbdcopy", "qemu-img")) {
            QemuTools.require(tool);
        }
        TestPki pki = TestPki.get();
        Path src = sparseImage(dir.resolve("src.img"));
        Path target = dir.resolve("target.img");
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        long bound = LoopDevice.allocated(src) + EXTENTS.length * (long) GRANULARITY;
        String certs = "?tls-certificates=" + pki.clientA();
        try (Cli.Running source = Cli.start(dir, "serve", "src.img", "--nbd", "tcp:127.0.0.1:0", "--read-only",
                "--tls-creds", pki.server().toString());
             Cli.Running sink = Cli.start(dir, "serve", "target.img", "--nbd", "tcp:127.0.0.1:0",
                     "--tls-creds", pki.server().toString())) {
            int from = port(source.awaitLine("serving src.img"));
            int to = port(sink.awaitLine("serving target.img"));

            assertMapIsTheSourcesExtents(run(Map.of(), "nbdinfo", "--map", "nbds://127.0.0.1:" + from + certs)
                    .expectOk().output());
            Path copy = dir.resolve("copy.img");
            run(Map.of(), "nbdcopy", "nbds://127.0.0.1:" + from + certs, copy.toString()).expectOk();
            assertSameAndSparse(src, copy, bound);
            Path converted = dir.resolve("converted.img");
            run(Map.of(), "qemu-img", "convert", "--object", "tls-creds-x509,id=tls0,endpoint=client,dir=" + pki.clientA(),
                    "--image-opts", "driver=raw,file.driver=nbd,file.host=127.0.0.1,file.port=" + from
                            + ",file.tls-creds=tls0", "-O", "raw", converted.toString()).expectOk();
            assertSameAndSparse(src, converted, bound);
            run(Map.of(), "nbdcopy", src.toString(), "nbds://127.0.0.1:" + to + certs).expectOk();
            stop(source, sink);
        }
        assertSameAndSparse(src, target, bound);
    }

    @Test
    void aClientOverMaxConnectionsIsToldWhyAndServeSaysSoInOneLine() throws Exception {
        QemuTools.require("nbdinfo");
        Path src = sparseImage(dir.resolve("src.img"));
        Cli.Result zero = Cli.run(dir, "serve", "src.img", "--nbd", "unix:x.sock", "--max-connections", "0");
        assertThat(zero.exit()).as(zero.toString()).isEqualTo(ExitCodes.USAGE);
        assertThat(zero.errLines()).singleElement().asString()
                .isEqualTo("handoff serve: invalid value for option '--max-connections': 0 (at least 1)");

        Path socket = dir.resolve("one.sock");
        try (Cli.Running serve = Cli.start(dir, "serve", "src.img", "--nbd", "unix:one.sock", "--read-only",
                "--max-connections", "1")) {
            serve.awaitLine("serving src.img");
            try (SocketChannel holder = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                holder.connect(UnixDomainSocketAddress.of(socket));
                ByteBuffer greeting = ByteBuffer.allocate(18);
                while (greeting.hasRemaining() && holder.read(greeting) >= 0) {
                    // the one connection served, held open in its handshake
                }
                // libnbd shows the server's message in its debug output only; its error names the refusal.
                Outcome over = run(Map.of("LIBNBD_DEBUG", "1"), "nbdinfo", "nbd+unix:///?socket=" + socket);
                assertThat(over.exit()).as(over.output()).isNotZero();
                assertThat(over.output()).contains("too many connections: this server serves at most 1 at once");
                List<String> lines = awaitStderrLines(serve, 1);
                assertThat(lines.get(0)).matches("handoff serve: nbd client .*: refused: too many connections: this"
                        + " server serves at most 1 at once; try again later");
            }
            // Once the held connection is gone, the next client is served.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            Outcome served;
            while ((served = run(Map.of(), "nbdinfo", "--size", "nbd+unix:///?socket=" + socket)).exit() != 0) {
                assertThat(System.nanoTime()).as(served.output()).isLessThan(deadline);
                Thread.sleep(100);
            }
            assertThat(served.output().strip()).isEqualTo(Long.toString(SIZE));
            stop(serve);
        }
        assertThat(src).exists();
    }

    @Test
    void aMirrorJobsExportMapsTheDeviceGuestWritesLandOnBeforeAndAfterThePivot() throws Exception {
        for (String tool : List.of("nbdinfo", "qemu-io")) {
            QemuTools.require(tool);
        }
        sparseImage(dir.resolve("src.img"));
        String export = "nbd+unix:///?socket=" + dir.resolve("m.sock");
        try (Cli.Running serve = Cli.start(dir, "serve", "src.img", "--nbd", "unix:m.sock", "--control", "m.qmp")) {
            serve.awaitLine("serving src.img");
            try (QmpClient qmp = QmpClient.connect(dir.resolve("m.qmp"), serve)) {
                qmp.execute("qmp_capabilities");
                JsonNode started = qmp.execute("drive-mirror", "{\"job-id\":\"m\",\"device\":\"disk\",\"target\":\""
                        + dir.resolve("target.img") + "\",\"format\":\"raw\",\"sync\":\"full\",\"mode\":\"absolute-paths\"}");
                assertThat(started.has("return")).as(started.toString()).isTrue();
                qmp.awaitEvent("BLOCK_JOB_READY");
                // While the job runs, the export is the job's guest device: the source's map.
                assertMapIsTheSourcesExtents(run(Map.of(), "nbdinfo", "--map", export).expectOk().output());
                run(Map.of(), "qemu-io", "-f", "raw", export, "-c", "write -P 0x55 30M 64k").expectOk();
                JsonNode completed = qmp.execute("block-job-complete", "{\"device\":\"m\"}");
                assertThat(completed.has("return")).as(completed.toString()).isTrue();
                qmp.awaitEvent("BLOCK_JOB_COMPLETED");
                // After the pivot guest writes land on the target only; the map is the target's.
                run(Map.of(), "qemu-io", "-f", "raw", export, "-c", "write -P 0x66 40M 4k").expectOk();
                String map = run(Map.of(), "nbdinfo", "--map", export).expectOk().output();
                List<long[]> data = dataExtents(map);
                for (long at : new long[] {EXTENTS[0], EXTENTS[3], 30L << 20, (30L << 20) + 61440, 40L << 20}) {
                    assertThat(data).as("the block at %d is data after the pivot\n%s", at, map)
                            .anyMatch(e -> e[0] <= at && at + 4096 <= e[0] + e[1]);
                }
                qmp.execute("quit");
            }
            assertThat(serve.waitFor().exit()).isZero();
        }
    }

    /* ---------------- helpers ---------------- */

    /** A sparse image: 4 KiB of data at each of {@link #EXTENTS}, the rest holes. */
    private static Path sparseImage(Path p) throws IOException {
        SplittableRandom r = new SplittableRandom(71);
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            for (long at : EXTENTS) {
                byte[] b = new byte[4096];
                r.nextBytes(b);
                ch.write(ByteBuffer.wrap(b), at);
            }
        }
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        return p;
    }

    /** A file of {@link #SIZE} bytes, every block allocated and holding data. */
    private static Path fullImage(Path p) throws IOException {
        SplittableRandom r = new SplittableRandom(72);
        byte[] b = new byte[1 << 20];
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            for (long at = 0; at < SIZE; at += b.length) {
                r.nextBytes(b);
                ch.write(ByteBuffer.wrap(b), at);
            }
        }
        return p;
    }

    /** nbdinfo's map: every written block inside a data extent, and data nowhere else but near them. */
    private static void assertMapIsTheSourcesExtents(String map) {
        List<long[]> data = dataExtents(map);
        for (long at : EXTENTS) {
            assertThat(data).as("the block at %d is data\n%s", at, map)
                    .anyMatch(e -> e[0] <= at && at + 4096 <= e[0] + e[1]);
        }
        assertThat(data.stream().mapToLong(e -> e[1]).sum()).as("data only where written\n%s", map)
                .isLessThanOrEqualTo(EXTENTS.length * (long) GRANULARITY);
    }

    /** The data extents {offset, length} of nbdinfo's map, checked to cover the image in order, without gaps. */
    private static List<long[]> dataExtents(String map) {
        List<long[]> data = new ArrayList<>();
        long covered = 0;
        for (String line : map.strip().split("\\R")) {
            Matcher m = MAP_LINE.matcher(line);
            assertThat(m.matches()).as("map line '%s' in\n%s", line, map).isTrue();
            long offset = Long.parseLong(m.group(1));
            long length = Long.parseLong(m.group(2));
            assertThat(offset).as("extents in order, no gap\n%s", map).isEqualTo(covered);
            covered += length;
            int type = Integer.parseInt(m.group(3));
            if (type == 0) {
                assertThat(m.group(4)).isEqualTo("data");
                data.add(new long[] {offset, length});
            } else {
                assertThat(type).isEqualTo(3);
                assertThat(m.group(4)).isEqualTo("hole,zero");
            }
        }
        assertThat(covered).isEqualTo(SIZE);
        return data;
    }

    private static void assertSameAndSparse(Path source, Path copy, long bound) throws Exception {
        assertThat(QemuTools.compare(source, copy)).as("%s holds %s's bytes", copy.getFileName(), source.getFileName())
                .isZero();
        assertThat(LoopDevice.allocated(copy)).as("%s as sparse as its source, to a granularity per extent",
                copy.getFileName()).isLessThanOrEqualTo(bound);
    }

    private static int port(String servingLine) {
        Matcher m = TLS_PORT.matcher(servingLine);
        assertThat(m.find()).as(servingLine).isTrue();
        return Integer.parseInt(m.group(1));
    }

    private static void stop(Cli.Running... serves) throws Exception {
        for (Cli.Running s : serves) {
            s.signal("TERM");
        }
        for (Cli.Running s : serves) {
            Cli.Result r = s.waitFor();
            assertThat(r.exit()).as(r.toString()).isIn(0, 143);
        }
    }

    private static List<String> awaitStderrLines(Cli.Running process, int n) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            List<String> lines = process.stderrSoFar().lines().filter(l -> !l.isBlank()).toList();
            if (lines.size() >= n || System.nanoTime() > deadline) {
                assertThat(lines).hasSize(n);
                return lines;
            }
            Thread.sleep(50);
        }
    }

    record Outcome(int exit, String output) {
        Outcome expectOk() {
            assertThat(exit).as(output).isZero();
            return this;
        }
    }

    /** A tool with a deadline and extra environment; its output goes to a file, never a pipe that could fill. */
    private Outcome run(Map<String, String> env, String... command) throws IOException, InterruptedException {
        Path log = Files.createTempFile(dir, "tool", ".log");
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile());
        pb.environment().putAll(env);
        Process p = pb.start();
        try {
            if (!p.waitFor(90, TimeUnit.SECONDS)) {
                throw new AssertionError(String.join(" ", command) + " did not finish within 90 s");
            }
            return new Outcome(p.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
        } finally {
            p.destroyForcibly();
        }
    }
}
