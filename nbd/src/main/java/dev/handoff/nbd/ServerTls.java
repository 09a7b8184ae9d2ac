package dev.handoff.nbd;

import java.net.Socket;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * A server's TLS policy: its credentials, the client certificates it accepts (signed by its CA,
 * and, with an allow-list, named on it), and the engines that run each connection's handshake.
 *
 * <p>DESIGN §7.3. The allow-list is checked inside the handshake, right after the certificate chain: a client
 * that is not on it fails the handshake with a TLS alert, exactly as an untrusted one does, and
 * never reaches option negotiation.
 *
 * <p>Immutable; thread-safe (each connection gets an engine of its own).
 */
final class ServerTls {
    private final TlsCredentials credentials;
    private final ClientAllowList allowList;
    private final SSLContext context;

    ServerTls(TlsCredentials credentials, ClientAllowList allowList) {
        if (credentials.role() != TlsCredentials.Role.SERVER) {
            throw new IllegalArgumentException("a server needs server credentials (server-cert.pem), got " + credentials);
        }
        this.credentials = credentials;
        this.allowList = allowList;
        this.context = credentials.context(new AuthorizingTrustManager(credentials.trustManager(), allowList));
    }

    /** A server-side engine for one connection: TLS 1.3 or 1.2, a client certificate required. */
    SSLEngine newEngine() {
        SSLEngine engine = context.createSSLEngine();
        engine.setUseClientMode(false);
        engine.setEnabledProtocols(TlsCredentials.PROTOCOLS);
        engine.setNeedClientAuth(true);
        return engine;
    }

    ClientAllowList allowList() {
        return allowList;
    }

    @Override
    public String toString() {
        return "TLS with " + credentials.directory() + (allowList == null ? "" : ", clients allowed by " + allowList.source());
    }

    /**
     * The CA's verdict on a client's chain, then the allow-list's on its subject. Servers only: the
     * server-side checks throw.
     */
    static final class AuthorizingTrustManager extends X509ExtendedTrustManager {
        private final X509ExtendedTrustManager ca;
        private final ClientAllowList allowList;

        AuthorizingTrustManager(X509ExtendedTrustManager ca, ClientAllowList allowList) {
            this.ca = ca;
            this.allowList = allowList;
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                throws CertificateException {
            ca.checkClientTrusted(chain, authType, engine);
            authorize(chain);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
                throws CertificateException {
            ca.checkClientTrusted(chain, authType, socket);
            authorize(chain);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            ca.checkClientTrusted(chain, authType);
            authorize(chain);
        }

        private void authorize(X509Certificate[] chain) throws CertificateException {
            if (allowList != null && !allowList.permits(chain[0].getSubjectX500Principal())) {
                throw new NotAllowedException("client certificate " + TlsFailure.subject(chain[0])
                        + " is not in " + allowList.source());
            }
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                throws CertificateException {
            throw new CertificateException("a server does not check server certificates");
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
                throws CertificateException {
            throw new CertificateException("a server does not check server certificates");
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            throw new CertificateException("a server does not check server certificates");
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return ca.getAcceptedIssuers();
        }
    }

    /** A client certificate that the CA signed but the allow-list does not name. */
    static final class NotAllowedException extends CertificateException {
        NotAllowedException(String message) {
            super(message);
        }
    }
}
