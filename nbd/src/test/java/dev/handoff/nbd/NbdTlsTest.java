package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.handoff.device.DeviceException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * NBD over TLS between Handoff's server and client, and everything both refuse (DESIGN §7): the server is in
 * FORCEDTLS mode (NBD protocol, "TLS support"), requires a client certificate signed by its CA and,
 * with an allow-list, named on it; the client insists on TLS for an {@code nbds} URI and checks the
 * server's certificate against its CA and the host name. Each refused peer gets one line, and the
 * server goes on serving the others.
 */
@Timeout(60)
class NbdTlsTest {
    private static final long SIZE = 1 << 20;
    private static final Duration QUICK = Duration.ofSeconds(10);

    @TempDir
    Path dir;

    private final TestPki pki = TestPki.get();
    private final BlockingQueue<String> refusals = new LinkedBlockingQueue<>();
    private TestServer server;

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
            assertThat(server.device.violations()).isEmpty();
            assertThat(server.allocations.violations()).isEmpty();
        }
    }

    private TestServer tlsServer(Consumer<NbdServer.Builder> more) throws Exception {
        TlsCredentials credentials = TlsCredentials.server(pki.server());
        server = TestServer.start(SIZE, false, b -> {
            b.tls(credentials).onRefused(refusals::add);
            more.accept(b);
        });
        return server;
    }

    private TestServer tlsServer() throws Exception {
        return tlsServer(b -> { });
    }

    private static NbdDevice.Options client(Path credentials) throws IOException {
        return NbdDevice.Options.defaults().withConnectTimeout(QUICK).withTls(TlsCredentials.client(credentials));
    }

    private NbdDevice openTls(Path credentials) throws Exception {
        return NbdDevice.open(server.uri().withTls(), client(credentials));
    }

    /** One refusal line arrives, and it is the only one. */
    private String refusal() throws InterruptedException {
        String line = refusals.poll(QUICK.toSeconds(), TimeUnit.SECONDS);
        assertThat(line).as("a line for the refused client").isNotNull();
        assertThat(refusals.poll(200, TimeUnit.MILLISECONDS)).as("one line per refused client").isNull();
        return line;
    }

    /** After a refusal, a client with good credentials is still served. */
    private void stillServes() throws Exception {
        try (NbdDevice device = openTls(pki.clientA())) {
            device.write(4096, ByteBuffer.wrap(new byte[] {7, 7, 7}));
            assertThat(TestData.read(server.memory, 4096, 3)).containsOnly(7);
        }
    }

    /* ---------------- Serving over TLS ---------------- */

    @Test
    void aTlsClientReadsAndWritesOverUnixAndTcp() throws Exception {
        TlsCredentials credentials = TlsCredentials.server(pki.server());
        server = TestServer.start(SIZE, false, b -> b.tls(credentials).listen(NbdAddress.tcp(0)).onRefused(refusals::add));
        byte[] data = TestData.pattern(3, 256 << 10);
        try (NbdDevice unix = openTls(pki.clientA())) {
            unix.write(0, ByteBuffer.wrap(data));
            unix.flush();
        }
        assertThat(TestData.read(server.memory, 0, data.length)).isEqualTo(data);
        NbdAddress.Tcp tcp = (NbdAddress.Tcp) server.server.addresses().get(1);
        try (NbdDevice overTcp = NbdDevice.open(NbdUri.parse("nbds://127.0.0.1:" + tcp.port() + "/disk"),
                client(pki.clientB()))) {
            ByteBuffer back = ByteBuffer.allocate(data.length);
            overTcp.read(0, back);
            assertThat(back.array()).isEqualTo(data);
        }
        assertThat(refusals).isEmpty();
    }

    /* ---------------- The server refuses ---------------- */

    @Test
    void optionsBeforeStartTlsAreRefusedWithTlsRequiredAndRevealNothing() throws Exception {
        tlsServer();
        try (RawPeer peer = server.peer().hello()) {
            int[] options = {OPT_LIST, OPT_GO, OPT_INFO, OPT_STRUCTURED_REPLY, OPT_SET_META_CONTEXT, 0x7000_0001};
            for (int option : options) {
                peer.option(option, option == OPT_GO || option == OPT_INFO ? RawPeer.infoRequest("disk") : new byte[0]);
                RawPeer.OptionAnswer a = peer.optionAnswer();
                assertThat(a.option()).isEqualTo(option);
                assertThat(a.type()).as("option %d before STARTTLS", option).isEqualTo(REP_ERR_TLS_REQD);
                assertThat(a.text()).contains("NBD_OPT_STARTTLS").doesNotContain("disk");
            }
            peer.option(OPT_ABORT, new byte[0]);
            assertThat(peer.optionAnswer().type()).isEqualTo(REP_ACK);
            assertThat(peer.closedWithin(QUICK)).isTrue();
        }
        assertThat(refusal()).endsWith(": refused: 6 options before NBD_OPT_STARTTLS (this server requires TLS);"
                + " the client left");
        assertThat(server.device.reads.get() + server.device.writes.get()).isZero();
        stillServes();
    }

    @Test
    void exportNameBeforeStartTlsEndsTheConnectionWithoutAnAnswer() throws Exception {
        tlsServer();
        try (RawPeer peer = server.peer().hello()) {
            peer.option(OPT_EXPORT_NAME, "disk".getBytes(StandardCharsets.UTF_8));
            assertThatThrownBy(() -> peer.read(10)).as("no export size in plain text").isInstanceOf(java.io.EOFException.class);
        }
        assertThat(refusal()).endsWith(": refused: NBD_OPT_EXPORT_NAME before NBD_OPT_STARTTLS (this server requires TLS)");
        stillServes();
    }

    @Test
    void aClientWithoutFixedNewstyleCannotReachATlsServer() throws Exception {
        tlsServer();
        try (RawPeer peer = server.peer()) {
            peer.greeting();
            peer.clientFlags(0);
            peer.option(OPT_EXPORT_NAME, "disk".getBytes(StandardCharsets.UTF_8));
            assertThatThrownBy(() -> peer.read(10)).isInstanceOf(java.io.EOFException.class);
        }
        assertThat(refusal()).contains("NBD_OPT_EXPORT_NAME before NBD_OPT_STARTTLS");
    }

    @Test
    void startTlsWithDataOrAfterTlsIsInvalid() throws Exception {
        tlsServer();
        try (TlsPeer peer = TlsPeer.connect(server.socket).hello()) {
            peer.option(OPT_STARTTLS, new byte[] {1});
            assertThat(peer.optionAnswer().type()).isEqualTo(REP_ERR_INVALID);
            peer.startTls(TlsPeer.clientEngine(TlsPeer.context(pki.clientA(), "client-cert.pem", "client-key.pem")));
            peer.option(OPT_STARTTLS, new byte[0]);
            RawPeer.OptionAnswer again = peer.optionAnswer();
            assertThat(again.type()).as("STARTTLS over TLS").isEqualTo(REP_ERR_INVALID);
            assertThat(again.text()).isEqualTo("TLS is already active");
            peer.option(OPT_GO, RawPeer.infoRequest("disk"));
            RawPeer.OptionAnswer info = peer.optionAnswer();
            assertThat(info.type()).as("options are answered once TLS is up").isEqualTo(REP_INFO);
            assertThat(ByteBuffer.wrap(info.data()).getLong(2)).isEqualTo(SIZE);
        }
        assertThat(refusals).isEmpty();
    }

    @Test
    void aPlainClientIsToldTheServerRequiresTls() throws Exception {
        tlsServer();
        assertThatThrownBy(() -> NbdDevice.open(server.uri(), NbdDevice.Options.defaults().withConnectTimeout(QUICK)))
                .isInstanceOf(DeviceException.class)
                .hasMessageContaining("the server requires TLS for export 'disk': connect with nbds:// and TLS credentials");
        assertThat(refusal()).contains("refused: 1 option before NBD_OPT_STARTTLS");
    }

    @Test
    void aClientWithoutACertificateIsRefused() throws Exception {
        tlsServer();
        assertThatThrownBy(() -> openTls(pki.noClientCertificate())).isInstanceOf(DeviceException.class)
                .hasMessageContaining("the server");
        assertThat(refusal()).endsWith(": refused: the client sent no certificate (this server requires one signed by"
                + " its certificate authority)");
        stillServes();
    }

    @Test
    void aClientCertificateFromAnotherCaIsRefusedEvenWithAnAllowedName() throws Exception {
        Path allow = Files.writeString(dir.resolve("allow"), TestPki.CLIENT_A + "\n");
        tlsServer(b -> b.tlsAuthz(uncheckedLoad(allow)));
        // The rogue certificate names client A, but another CA signed it.
        try (TlsPeer peer = TlsPeer.connect(server.socket).hello()) {
            peer.startTls(TlsPeer.clientEngine(TlsPeer.context(pki.rogueClient(), "client-cert.pem", "client-key.pem")));
            assertThatThrownBy(() -> {
                peer.option(OPT_GO, RawPeer.infoRequest("disk"));
                peer.optionAnswer();
            }).as("TLS 1.3: the refusal arrives after the client's side of the handshake").isInstanceOf(IOException.class);
        }
        assertThat(refusal()).endsWith(": refused: the client's certificate is not signed by this server's certificate"
                + " authority");
        stillServes();
    }

    @Test
    void anExpiredClientCertificateIsRefused() throws Exception {
        tlsServer();
        try (TlsPeer peer = TlsPeer.connect(server.socket).hello()) {
            peer.startTls(TlsPeer.clientEngine(TlsPeer.context(pki.expiredClient(), "client-cert.pem", "client-key.pem")));
            assertThatThrownBy(() -> {
                peer.option(OPT_GO, RawPeer.infoRequest("disk"));
                peer.optionAnswer();
            }).isInstanceOf(IOException.class);
        }
        assertThat(refusal()).endsWith(": refused: the client's certificate has expired");
        stillServes();
    }

    @Test
    void aClientOutsideTheAllowListIsRefusedAndOneOnItIsServed() throws Exception {
        Path allow = Files.writeString(dir.resolve("allow"), "# only A\n" + TestPki.CLIENT_A + "\n");
        tlsServer(b -> b.tlsAuthz(uncheckedLoad(allow)));
        assertThatThrownBy(() -> openTls(pki.clientB())).isInstanceOf(DeviceException.class)
                .hasMessageContaining("it does not accept this client's certificate");
        assertThat(refusal()).endsWith(": refused: client certificate " + TestPki.CLIENT_B + " is not in " + allow);
        stillServes(); // client A
    }

    @Test
    void aTlsHandshakeThatNeverCompletesIsClosedAtTheDeadline() throws Exception {
        // 5 s: stillServes()'s client must finish its own TLS handshake within it too, and a cold one on a
        // loaded machine took more than 1 s.
        tlsServer(b -> b.timeouts(Duration.ofSeconds(5), Duration.ofSeconds(60)));
        try (RawPeer peer = server.peer().hello()) {
            peer.option(OPT_STARTTLS, new byte[0]);
            assertThat(peer.optionAnswer().type()).isEqualTo(REP_ACK);
            // ... and no ClientHello, ever.
            assertThat(peer.closedWithin(QUICK)).isTrue();
        }
        assertThat(refusal()).endsWith(": TLS handshake not finished within 5 s");
        stillServes();
    }

    @Test
    void plainTextAfterStartTlsEndsTheConnection() throws Exception {
        tlsServer();
        try (RawPeer peer = server.peer().hello()) {
            peer.option(OPT_STARTTLS, new byte[0]);
            assertThat(peer.optionAnswer().type()).isEqualTo(REP_ACK);
            peer.option(OPT_GO, RawPeer.infoRequest("disk"));
            assertThat(peer.closedWithin(QUICK)).isTrue();
        }
        assertThat(refusal()).contains(": refused: ");
        stillServes();
    }

    /* ---------------- The client refuses ---------------- */

    @Test
    void theClientRefusesAServerThatDoesNotOfferTls() throws Exception {
        server = TestServer.start(SIZE); // plain
        assertThatThrownBy(() -> openTls(pki.clientA())).isInstanceOf(DeviceException.class)
                .hasMessageContaining("the server does not offer TLS: it answered NBD_OPT_STARTTLS with NBD_REP_ERR_POLICY"
                        + " (TLS is not configured on this server); refusing to continue in plain text");
    }

    @Test
    void theClientNeverFallsBackToPlainText() throws Exception {
        // A man in the middle declines STARTTLS and offers the export in plain text: the client must leave.
        try (FakeServer fake = new FakeServer(side -> {
            side.greeting();
            OptionRequest first = side.option();
            if (first.option() != OPT_STARTTLS) {
                throw new AssertionError("the first option was " + first.option() + ", not STARTTLS");
            }
            side.optionReply(OPT_STARTTLS, REP_ERR_UNSUP, new byte[0]);
            OptionRequest next = side.option();
            if (next.option() != OPT_ABORT) {
                throw new AssertionError("after a declined STARTTLS the client sent option " + next.option());
            }
        })) {
            assertThatThrownBy(() -> NbdDevice.open(fake.uri().withTls(), client(pki.clientA())))
                    .isInstanceOf(DeviceException.class).hasMessageContaining("refusing to continue in plain text");
            fake.result();
        }
    }

    @Test
    void theClientRefusesAServerCertificateFromAnotherCa() throws Exception {
        tlsServer();
        assertThatThrownBy(() -> openTls(pki.otherCa())).isInstanceOf(DeviceException.class)
                .hasMessageContaining("the server's certificate is not signed by the certificate authority in "
                        + pki.otherCa().resolve("ca-cert.pem"));
        assertThat(refusal()).endsWith(": refused: the client aborted the TLS handshake (TLS alert certificate_unknown):"
                + " it does not accept this server's certificate");
        stillServes();
    }

    @Test
    void theClientChecksTheServersHostName() throws Exception {
        TlsCredentials wrongHost = TlsCredentials.server(pki.wrongHostServer());
        server = TestServer.start(SIZE, false, b -> b.tls(wrongHost).listen(NbdAddress.tcp(0)).onRefused(refusals::add));
        NbdAddress.Tcp tcp = (NbdAddress.Tcp) server.server.addresses().get(1);
        assertThatThrownBy(() -> NbdDevice.open("nbds://127.0.0.1:" + tcp.port() + "/disk", client(pki.clientA())))
                .isInstanceOf(DeviceException.class)
                .hasMessageContaining("the server's certificate is not for host 127.0.0.1");
        String unix = "nbds+unix:///disk?socket=" + server.socket;
        assertThatThrownBy(() -> NbdDevice.open(unix + "&tls-hostname=localhost", client(pki.clientA())))
                .hasMessageContaining("the server's certificate is not for host localhost");
        try (NbdDevice named = NbdDevice.open(unix + "&tls-hostname=elsewhere.example", client(pki.clientA()));
             NbdDevice caOnly = NbdDevice.open(unix, client(pki.clientA()))) {
            assertThat(named.size()).isEqualTo(caOnly.size()).isEqualTo(SIZE);
        }
        assertThat(refusals).hasSize(2).allMatch(l -> l.endsWith("it does not accept this server's certificate"));
    }

    @Test
    void theClientRefusesAnExpiredServerCertificate() throws Exception {
        javax.net.ssl.SSLContext expired = TlsPeer.context(pki.expiredServer(), "server-cert.pem", "server-key.pem");
        try (FakeServer fake = new FakeServer(side -> {
            side.greeting();
            side.option();
            side.optionReply(OPT_STARTTLS, REP_ACK, new byte[0]);
            try {
                TlsTransport.handshake(Transport.of(side.channel), TlsPeer.serverEngine(expired));
            } catch (javax.net.ssl.SSLException refused) {
                // the client's alert
            }
        })) {
            assertThatThrownBy(() -> NbdDevice.open(fake.uri().withTls(), client(pki.clientA())))
                    .isInstanceOf(DeviceException.class).hasMessageContaining("the server's certificate has expired");
        }
    }

    @Test
    void credentialsAndUriMustAgree() throws Exception {
        server = TestServer.start(SIZE);
        assertThatThrownBy(() -> NbdDevice.open(server.uri().withTls(), NbdDevice.Options.defaults()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("needs client TLS credentials");
        assertThatThrownBy(() -> NbdDevice.open(server.uri(), client(pki.clientA())))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not a TLS URI");
        assertThatThrownBy(() -> NbdDevice.Options.defaults().withTls(TlsCredentials.server(pki.server())))
                .isInstanceOf(IllegalArgumentException.class);
    }

    /* ---------------- Safe defaults ---------------- */

    @Test
    void aTcpListenerOnANonLoopbackAddressNeedsTlsOrInsecure() throws Exception {
        NbdServer.Builder plain = NbdServer.builder().listen(NbdAddress.tcp("0.0.0.0", 0))
                .export(NbdExport.of("disk", new dev.handoff.device.MemoryDevice(SIZE)));
        assertThatThrownBy(plain::start).isInstanceOf(IllegalStateException.class)
                .hasMessage("refusing to serve on tcp:0.0.0.0:0 without TLS: it is not a loopback address, so anyone who"
                        + " can reach it could read and write the exports");
        try (NbdServer insecure = plain.insecure().start()) {
            assertThat(insecure.requiresTls()).isFalse();
        }
        try (NbdServer secured = NbdServer.builder().listen(NbdAddress.tcp("0.0.0.0", 0))
                .tls(TlsCredentials.server(pki.server()))
                .export(NbdExport.of("disk", new dev.handoff.device.MemoryDevice(SIZE))).start()) {
            assertThat(secured.requiresTls()).isTrue();
        }
        try (NbdServer loopback = NbdServer.builder().listen(NbdAddress.tcp("localhost", 0))
                .export(NbdExport.of("disk", new dev.handoff.device.MemoryDevice(SIZE))).start()) {
            assertThat(loopback.addresses()).hasSize(1);
        }
        assertThatThrownBy(() -> NbdServer.builder().listen(NbdAddress.tcp(0))
                .tlsAuthz(ClientAllowList.of(TestPki.CLIENT_A)).check())
                .hasMessageContaining("a client allow-list needs TLS");
    }

    @Test
    void unixSocketsAreCreatedOwnerOnlyUnlessToldOtherwise() throws Exception {
        server = TestServer.start(SIZE);
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(server.socket))).isEqualTo("rw-------");
        try (NbdDevice device = server.client()) {
            assertThat(device.size()).isEqualTo(SIZE);
        }
        Path other = dir.resolve("g.sock");
        try (NbdServer group = NbdServer.builder().listen(NbdAddress.unix(other))
                .unixSocketMode(UnixSockets.parseMode("0660"))
                .export(NbdExport.of("disk", new dev.handoff.device.MemoryDevice(SIZE))).start()) {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(other))).isEqualTo("rw-rw----");
            try (var listing = Files.list(dir)) {
                assertThat(listing.map(p -> p.getFileName().toString())).as("no staging directory left")
                        .containsExactly("g.sock");
            }
        }
        assertThat(other).doesNotExist();
        assertThatThrownBy(() -> UnixSockets.parseMode("0460")).hasMessageContaining("lock out");
        assertThatThrownBy(() -> UnixSockets.parseMode("rw")).hasMessageContaining("not an octal mode");
    }

    private static ClientAllowList uncheckedLoad(Path file) {
        try {
            return ClientAllowList.load(file);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
