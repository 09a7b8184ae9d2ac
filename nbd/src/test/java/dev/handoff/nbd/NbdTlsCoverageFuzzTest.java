package dev.handoff.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Coverage-guided fuzz targets (Jazzer) for the TLS handshake path, over the harnesses of
 * {@link TlsSessions}: raw client bytes against a server that requires TLS, raw server bytes
 * against a client that requires it.
 *
 * <p>In a plain build each target replays its corpus,
 * {@code src/test/resources/dev/handoff/nbd/NbdTlsCoverageFuzzTestInputs/<method>/} (seeds written
 * by {@link #main}, among them a real ClientHello after STARTTLS; crashes found by fuzzing land
 * there too), in the JVM of the coverage fuzz targets. To fuzz one target:
 * {@code mvn -B -pl nbd -am verify -Pfuzz -Dtest='NbdTlsCoverageFuzzTest#tlsServerSession'
 * -Dsurefire.failIfNoSpecifiedTests=false}.
 */
class NbdTlsCoverageFuzzTest {

    /**
     * Raw client bytes against a TLS-requiring server. Byte 0 picks a prefix: none; fixed newstyle
     * flags; flags and STARTTLS; flags, STARTTLS and the first bytes of a real ClientHello.
     */
    @FuzzTest(maxDuration = "60s")
    void tlsServerSession(byte[] data) {
        int mode = data.length == 0 ? 0 : data[0] & 3;
        byte[] rest = data.length == 0 ? data : Arrays.copyOfRange(data, 1, data.length);
        byte[] flags = ByteBuffer.allocate(4).putInt(NbdWire.CLIENT_FIXED_NEWSTYLE | NbdWire.CLIENT_NO_ZEROES).array();
        byte[] startTls = TlsSessions.option(NbdWire.OPT_STARTTLS, new byte[0]);
        byte[] input = switch (mode) {
            case 1 -> NbdServerRobustnessTest.concat(flags, rest);
            case 2 -> NbdServerRobustnessTest.concat(flags, startTls, rest);
            case 3 -> NbdServerRobustnessTest.concat(flags, startTls, helloPrefix(rest.length), rest);
            default -> rest;
        };
        assertThat(TlsSessions.runServer(input, null)).isEmpty();
    }

    /** Raw server bytes against a TLS-requiring client, as segments ({@link NbdCoverageFuzzTest#decodeSegments}). */
    @FuzzTest(maxDuration = "60s")
    void tlsClientSession(byte[] data) {
        assertThat(TlsSessions.runClient(NbdCoverageFuzzTest.decodeSegments(data))).isEmpty();
    }

    /** A ClientHello cut where the fuzzer's bytes take over: they replace its tail. */
    private static byte[] helloPrefix(int fuzzed) {
        byte[] hello = TlsSessions.clientHello();
        return Arrays.copyOf(hello, Math.max(0, hello.length - fuzzed));
    }

    /**
     * Writes the regression seeds: {@code java -cp ... dev.handoff.nbd.NbdTlsCoverageFuzzTest
     * src/test/resources/dev/handoff/nbd/NbdTlsCoverageFuzzTestInputs}.
     */
    public static void main(String[] args) throws IOException {
        Path root = Path.of(args[0]);
        Path server = Files.createDirectories(root.resolve("tlsServerSession"));
        Path client = Files.createDirectories(root.resolve("tlsClientSession"));
        for (long seed = 0; seed < 10; seed++) {
            byte[] input = TlsSessions.generate(seed).input();
            Files.write(server.resolve("seed-" + seed), NbdServerRobustnessTest.concat(new byte[] {0}, input));
            Files.write(client.resolve("seed-" + seed), NbdCoverageFuzzTest.encodeSegments(TlsSessions.clientSegments(seed)));
        }
        // A whole ClientHello after the upgrade: the engine answers, then the client is gone.
        Files.write(server.resolve("client-hello"), NbdServerRobustnessTest.concat(new byte[] {2},
                TlsSessions.clientHello()));
        System.exit(0);
    }
}
