package dev.handoff.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The TLS transport on its own: a client and a server engine over a connected pair of unix
 * sockets. Both directions at once (a reader and a writer per side, as a connection runs them),
 * frames of every size, the orderly end and a cut record.
 */
@Timeout(60)
class TlsTransportTest {
    private Path dir;
    private ExecutorService threads;
    TlsTransport client;
    TlsTransport server;
    private Transport rawClient;
    private SocketChannel clientChannel;

    @BeforeEach
    void connect() throws Exception {
        dir = Sockets.newDirectory();
        threads = Executors.newCachedThreadPool();
        TestPki pki = TestPki.get();
        ServerTls serverTls = new ServerTls(TlsCredentials.server(pki.server()), null);
        ClientTls clientTls = new ClientTls(TlsCredentials.client(pki.clientA()), "localhost");
        try (ServerSocketChannel listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            listener.bind(UnixDomainSocketAddress.of(dir.resolve("s")));
            SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(dir.resolve("s")));
            SocketChannel s = listener.accept();
            clientChannel = c;
            rawClient = Transport.of(c);
            Future<TlsTransport> serverSide = threads.submit(() -> TlsTransport.handshake(Transport.of(s),
                    serverTls.newEngine()));
            client = TlsTransport.handshake(rawClient, clientTls.newEngine());
            server = serverSide.get(30, TimeUnit.SECONDS);
        }
    }

    @AfterEach
    void close() throws Exception {
        threads.shutdownNow();
        if (client != null) {
            client.close();
        }
        if (server != null) {
            server.close();
        }
        Sockets.deleteTree(dir);
    }

    @Test
    void theSessionIsTls13WithTheClientsCertificate() {
        assertThat(client.protocol()).isEqualTo("TLSv1.3");
        assertThat(server.protocol()).isEqualTo("TLSv1.3");
        assertThat(server.peerSubject()).isEqualTo(TestPki.CLIENT_A);
        assertThat(client.peerSubject()).isEqualTo("CN=localhost,O=Handoff tests");
    }

    @Test
    void framesOfEverySizeCrossBothWaysAtOnceIntact() throws Exception {
        Future<byte[]> toServer = send(client, 1);
        Future<byte[]> toClient = send(server, 2);
        byte[] atServer = receive(server, expected(1).length);
        byte[] atClient = receive(client, expected(2).length);
        assertThat(atServer).isEqualTo(toServer.get(30, TimeUnit.SECONDS)).isEqualTo(expected(1));
        assertThat(atClient).isEqualTo(toClient.get(30, TimeUnit.SECONDS)).isEqualTo(expected(2));
    }

    @Test
    void closeNotifyReadsAsEndOfStreamAfterTheData() throws Exception {
        client.writeFully(ByteBuffer.wrap(new byte[] {1, 2, 3}), ByteBuffer.wrap(new byte[] {4}));
        client.finishOutput();
        ByteBuffer got = ByteBuffer.allocate(8);
        while (server.read(got) >= 0) {
            assertThat(got.position()).isLessThanOrEqualTo(4);
        }
        assertThat(got.flip()).isEqualTo(ByteBuffer.wrap(new byte[] {1, 2, 3, 4}));
        assertThat(server.read(ByteBuffer.allocate(1))).as("stays at the end").isEqualTo(-1);
        assertThatThrownBy(() -> client.write(ByteBuffer.wrap(new byte[] {5}))).isInstanceOf(IOException.class);
    }

    @Test
    void aRecordCutShortByTheEndOfTheStreamIsAnError() throws Exception {
        // A frame's record, of which only the first half reaches the server before the socket closes.
        javax.net.ssl.SSLEngine engine = client.engine();
        ByteBuffer record = ByteBuffer.allocate(engine.getSession().getPacketBufferSize());
        engine.wrap(ByteBuffer.wrap(new byte[40]), record);
        record.flip().limit(record.limit() / 2);
        FrameIo.writeFully(rawClient, record);
        clientChannel.shutdownOutput();
        assertThatThrownBy(() -> server.read(ByteBuffer.allocate(64))).isInstanceOf(EOFException.class)
                .hasMessageContaining("inside a TLS record");
    }

    private Future<byte[]> send(Transport side, long seed) {
        return threads.submit(() -> {
            byte[] all = expected(seed);
            SplittableRandom random = new SplittableRandom(seed);
            int at = 0;
            while (at < all.length) {
                int header = Math.min(all.length - at, 28);
                int data = Math.min(all.length - at - header, sizes(random));
                side.writeFully(ByteBuffer.wrap(all, at, header), data == 0 ? null : ByteBuffer.wrap(all, at + header, data));
                at += header + data;
            }
            return all;
        });
    }

    /** Mostly small, some records' worth, a few large (several records per write). */
    private static int sizes(SplittableRandom random) {
        return switch (random.nextInt(4)) {
            case 0 -> random.nextInt(512);
            case 1 -> 4096;
            case 2 -> 16_000 + random.nextInt(1000);
            default -> random.nextInt(300_000);
        };
    }

    private static byte[] expected(long seed) {
        byte[] b = new byte[3 << 20];
        new SplittableRandom(seed * 31).nextBytes(b);
        return b;
    }

    private static byte[] receive(Transport side, int length) throws IOException {
        ByteBuffer all = ByteBuffer.allocate(length);
        SplittableRandom random = new SplittableRandom(length);
        while (all.hasRemaining()) {
            int n = Math.min(all.remaining(), 1 + random.nextInt(70_000));
            FrameIo.readFully(side, all.slice(all.position(), n));
            all.position(all.position() + n);
        }
        return all.array();
    }
}
