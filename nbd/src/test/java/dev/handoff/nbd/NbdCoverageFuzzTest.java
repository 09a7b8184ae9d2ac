package dev.handoff.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Coverage-guided fuzz targets (Jazzer) over the harnesses of {@link NbdFuzzTest}: raw client
 * bytes against a server connection ({@link ServerSession}), raw server bytes against the client
 * ({@link ClientSession}).
 *
 * <p>In a plain build each target replays its corpus,
 * {@code src/test/resources/dev/handoff/nbd/NbdCoverageFuzzTestInputs/<method>/} (seeds written by
 * {@link #main} from the seeded generators; crashes found by fuzzing land there too). The Surefire
 * configuration runs this class in its own JVM: the Jazzer agent slows every class loaded after it.
 * To fuzz one target: {@code mvn -B -pl nbd -am verify -Pfuzz
 * -Dtest='NbdCoverageFuzzTest#serverSession' -Dsurefire.failIfNoSpecifiedTests=false}.
 */
class NbdCoverageFuzzTest {


    /**
     * Raw client bytes against a server connection. Byte 0 picks the export (bit 0: read-only)
     * and a prefix (bits 1-2: none, fixed newstyle + GO, fixed newstyle + EXPORT_NAME, fixed
     * newstyle + structured replies + base:allocation + GO).
     */
    @FuzzTest(maxDuration = "60s")
    void serverSession(byte[] data) {
        int mode = data.length == 0 ? 0 : data[0];
        byte[] rest = data.length == 0 ? data : java.util.Arrays.copyOfRange(data, 1, data.length);
        byte[] input = switch ((mode >> 1) & 3) {
            case 1 -> NbdServerRobustnessTest.concat(flags(), option(NbdWire.OPT_GO, RawPeer.infoRequest("disk")), rest);
            case 2 -> NbdServerRobustnessTest.concat(flags(), option(NbdWire.OPT_EXPORT_NAME, "disk".getBytes()), rest);
            case 3 -> NbdServerRobustnessTest.concat(flags(), structuredAllocation(),
                    option(NbdWire.OPT_GO, RawPeer.infoRequest("disk")), rest);
            default -> rest;
        };
        ServerSession session = new ServerSession((mode & 1) != 0);
        List<String> failures = session.run(input);
        session.checkOptionRepliesWellFormed();
        assertThat(failures).isEmpty();
    }

    /**
     * Raw server bytes against the client: byte 0 is the number of segments (1-8), then one u16
     * length per segment, then the segments (see {@link ScriptedTransport}).
     */
    @FuzzTest(maxDuration = "60s")
    void clientSession(byte[] data) {
        assertThat(ClientSession.run(decodeSegments(data))).isEmpty();
    }

    /** As {@link #clientSession}, for a client that asked for structured replies and the allocation map. */
    @FuzzTest(maxDuration = "60s")
    void structuredClientSession(byte[] data) {
        assertThat(ClientSession.run(decodeSegments(data), true)).isEmpty();
    }

    static List<byte[]> decodeSegments(byte[] data) {
        ByteBuffer b = ByteBuffer.wrap(data);
        int count = b.hasRemaining() ? 1 + (b.get() & 7) : 1;
        int[] lengths = new int[count];
        for (int i = 0; i < count; i++) {
            lengths[i] = b.remaining() >= 2 ? Short.toUnsignedInt(b.getShort()) : 0;
        }
        List<byte[]> segments = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            byte[] s = new byte[Math.min(lengths[i], b.remaining())];
            b.get(s);
            segments.add(s);
        }
        return segments;
    }

    static byte[] encodeSegments(List<byte[]> segments) {
        int n = Math.min(8, segments.size());
        int total = 1 + 2 * n;
        for (int i = 0; i < n; i++) {
            total += segments.get(i).length;
        }
        ByteBuffer b = ByteBuffer.allocate(total).put((byte) (n - 1));
        for (int i = 0; i < n; i++) {
            b.putShort((short) segments.get(i).length);
        }
        for (int i = 0; i < n; i++) {
            b.put(segments.get(i));
        }
        return b.array();
    }

    private static byte[] flags() {
        return ByteBuffer.allocate(4).putInt(NbdWire.CLIENT_FIXED_NEWSTYLE | NbdWire.CLIENT_NO_ZEROES).array();
    }

    private static byte[] structuredAllocation() {
        return NbdServerRobustnessTest.concat(option(NbdWire.OPT_STRUCTURED_REPLY, new byte[0]),
                option(NbdWire.OPT_SET_META_CONTEXT, RawPeer.metaContextRequest("disk", NbdWire.BASE_ALLOCATION)));
    }

    private static byte[] option(int option, byte[] data) {
        return NbdServerRobustnessTest.optionFrame(option, data);
    }

    /**
     * Writes the regression seeds for the Jazzer targets from the generators above:
     * {@code java -cp ... dev.handoff.nbd.NbdFuzzTest src/test/resources/dev/handoff/nbd/NbdFuzzTestInputs}.
     */
    public static void main(String[] args) throws IOException {
        Path root = Path.of(args[0]);
        Path server = Files.createDirectories(root.resolve("serverSession"));
        Path client = Files.createDirectories(root.resolve("clientSession"));
        Path structuredClient = Files.createDirectories(root.resolve("structuredClientSession"));
        for (long seed = 1; seed < 16; seed += 2) {
            Files.write(structuredClient.resolve("seed-" + seed), encodeSegments(NbdFuzzTest.structuredClientSegments(seed)));
        }
        int written = 0;
        for (long seed = 0; written < 12; seed++) {
            byte[] input = ServerSessionModel.generate(seed, seed % 5 == 0).input();
            if (input.length > 16 << 10) {
                continue; // keep the committed corpus small
            }
            byte mode = (byte) (seed % 5 == 0 ? 1 : 0);
            Files.write(server.resolve("seed-" + seed), NbdServerRobustnessTest.concat(new byte[] {mode}, input));
            Files.write(client.resolve("seed-" + seed), encodeSegments(NbdFuzzTest.clientSegments(seed)));
            written++;
        }
        // Past the handshake (mode 2: fixed newstyle + GO prefix): every command, valid and not.
        byte[] payload = new byte[512];
        java.util.Arrays.fill(payload, (byte) 0x5a);
        byte[] commands = NbdServerRobustnessTest.concat(
                NbdServerRobustnessTest.request(0, NbdWire.CMD_WRITE, 1, 4096, 512), payload,
                NbdServerRobustnessTest.request(NbdWire.CMD_FLAG_FUA, NbdWire.CMD_WRITE, 2, 0, 512), payload,
                NbdServerRobustnessTest.request(0, NbdWire.CMD_READ, 3, 0, 8192),
                NbdServerRobustnessTest.request(0, NbdWire.CMD_FLUSH, 4, 0, 0),
                NbdServerRobustnessTest.request(0, NbdWire.CMD_TRIM, 5, 65536, 65536),
                NbdServerRobustnessTest.request(NbdWire.CMD_FLAG_NO_HOLE, NbdWire.CMD_WRITE_ZEROES, 6, 8192, 4096),
                NbdServerRobustnessTest.request(0, NbdWire.CMD_READ, 7, ServerSession.DEVICE_SIZE - 10, 20),
                NbdServerRobustnessTest.request(0, NbdWire.CMD_WRITE, 8, ServerSession.DEVICE_SIZE - 1, 2),
                new byte[] {1, 2},
                NbdServerRobustnessTest.request(0, 99, 9, 0, 0),
                NbdServerRobustnessTest.request(0, NbdWire.CMD_DISC, 10, 0, 0));
        Files.write(server.resolve("commands"), NbdServerRobustnessTest.concat(new byte[] {2}, commands));
        Files.write(server.resolve("commands-read-only"), NbdServerRobustnessTest.concat(new byte[] {3}, commands));
        // Structured replies and base:allocation (mode 6): block status in range, past the end, empty,
        // with REQ_ONE and unknown flags; CACHE; fast zeroes; DF reads; then the plain commands.
        byte[] structured = NbdServerRobustnessTest.concat(
                NbdServerRobustnessTest.request(0, NbdWire.CMD_BLOCK_STATUS, 21, 0, 1 << 20),
                NbdServerRobustnessTest.request(NbdWire.CMD_FLAG_REQ_ONE, NbdWire.CMD_BLOCK_STATUS, 22, 4096, 8192),
                NbdServerRobustnessTest.request(0, NbdWire.CMD_BLOCK_STATUS, 23, ServerSession.DEVICE_SIZE - 1, 2),
                NbdServerRobustnessTest.request(0, NbdWire.CMD_BLOCK_STATUS, 24, 0, 0),
                NbdServerRobustnessTest.request(NbdWire.CMD_FLAG_DF, NbdWire.CMD_BLOCK_STATUS, 25, 0, 512),
                NbdServerRobustnessTest.request(0, NbdWire.CMD_CACHE, 26, 0, 1 << 20),
                NbdServerRobustnessTest.request(NbdWire.CMD_FLAG_FAST_ZERO, NbdWire.CMD_WRITE_ZEROES, 27, 0, 65536),
                NbdServerRobustnessTest.request(NbdWire.CMD_FLAG_FAST_ZERO | NbdWire.CMD_FLAG_NO_HOLE,
                        NbdWire.CMD_WRITE_ZEROES, 28, 0, 4096),
                NbdServerRobustnessTest.request(NbdWire.CMD_FLAG_DF, NbdWire.CMD_READ, 29, 0, 4096),
                commands);
        Files.write(server.resolve("structured-commands"), NbdServerRobustnessTest.concat(new byte[] {6}, structured));
        Files.write(server.resolve("structured-commands-read-only"),
                NbdServerRobustnessTest.concat(new byte[] {7}, structured));
        // Negotiation without a prefix: structured replies twice, meta contexts before them, malformed
        // and unknown-export meta context queries, then GO.
        byte[] negotiation = NbdServerRobustnessTest.concat(flags(),
                option(NbdWire.OPT_SET_META_CONTEXT, RawPeer.metaContextRequest("disk", NbdWire.BASE_ALLOCATION)),
                option(NbdWire.OPT_STRUCTURED_REPLY, new byte[0]),
                option(NbdWire.OPT_STRUCTURED_REPLY, new byte[0]),
                option(NbdWire.OPT_STRUCTURED_REPLY, new byte[] {1}),
                option(NbdWire.OPT_LIST_META_CONTEXT, RawPeer.metaContextRequest("disk")),
                option(NbdWire.OPT_LIST_META_CONTEXT, RawPeer.metaContextRequest("disk", "base:")),
                option(NbdWire.OPT_SET_META_CONTEXT, RawPeer.metaContextRequest("nope", NbdWire.BASE_ALLOCATION)),
                option(NbdWire.OPT_SET_META_CONTEXT, java.nio.ByteBuffer.allocate(12).putInt(0).putInt(7).putInt(0).array()),
                option(NbdWire.OPT_SET_META_CONTEXT, java.nio.ByteBuffer.allocate(12).putInt(0).putInt(1).putInt(99).array()),
                option(NbdWire.OPT_SET_META_CONTEXT, RawPeer.metaContextRequest("", "x-a:b", NbdWire.BASE_ALLOCATION)),
                option(NbdWire.OPT_GO, RawPeer.infoRequest("disk")),
                NbdServerRobustnessTest.request(0, NbdWire.CMD_BLOCK_STATUS, 1, 0, 1 << 20),
                NbdServerRobustnessTest.request(0, NbdWire.CMD_READ, 2, 0, 512));
        Files.write(server.resolve("meta-contexts"), NbdServerRobustnessTest.concat(new byte[] {0}, negotiation));
    }
}
