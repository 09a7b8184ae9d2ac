package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.handoff.device.DeviceException;
import dev.handoff.device.DeviceException.Kind;
import dev.handoff.device.FaultyDevice;
import dev.handoff.device.MemoryDevice;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The server's protocol behaviour with well-behaved peers: negotiation, commands, concurrency. */
@Timeout(60)
class NbdServerTest {
    private static final long SIZE = 4 << 20;
    private TestServer server;

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
            assertThat(server.device.violations()).as("requests the server should never have made").isEmpty();
            assertThat(server.allocations.violations()).isEmpty();
        }
    }

    /* ---------------- negotiation ---------------- */

    @Test
    void greetingOffersFixedNewstyleAndNoZeroes() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer()) {
            assertThat(peer.greeting()).isEqualTo(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
        }
    }

    @Test
    void listNamesEveryExportThenAcknowledges() throws Exception {
        server = TestServer.start(SIZE);
        server.server.addExport(NbdExport.readOnly("other", new MemoryDevice(512)));
        try (RawPeer peer = server.peer().hello()) {
            peer.option(OPT_LIST, new byte[0]);
            List<String> names = new ArrayList<>();
            RawPeer.OptionAnswer a;
            while ((a = peer.optionAnswer()).type() == REP_SERVER) {
                ByteBuffer d = ByteBuffer.wrap(a.data());
                byte[] name = new byte[d.getInt()];
                d.get(name);
                names.add(new String(name, StandardCharsets.UTF_8));
            }
            assertThat(a.type()).isEqualTo(REP_ACK);
            assertThat(names).containsExactly("disk", "other");
        }
    }

    @Test
    void infoDescribesTheExportAndNegotiationGoesOn() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().hello()) {
            peer.option(OPT_INFO, RawPeer.infoRequest("disk", INFO_BLOCK_SIZE, INFO_NAME, INFO_DESCRIPTION, 999));
            long size = -1;
            int flags = -1;
            int[] blockSizes = null;
            String name = null;
            String description = null;
            RawPeer.OptionAnswer a;
            while ((a = peer.optionAnswer()).type() == REP_INFO) {
                assertThat(a.option()).isEqualTo(OPT_INFO);
                ByteBuffer d = ByteBuffer.wrap(a.data());
                int type = d.getShort();
                switch (type) {
                    case INFO_EXPORT -> {
                        size = d.getLong();
                        flags = Short.toUnsignedInt(d.getShort());
                    }
                    case INFO_BLOCK_SIZE -> blockSizes = new int[] {d.getInt(), d.getInt(), d.getInt()};
                    case INFO_NAME -> name = new String(a.data(), 2, a.data().length - 2, StandardCharsets.UTF_8);
                    case INFO_DESCRIPTION -> description = new String(a.data(), 2, a.data().length - 2,
                            StandardCharsets.UTF_8);
                    default -> throw new AssertionError("unexpected info " + type);
                }
            }
            assertThat(a.type()).isEqualTo(REP_ACK);
            assertThat(size).isEqualTo(SIZE);
            assertThat(flags).isEqualTo(TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH | TFLAG_SEND_FUA | TFLAG_SEND_TRIM
                    | TFLAG_SEND_WRITE_ZEROES | TFLAG_CAN_MULTI_CONN | TFLAG_SEND_CACHE | TFLAG_SEND_FAST_ZERO);
            assertThat(blockSizes).containsExactly(1, 4096, DEFAULT_MAX_PAYLOAD);
            assertThat(name).isEqualTo("disk");
            assertThat(description).isEqualTo("a test disk");

            long[] go = peer.go("disk"); // still negotiating: GO works on the same connection
            assertThat(go[0]).isEqualTo(SIZE);
        }
    }

    @Test
    void goForAnUnknownExportIsErrUnknownAndNegotiationGoesOn() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().hello()) {
            peer.option(OPT_GO, RawPeer.infoRequest("nope"));
            RawPeer.OptionAnswer a = peer.optionAnswer();
            assertThat(a.type()).isEqualTo(REP_ERR_UNKNOWN);
            assertThat(a.text()).contains("nope");
            assertThat(peer.go("disk")[0]).isEqualTo(SIZE);
        }
    }

    @Test
    void unsupportedOptionsAreErrUnsupAndNegotiationGoesOn() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().hello()) {
            peer.option(OPT_STARTTLS, new byte[0]);
            assertThat(peer.optionAnswer().type()).as("STARTTLS without TLS configured").isEqualTo(REP_ERR_POLICY);
            for (int option : new int[] {OPT_EXTENDED_HEADERS, 4, 0, 0x1234_5678, -1}) {
                peer.option(option, new byte[] {1, 2, 3});
                RawPeer.OptionAnswer a = peer.optionAnswer();
                assertThat(a.option()).isEqualTo(option);
                assertThat(a.type()).as("option %d", option).isEqualTo(REP_ERR_UNSUP);
            }
            assertThat(peer.go("disk")[0]).isEqualTo(SIZE);
        }
    }

    @Test
    void abortIsAcknowledgedAndTheConnectionCloses() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().hello()) {
            peer.option(OPT_ABORT, new byte[0]);
            assertThat(peer.optionAnswer().type()).isEqualTo(REP_ACK);
            assertThat(peer.closedWithin(Duration.ofSeconds(5))).isTrue();
        }
    }

    @Test
    void exportNameEntersTransmissionWithOrWithoutZeroes() throws Exception {
        server = TestServer.start(SIZE);
        for (boolean noZeroes : new boolean[] {false, true}) {
            try (RawPeer peer = server.peer()) {
                peer.greeting();
                peer.clientFlags(CLIENT_FIXED_NEWSTYLE | (noZeroes ? CLIENT_NO_ZEROES : 0));
                peer.option(OPT_EXPORT_NAME, "disk".getBytes(StandardCharsets.UTF_8));
                ByteBuffer r = ByteBuffer.wrap(peer.read(10 + (noZeroes ? 0 : 124)));
                assertThat(r.getLong()).isEqualTo(SIZE);
                assertThat(r.getShort() & TFLAG_HAS_FLAGS).isEqualTo(TFLAG_HAS_FLAGS);
                while (r.hasRemaining()) {
                    assertThat(r.get()).isZero();
                }
                peer.write(1, 0, new byte[] {7});
                assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 1));
            }
        }
    }

    @Test
    void oldNewstyleClientsMayStillUseExportName() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer()) {
            peer.greeting();
            peer.clientFlags(0); // not fixed newstyle
            peer.option(OPT_EXPORT_NAME, "disk".getBytes(StandardCharsets.UTF_8));
            assertThat(ByteBuffer.wrap(peer.read(134)).getLong()).isEqualTo(SIZE);
        }
    }

    /* ---------------- transmission ---------------- */

    @Test
    void everyCommandReachesTheDevice() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().open("disk")) {
            byte[] data = new byte[8192];
            Arrays.fill(data, (byte) 0x5a);
            peer.write(1, 4096, data);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 1));
            peer.request(0, CMD_READ, 2, 4096, 8192);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 2));
            assertThat(peer.read(8192)).isEqualTo(data);
            peer.request(CMD_FLAG_NO_HOLE, CMD_WRITE_ZEROES, 3, 4096, 100);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 3));
            peer.request(0, CMD_TRIM, 4, 8192, 4096);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 4));
            peer.request(0, CMD_FLUSH, 5, 0, 0);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 5));
            peer.request(0, CMD_READ, 6, 4096, 200);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 6));
            byte[] back = peer.read(200);
            for (int i = 0; i < 200; i++) {
                assertThat(back[i]).as("byte %d", i).isEqualTo(i < 100 ? (byte) 0 : (byte) 0x5a);
            }
            peer.request(0, CMD_DISC, 7, 0, 0);
            assertThat(peer.closedWithin(Duration.ofSeconds(5))).isTrue();
        }
        assertThat(server.device.flushes.get()).isEqualTo(1);
    }

    @Test
    void fuaWriteIsFlushedBeforeItsReply() throws Exception {
        server = TestServer.start(SIZE);
        assertThat(flushesSeenByAFuaWriteReply()).isEqualTo(1);
    }

    private long flushesSeenByAFuaWriteReply() throws Exception {
        try (RawPeer peer = server.peer().open("disk")) {
            peer.request(CMD_FLAG_FUA, CMD_WRITE, 9, 0, 3);
            peer.send(new byte[] {1, 2, 3});
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 9));
            return server.device.flushes.get();
        }
    }

    @Test
    void readOnlyExportRefusesWritesTrimsAndZeroesWithEperm() throws Exception {
        server = TestServer.start(SIZE, true, b -> { });
        try (RawPeer peer = server.peer().hello()) {
            long[] go = peer.go("disk");
            assertThat(go[1] & TFLAG_READ_ONLY).isEqualTo(TFLAG_READ_ONLY);
            assertThat(go[1] & (TFLAG_SEND_TRIM | TFLAG_SEND_WRITE_ZEROES)).isZero();
            peer.write(1, 0, new byte[] {1, 2, 3});
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EPERM, 1));
            peer.request(0, CMD_TRIM, 2, 0, 512);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EPERM, 2));
            peer.request(0, CMD_WRITE_ZEROES, 3, 0, 512);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EPERM, 3));
            peer.request(0, CMD_READ, 4, 0, 3); // reads still work, and the write's payload was skipped
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 4));
            assertThat(peer.read(3)).containsExactly(0, 0, 0);
        }
        assertThat(server.device.writes.get()).isZero();
        try (NbdDevice client = server.client()) {
            assertThat(client.isReadOnly()).isTrue();
            assertThatThrownBy(() -> client.write(0, ByteBuffer.allocate(1)))
                    .isInstanceOfSatisfying(DeviceException.class, e -> assertThat(e.kind()).isEqualTo(Kind.READ_ONLY));
        }
    }

    @Test
    void repliesLeaveInCompletionOrder() throws Exception {
        server = TestServer.start(SIZE);
        CountDownLatch release = new CountDownLatch(1);
        server.device.hook((op, offset, length) -> {
            if (op.equals("read") && offset == 0) {
                await(release);
            }
        });
        try (RawPeer peer = server.peer().open("disk")) {
            ByteBuffer both = ByteBuffer.allocate(2 * REQUEST_SIZE); // sent together, as a client with two in flight does
            new Request(0, CMD_READ, 100, 0, 512).encode(both);    // held by the device
            new Request(0, CMD_READ, 200, 4096, 512).encode(both); // not held
            peer.send(both.flip());
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 200));
            peer.read(512);
            release.countDown();
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 100));
            peer.read(512);
        } finally {
            release.countDown();
        }
    }

    @Test
    void discAnswersOutstandingRequestsBeforeClosing() throws Exception {
        server = TestServer.start(SIZE);
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch arrived = new CountDownLatch(1);
        server.device.hook((op, offset, length) -> {
            if (op.equals("write")) {
                arrived.countDown();
                await(release);
            }
        });
        try (RawPeer peer = server.peer().open("disk")) {
            peer.write(1, 0, new byte[] {42});
            assertThat(arrived.await(10, TimeUnit.SECONDS)).isTrue();
            peer.request(0, CMD_DISC, 2, 0, 0);
            assertThat(peer.silentFor(Duration.ofMillis(200))).as("no close while a request is in flight").isTrue();
            release.countDown();
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 1));
            assertThat(peer.closedWithin(Duration.ofSeconds(5))).isTrue();
        } finally {
            release.countDown();
        }
        assertThat(TestData.read(server.memory, 0, 1)).containsExactly(42);
    }

    @Test
    void servesSeveralClientsAtOnce() throws Exception {
        server = TestServer.start(SIZE);
        int clients = 4;
        long slice = SIZE / clients;
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        List<NbdDevice> devices = new ArrayList<>();
        try {
            for (int c = 0; c < clients; c++) {
                devices.add(server.client());
            }
            List<Future<?>> done = new ArrayList<>();
            for (int c = 0; c < clients; c++) {
                int id = c;
                NbdDevice d = devices.get(c);
                done.add(pool.submit(() -> {
                    byte[] data = TestData.pattern(id, (int) slice);
                    for (int off = 0; off < slice; off += 65536) {
                        d.write(id * slice + off, ByteBuffer.wrap(data, off, 65536));
                    }
                    d.flush();
                    return null;
                }));
            }
            assertThat(server.server.connectionCount()).isEqualTo(clients);
            for (Future<?> f : done) {
                f.get(30, TimeUnit.SECONDS);
            }
            for (int c = 0; c < clients; c++) {
                assertThat(TestData.read(server.memory, c * slice, (int) slice)).isEqualTo(TestData.pattern(c, (int) slice));
            }
        } finally {
            pool.shutdownNow();
            for (NbdDevice d : devices) {
                d.close();
            }
        }
    }

    @Test
    void deviceFailuresMapToProtocolErrorsAndBackToKinds() throws Exception {
        FaultyDevice faulty = new FaultyDevice(new MemoryDevice(SIZE), 1);
        try (ServedDevice served = ServedDevice.serve("f", faulty)) {
            NbdDevice client = served.client();
            List<Kind> kinds = new ArrayList<>(List.of(Kind.values()));
            kinds.remove(Kind.CLOSED);
            kinds.add(Kind.CLOSED); // last: ESHUTDOWN makes the client disconnect
            for (Kind kind : kinds) {
                FaultyDevice.Armed armed = faulty.inject(FaultyDevice.Fault.error(kind).on(FaultyDevice.Op.WRITE));
                Kind expected = switch (kind) {
                    case IO_ERROR -> Kind.IO_ERROR;
                    case NO_SPACE -> Kind.NO_SPACE;
                    case READ_ONLY, INACTIVE, FENCED -> Kind.READ_ONLY;    // EPERM
                    case OUT_OF_RANGE -> Kind.OUT_OF_RANGE;                // EINVAL
                    case CLOSED -> Kind.CLOSED;                            // ESHUTDOWN
                };
                assertThatThrownBy(() -> client.write(0, ByteBuffer.allocate(16)))
                        .as("device failure %s", kind)
                        .isInstanceOfSatisfying(DeviceException.class, e -> assertThat(e.kind()).isEqualTo(expected));
                armed.disarm();
                if (kind == Kind.CLOSED) {
                    break; // ESHUTDOWN: the client disconnects, as the protocol requires
                }
                client.write(0, ByteBuffer.allocate(16)); // the connection survives device errors
            }
            assertThatThrownBy(() -> client.read(0, ByteBuffer.allocate(1)))
                    .isInstanceOfSatisfying(DeviceException.class, e -> assertThat(e.kind()).isEqualTo(Kind.CLOSED));
        }
    }

    @Test
    void tcpListensOnLoopbackByDefault() throws Exception {
        try (NbdServer s = NbdServer.builder().listen(NbdAddress.tcp(0))
                .export(NbdExport.of("t", new MemoryDevice(1 << 20))).start()) {
            NbdAddress.Tcp address = (NbdAddress.Tcp) s.addresses().get(0);
            assertThat(address.host()).isEqualTo("127.0.0.1");
            assertThat(address.port()).isPositive();
            try (NbdDevice d = NbdDevice.open("nbd://127.0.0.1:" + address.port() + "/t")) {
                d.write(5, ByteBuffer.wrap(new byte[] {9}));
                ByteBuffer b = ByteBuffer.allocate(1);
                d.read(5, b);
                assertThat(b.get(0)).isEqualTo((byte) 9);
            }
        }
    }

    @Test
    void closeLetsInFlightRequestsFinishAndRemovesTheSocket() throws Exception {
        server = TestServer.start(SIZE);
        CountDownLatch arrived = new CountDownLatch(1);
        server.device.hook((op, offset, length) -> {
            if (op.equals("write")) {
                arrived.countDown();
                sleep(300);
            }
        });
        try (RawPeer peer = server.peer().open("disk")) {
            peer.write(1, 0, new byte[] {1});
            assertThat(arrived.await(10, TimeUnit.SECONDS)).isTrue();
            server.server.close();
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 1));
            assertThat(peer.closedWithin(Duration.ofSeconds(5))).isTrue();
        }
        assertThat(Files.exists(server.socket)).isFalse();
        assertThat(server.server.connectionCount()).isZero();
    }

    @Test
    void aStaleSocketFileIsReplacedButALiveOneIsNot() throws Exception {
        server = TestServer.start(SIZE);
        assertThatThrownBy(() -> NbdServer.builder().listen(NbdAddress.unix(server.socket))
                .export(NbdExport.of("x", new MemoryDevice(512))).start())
                .hasMessageContaining("in use");
        Path stale = server.dir.resolve("stale");
        try (var channel = java.nio.channels.ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            channel.bind(java.net.UnixDomainSocketAddress.of(stale)); // closed without unlinking: stale
        }
        assertThat(Files.exists(stale)).isTrue();
        try (NbdServer s = NbdServer.builder().listen(NbdAddress.unix(stale))
                .export(NbdExport.of("x", new MemoryDevice(512))).start();
             NbdDevice d = NbdDevice.open(s.uri("x"))) {
            assertThat(d.size()).isEqualTo(512);
        }
    }

    static void await(CountDownLatch latch) {
        try {
            if (!latch.await(30, TimeUnit.SECONDS)) {
                throw new AssertionError("latch not released");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
