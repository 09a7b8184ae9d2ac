package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Hostile and broken clients, one test per case. Each one ends with the protocol's error or a
 * closed connection, never a crash, a hang, an allocation of the claimed size or a request
 * outside the export; and the server keeps serving other clients afterwards (checked in
 * {@link #stop()}). Each check is shown to catch the server bug it exists for by a broken
 * variant in the mutant catalog ({@code mutants/catalog.json}).
 */
@Timeout(60)
class NbdServerRobustnessTest {
    private static final long SIZE = 1 << 20;
    private static final Duration CLOSE = Duration.ofSeconds(10);
    private TestServer server;

    @AfterEach
    void stop() throws Exception {
        if (server == null) {
            return;
        }
        try {
            // The server survived: a well-behaved client still gets served.
            try (NbdDevice client = server.client()) {
                client.write(SIZE - 1, ByteBuffer.wrap(new byte[] {1}));
            }
            assertThat(server.device.violations()).as("requests the server should never have made").isEmpty();
            assertThat(server.allocations.violations()).as("allocations of claimed sizes").isEmpty();
        } finally {
            server.close();
        }
    }

    /* ---------------- handshake ---------------- */

    @Test
    void unknownClientFlagsCloseTheConnection() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer()) {
            peer.greeting();
            peer.clientFlags(1 << 7);
            assertThat(peer.closedWithin(CLOSE)).isTrue();
        }
    }

    @Test
    void badOptionMagicClosesTheConnection() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().hello()) {
            peer.send(ByteBuffer.allocate(16).putLong(0x1122334455667788L).putInt(OPT_GO).putInt(0).flip());
            assertThat(peer.closedWithin(CLOSE)).isTrue();
        }
    }

    @Test
    void optionsOtherThanExportNameWithoutFixedNewstyleCloseTheConnection() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer()) {
            peer.greeting();
            peer.clientFlags(0);
            peer.option(OPT_GO, RawPeer.infoRequest("disk"));
            assertThat(peer.closedWithin(CLOSE)).isTrue();
        }
    }

    @Test
    void exportNameForAnUnknownExportClosesTheConnection() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().hello()) {
            peer.option(OPT_EXPORT_NAME, "nope".getBytes(StandardCharsets.UTF_8));
            assertThat(peer.closedWithin(CLOSE)).isTrue();
        }
    }

    @Test
    void malformedGoDataIsErrInvalidAndNegotiationGoesOn() throws Exception {
        server = TestServer.start(SIZE);
        List<byte[]> malformed = List.of(
                new byte[] {0, 0, 0},                                                    // too short
                ByteBuffer.allocate(8).putInt(100).putShort((short) 0).array(),          // name past the data
                ByteBuffer.allocate(10).putInt(0).putShort((short) 5).array(),           // info count mismatch
                ByteBuffer.allocate(8).putInt(2).put(new byte[] {(byte) 0xC3, 0x28}).array(), // not UTF-8
                ByteBuffer.allocate(9).putInt(3).put(new byte[] {'a', 0, 'b'}).array(),  // NUL in the name
                ByteBuffer.allocate(4 + 5000 + 2).putInt(5000).array());                 // name > 4096 bytes
        try (RawPeer peer = server.peer().hello()) {
            for (byte[] data : malformed) {
                peer.option(OPT_GO, data);
                assertThat(peer.optionAnswer().type()).isEqualTo(REP_ERR_INVALID);
            }
            peer.option(OPT_LIST, new byte[] {1});
            assertThat(peer.optionAnswer().type()).isEqualTo(REP_ERR_INVALID);
            assertThat(peer.go("disk")[0]).isEqualTo(SIZE);
        }
    }

    @Test
    void oversizedOptionDataClosesTheConnectionWithoutAllocatingIt() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().hello()) {
            peer.send(ByteBuffer.allocate(16).putLong(IHAVEOPT).putInt(OPT_GO).putInt(0x7FFF_FFFF).flip());
            sendIgnoringClose(peer, new byte[4096]);
            assertThat(peer.closedWithin(CLOSE)).isTrue();
        }
        assertThat(server.allocations.largest()).isLessThanOrEqualTo(MAX_OPTION_DATA);
    }

    @Test
    void anOptionFloodClosesTheConnection() throws Exception {
        server = TestServer.start(SIZE, false, b -> b.maxOptions(10));
        try (RawPeer peer = server.peer().hello()) {
            for (int i = 0; i < 10; i++) {
                peer.option(0x4242, new byte[0]);
                assertThat(peer.optionAnswer().type()).isEqualTo(REP_ERR_UNSUP);
            }
            peer.option(0x4242, new byte[0]);
            assertThat(peer.closedWithin(CLOSE)).isTrue();
        }
    }

    @Test
    void truncatedFramesAndEarlyDisconnectsAtEveryStageLeaveTheServerServing() throws Exception {
        server = TestServer.start(SIZE);
        byte[] goFrame = optionFrame(OPT_GO, RawPeer.infoRequest("disk"));
        List<byte[]> prefixes = new ArrayList<>();
        prefixes.add(new byte[0]);                                  // connect and leave
        prefixes.add(new byte[] {0, 0});                           // half the client flags
        prefixes.add(clientFlags());                               // flags, then leave
        prefixes.add(concat(clientFlags(), Arrays.copyOf(goFrame, 10)));        // half an option header
        prefixes.add(concat(clientFlags(), Arrays.copyOf(goFrame, 20)));        // header, half the data
        byte[] negotiated = concat(clientFlags(), goFrame);
        prefixes.add(negotiated);                                  // GO, then leave without reading
        prefixes.add(concat(negotiated, Arrays.copyOf(request(0, CMD_READ, 1, 0, 512), 13))); // half a request
        for (byte[] prefix : prefixes) {
            try (RawPeer peer = server.peer()) {
                peer.send(prefix);
            }
        }
        waitForNoConnections();
        assertThat(server.device.writes.get()).isZero();
    }

    @Test
    void silentClientsAreDisconnectedAfterTheHandshakeTimeout() throws Exception {
        // 2 s: the well-behaved client of stop() must also finish its handshake within it, on a loaded machine
        // (300 ms was not always enough there).
        server = TestServer.start(SIZE, false, b -> b.timeouts(Duration.ofSeconds(2), Duration.ofSeconds(60)));
        long t0 = System.nanoTime(); // before the connect: the server's clock for this client starts after it
        try (RawPeer peer = server.peer()) {
            peer.greeting(); // (read however late the machine lets this thread run)
            assertThat(peer.closedWithin(CLOSE)).isTrue();
            assertThat(Duration.ofNanos(System.nanoTime() - t0)).isGreaterThanOrEqualTo(Duration.ofMillis(1_500));
        }
    }

    @Test
    void aClientOverTheConnectionLimitGetsAnNbdErrorNotASilentDrop() throws Exception {
        java.util.List<String> refused = new java.util.concurrent.CopyOnWriteArrayList<>();
        server = TestServer.start(SIZE, false, b -> b.maxConnections(2).onRefused(refused::add));
        try (RawPeer a = server.peer(); RawPeer b = server.peer()) {
            a.greeting();
            b.greeting();
            try (RawPeer c = server.peer().hello()) {
                for (int option : new int[] {OPT_LIST, OPT_INFO, OPT_GO}) {
                    c.option(option, option == OPT_LIST ? new byte[0] : RawPeer.infoRequest("disk"));
                    RawPeer.OptionAnswer answer = c.optionAnswer();
                    assertThat(answer.type()).isEqualTo(REP_ERR_POLICY);
                    assertThat(answer.text()).isEqualTo("too many connections: this server serves at most 2 at once;"
                            + " try again later");
                }
                c.option(OPT_ABORT, new byte[0]);
                assertThat(c.optionAnswer().type()).isEqualTo(REP_ACK);
                assertThat(c.closedWithin(CLOSE)).isTrue();
            }
            try (RawPeer d = server.peer().hello()) {
                d.option(OPT_EXPORT_NAME, "disk".getBytes(StandardCharsets.UTF_8)); // cannot carry an error: hang-up
                assertThat(d.closedWithin(CLOSE)).isTrue();
            }
            assertThatThrownBy(() -> NbdDevice.open(server.uri())).hasMessageContaining("too many connections");
        }
        waitForNoConnections();
        try (NbdDevice client = NbdDevice.open(server.uri())) {
            assertThat(client.size()).as("served again once under the limit").isEqualTo(SIZE);
        }
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (refused.size() < 3 && System.nanoTime() < end) {
            Thread.sleep(10); // each refused connection reports once its peer has gone
        }
        assertThat(refused).hasSizeGreaterThanOrEqualTo(3)
                .allSatisfy(line -> assertThat(line).contains(": refused: too many connections"));
        assertThat(server.device.reads.get() + server.device.writes.get()).isZero();
    }

    /* ---------------- transmission ---------------- */

    @Test
    void badRequestMagicClosesTheConnectionAndWritesNothing() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().open("disk")) {
            byte[] frame = concat(request(0, CMD_WRITE, 1, 0, 4), new byte[] {1, 2, 3, 4});
            ByteBuffer.wrap(frame).putInt(0, 0x25609514);
            peer.send(frame);
            assertThat(peer.closedWithin(CLOSE)).isTrue();
        }
        assertThat(server.device.writes.get()).isZero();
    }

    @Test
    void aTruncatedWritePayloadIsNeverApplied() throws Exception {
        server = TestServer.start(SIZE);
        sendTruncatedWrite();
        assertThat(server.device.writes.get()).isZero();
        assertThat(TestData.read(server.memory, 0, 65536)).containsOnly(0);
    }

    private void sendTruncatedWrite() throws Exception {
        try (RawPeer peer = server.peer().open("disk")) {
            peer.request(0, CMD_WRITE, 1, 0, 65536);
            byte[] part = new byte[1000];
            Arrays.fill(part, (byte) 0x77);
            peer.send(part);
        }
        waitForNoConnections();
    }

    @Test
    void requestsPastTheEndGetTheProtocolErrorAndTheConnectionGoesOn() throws Exception {
        server = TestServer.start(SIZE);
        assertOutOfRangeRequestsAreRefused();
    }

    private void assertOutOfRangeRequestsAreRefused() throws Exception {
        try (RawPeer peer = server.peer().open("disk")) {
            peer.request(0, CMD_READ, 1, SIZE - 100, 512);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EINVAL, 1)); // no payload follows
            peer.write(2, SIZE - 2, new byte[] {1, 2, 3, 4});
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(ENOSPC, 2)); // payload consumed
            peer.request(0, CMD_WRITE_ZEROES, 3, SIZE, 1);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(ENOSPC, 3));
            peer.request(0, CMD_TRIM, 4, SIZE + 4096, 4096);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EINVAL, 4));
            peer.request(0, CMD_READ, 5, -512L, 1024); // offset + length wraps past 2^64
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EINVAL, 5));
            peer.request(0, CMD_WRITE_ZEROES, 6, Long.MAX_VALUE, 0xFFFF_FFFFL);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(ENOSPC, 6));
            peer.request(0, CMD_READ, 7, SIZE - 1, 1); // and the last byte is fine
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 7));
            assertThat(peer.read(1)).containsExactly(0);
        }
        assertThat(server.device.writes.get()).isZero();
    }

    @Test
    void anOversizedReadIsEinvalWithoutAllocatingItsLength() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().open("disk")) {
            peer.request(0, CMD_READ, 1, 0, 0xFFFF_FFFFL);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EINVAL, 1));
            peer.request(0, CMD_READ, 2, 0, 16);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 2));
            peer.read(16);
        }
        assertThat(server.allocations.largest()).isLessThanOrEqualTo(DEFAULT_MAX_PAYLOAD);
    }

    @Test
    void anOversizedWriteClosesTheConnectionWithoutAllocatingOrWriting() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().open("disk")) {
            peer.request(0, CMD_WRITE, 1, 0, 0xFFFF_FFFFL);
            sendIgnoringClose(peer, new byte[65536]);
            assertThat(peer.closedWithin(CLOSE)).isTrue();
        }
        assertThat(server.allocations.largest()).isLessThanOrEqualTo(MAX_OPTION_DATA);
        assertThat(server.device.writes.get()).isZero();
    }

    @Test
    void aWriteAboveTheMaximumPayloadButWithinTheDefaultIsEinvalAndSkipped() throws Exception {
        server = TestServer.start(SIZE, false, b -> b.maxPayload(64 << 10));
        try (RawPeer peer = server.peer().open("disk")) {
            byte[] big = new byte[256 << 10];
            Arrays.fill(big, (byte) 3);
            peer.write(1, 0, big);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EINVAL, 1));
            peer.write(2, 0, new byte[] {5}); // the stream is still in sync
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 2));
        }
        assertThat(server.allocations.largest()).isLessThanOrEqualTo(MAX_OPTION_DATA);
        assertThat(TestData.read(server.memory, 0, 2)).containsExactly(5, 0);
    }

    @Test
    void unknownCommandsAndFlagsAreEinval() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().open("disk")) {
            peer.request(0, 77, 1, 0, 0);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EINVAL, 1));
            peer.request(0, CMD_CACHE, 2, SIZE, 512);                // CACHE outside the export
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EINVAL, 2));
            peer.request(0, CMD_BLOCK_STATUS, 3, 0, 512);            // no meta context selected
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EINVAL, 3));
            peer.request(CMD_FLAG_DF, CMD_READ, 4, 0, 512);          // DF needs structured replies
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EINVAL, 4));
            peer.request(1 << 12, CMD_WRITE, 5, 0, 3);               // unknown flag on a write: payload skipped
            peer.send(new byte[] {1, 2, 3});
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EINVAL, 5));
            peer.request(CMD_FLAG_NO_HOLE, CMD_TRIM, 6, 0, 512);     // NO_HOLE is for WRITE_ZEROES only
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EINVAL, 6));
            peer.request(0, CMD_FLUSH, 7, 1, 0);                     // flush takes no range
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EINVAL, 7));
            peer.request(0, CMD_READ, 8, 0, 1);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 8));
            assertThat(peer.read(1)).containsExactly(0);
        }
        assertThat(server.device.writes.get()).isZero();
    }

    @Test
    void aClientThatStopsReadingRepliesIsDisconnectedAfterTheReplyTimeout() throws Exception {
        server = TestServer.start(SIZE, false, b -> b.timeouts(Duration.ofSeconds(30), Duration.ofMillis(500))
                .maxBytesInFlight(8 << 20, 8 << 20).maxPayload(1 << 20));
        try (RawPeer peer = server.peer().open("disk")) {
            // Far more reply data than socket buffers hold; the peer reads none of it.
            for (int i = 0; i < 64; i++) {
                peer.request(0, CMD_READ, i, 0, 1 << 20);
            }
            waitForNoConnections();
        }
    }

    @Test
    void aFloodOfRequestsIsBoundedByTheInFlightBudget() throws Exception {
        server = TestServer.start(SIZE, false, b -> b.maxRequestsInFlight(4).workersPerConnection(2));
        java.util.concurrent.atomic.AtomicInteger concurrent = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicInteger peak = new java.util.concurrent.atomic.AtomicInteger();
        server.device.hook((op, offset, length) -> {
            peak.accumulateAndGet(concurrent.incrementAndGet(), Math::max);
            NbdServerTest.sleep(5);
            concurrent.decrementAndGet();
        });
        try (RawPeer peer = server.peer().open("disk")) {
            for (int i = 0; i < 200; i++) {
                peer.request(0, CMD_READ, i, 0, 4096);
            }
            for (int i = 0; i < 200; i++) {
                assertThat(peer.reply().error()).isZero();
                peer.read(4096);
            }
        }
        assertThat(peak.get()).isBetween(1, 2);
    }

    /* ---------------- helpers ---------------- */

    private void waitForNoConnections() throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (server.server.connectionCount() > 0) {
            if (System.nanoTime() > end) {
                throw new AssertionError(server.server.connectionCount() + " connections still open");
            }
            Thread.sleep(10);
        }
    }

    /** Sends what a hostile peer would; the server may already have hung up. */
    private static void sendIgnoringClose(RawPeer peer, byte[] bytes) {
        try {
            peer.send(bytes);
        } catch (java.io.IOException e) {
            // broken pipe or reset: the server closed first, which is what the test checks next
        }
    }

    private static byte[] clientFlags() {
        return ByteBuffer.allocate(4).putInt(CLIENT_FIXED_NEWSTYLE | CLIENT_NO_ZEROES).array();
    }

    static byte[] optionFrame(int option, byte[] data) {
        ByteBuffer b = ByteBuffer.allocate(OPTION_HEADER_SIZE + data.length);
        new OptionRequest(option, data.length).encode(b);
        return b.put(data).array();
    }

    static byte[] request(int flags, int type, long handle, long offset, long length) {
        ByteBuffer b = ByteBuffer.allocate(REQUEST_SIZE);
        new Request(flags, type, handle, offset, length).encode(b);
        return b.array();
    }

    static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        ByteBuffer b = ByteBuffer.allocate(n);
        for (byte[] p : parts) {
            b.put(p);
        }
        return b.array();
    }
}
