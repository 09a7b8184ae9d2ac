package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.net.Socket;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ScheduledFuture;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * A hand-driven NBD peer that can speak TLS with credentials {@link TlsCredentials} would refuse
 * to load (an expired certificate, say): its TLS context is built straight from the PEM files,
 * unchecked, so the tests can show what the other side does with them. Blocking, but every
 * step runs under a deadline that closes the socket, so a test never hangs.
 */
final class TlsPeer implements AutoCloseable {
    static final Duration TIMEOUT = Duration.ofSeconds(20);

    private final SocketChannel channel;
    private Transport transport;

    private TlsPeer(SocketChannel channel) {
        this.channel = channel;
        this.transport = Transport.of(channel);
    }

    static TlsPeer connect(Path socket) throws IOException {
        SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
        c.connect(UnixDomainSocketAddress.of(socket));
        return new TlsPeer(c);
    }

    /**
     * A TLS context from {@code dir}'s {@code ca-cert.pem} and the named certificate and key (either
     * may be null), with no check of its own.
     */
    static SSLContext context(Path dir, String certFile, String keyFile) throws Exception {
        CertificateFactory factory = CertificateFactory.getInstance("X.509");
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        int i = 0;
        for (Pem.Block b : Pem.read(dir.resolve("ca-cert.pem"))) {
            trust.setCertificateEntry("ca" + i++, factory.generateCertificate(new ByteArrayInputStream(b.der())));
        }
        KeyStore keys = KeyStore.getInstance("PKCS12");
        keys.load(null, null);
        if (certFile != null) {
            List<X509Certificate> chain = new ArrayList<>();
            for (Pem.Block b : Pem.read(dir.resolve(certFile))) {
                chain.add((X509Certificate) factory.generateCertificate(new ByteArrayInputStream(b.der())));
            }
            PrivateKey key = null;
            for (Pem.Block b : Pem.read(dir.resolve(keyFile))) {
                if (PrivateKeyDecoder.isPrivateKey(b.type())) {
                    key = PrivateKeyDecoder.decode(b.type(), b.der());
                }
            }
            keys.setKeyEntry("k", key, new char[0], chain.toArray(new X509Certificate[0]));
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keys, new char[0]);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(trust);
        SSLContext context = SSLContext.getInstance("TLS");
        javax.net.ssl.KeyManager[] managers = certFile == null ? kmf.getKeyManagers()
                : new javax.net.ssl.KeyManager[] {new Insistent((X509ExtendedKeyManager) kmf.getKeyManagers()[0])};
        context.init(managers, tmf.getTrustManagers(), new SecureRandom());
        return context;
    }

    /**
     * Presents its certificate whatever the server asks for: the JDK's own key manager sends none
     * when the server's CA did not sign it, so the server would never see the certificate it must
     * refuse.
     */
    private static final class Insistent extends X509ExtendedKeyManager {
        private final X509ExtendedKeyManager inner;

        Insistent(X509ExtendedKeyManager inner) {
            this.inner = inner;
        }

        @Override
        public String chooseEngineClientAlias(String[] keyType, Principal[] issuers, SSLEngine engine) {
            return "k";
        }

        @Override
        public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
            return "k";
        }

        @Override
        public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
            return "k";
        }

        @Override
        public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
            return "k";
        }

        @Override
        public String[] getClientAliases(String keyType, Principal[] issuers) {
            return new String[] {"k"};
        }

        @Override
        public String[] getServerAliases(String keyType, Principal[] issuers) {
            return new String[] {"k"};
        }

        @Override
        public X509Certificate[] getCertificateChain(String alias) {
            return inner.getCertificateChain(alias);
        }

        @Override
        public PrivateKey getPrivateKey(String alias) {
            return inner.getPrivateKey(alias);
        }
    }

    static SSLEngine clientEngine(SSLContext context) {
        SSLEngine e = context.createSSLEngine();
        e.setUseClientMode(true);
        return e;
    }

    static SSLEngine serverEngine(SSLContext context) {
        SSLEngine e = context.createSSLEngine();
        e.setUseClientMode(false);
        e.setNeedClientAuth(true);
        return e;
    }

    private interface Step<T> {
        T run() throws IOException;
    }

    private <T> T bounded(Step<T> step) throws IOException {
        ScheduledFuture<?> deadline = NbdTimer.after(TIMEOUT.toNanos(), () -> {
            try {
                channel.close();
            } catch (IOException e) {
                // closing anyway
            }
        });
        try {
            return step.run();
        } finally {
            deadline.cancel(false);
        }
    }

    /** Greeting and fixed-newstyle client flags. */
    TlsPeer hello() throws IOException {
        bounded(() -> {
            ByteBuffer g = ByteBuffer.allocate(GREETING_SIZE);
            FrameIo.readFully(transport, g);
            FrameIo.writeFully(transport, ByteBuffer.allocate(4).putInt(CLIENT_FIXED_NEWSTYLE | CLIENT_NO_ZEROES).flip());
            return null;
        });
        return this;
    }

    void option(int option, byte[] data) throws IOException {
        bounded(() -> {
            ByteBuffer b = ByteBuffer.allocate(OPTION_HEADER_SIZE + data.length);
            new OptionRequest(option, data.length).encode(b);
            transport.writeFully(b.put(data).flip(), null);
            return null;
        });
    }

    RawPeer.OptionAnswer optionAnswer() throws IOException {
        return bounded(() -> {
            ByteBuffer h = ByteBuffer.allocate(OPTION_REPLY_HEADER_SIZE);
            FrameIo.readFully(transport, h);
            OptionReply r = OptionReply.decode(h.flip());
            ByteBuffer data = ByteBuffer.allocate((int) Math.min(r.length(), 1 << 20));
            FrameIo.readFully(transport, data);
            return new RawPeer.OptionAnswer(r.option(), r.type(), data.array());
        });
    }

    /** STARTTLS, its acknowledgement, and the handshake with {@code engine}. */
    TlsPeer startTls(SSLEngine engine) throws IOException {
        option(OPT_STARTTLS, new byte[0]);
        RawPeer.OptionAnswer a = optionAnswer();
        if (a.type() != REP_ACK) {
            throw new IOException("STARTTLS answered " + replyTypeName(a.type()) + ": " + a.text());
        }
        transport = bounded(() -> TlsTransport.handshake(transport, engine));
        return this;
    }

    /** Whether the server ends the connection within {@code timeout} (after anything it still sends). */
    boolean closedWithin(Duration timeout) {
        ScheduledFuture<?> deadline = NbdTimer.after(timeout.toNanos(), () -> {
            try {
                channel.close();
            } catch (IOException e) {
                // closing anyway
            }
        });
        try {
            ByteBuffer sink = ByteBuffer.allocate(4096);
            while (true) {
                sink.clear();
                if (transport.read(sink) < 0) {
                    return true;
                }
            }
        } catch (IOException e) {
            return channel.isOpen(); // our own deadline closed it: the server did not
        } finally {
            deadline.cancel(false);
        }
    }

    Transport transport() {
        return transport;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
