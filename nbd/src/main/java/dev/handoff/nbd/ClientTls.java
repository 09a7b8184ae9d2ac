package dev.handoff.nbd;

import java.util.Objects;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;

/**
 * A client's TLS policy for one server: the server's certificate must chain to the credentials'
 * CA and, when a host name is known, be for that host (RFC 6125 rules as JSSE applies them to
 * HTTPS: subject alternative names, the common name only when there are none). The client
 * presents its own certificate when the credentials have one.
 *
 * <p>Immutable; thread-safe.
 */
final class ClientTls {
    private final TlsCredentials credentials;
    private final String hostname;
    private final SSLContext context;

    /** {@code hostname} null: the CA is the only check (a unix socket without tls-hostname). */
    ClientTls(TlsCredentials credentials, String hostname) {
        this.credentials = Objects.requireNonNull(credentials, "credentials");
        if (credentials.role() != TlsCredentials.Role.CLIENT) {
            throw new IllegalArgumentException("a client needs client credentials, got " + credentials);
        }
        this.hostname = hostname;
        this.context = credentials.context(credentials.trustManager());
    }

    SSLEngine newEngine() {
        SSLEngine engine = hostname == null ? context.createSSLEngine() : context.createSSLEngine(hostname, 0);
        engine.setUseClientMode(true);
        SSLParameters parameters = engine.getSSLParameters();
        parameters.setProtocols(TlsCredentials.PROTOCOLS);
        if (hostname != null) {
            parameters.setEndpointIdentificationAlgorithm("HTTPS");
        }
        engine.setSSLParameters(parameters);
        return engine;
    }

    /** The host name checked, or null. */
    String hostname() {
        return hostname;
    }

    /** The CA file, for messages. */
    String caFile() {
        return credentials.directory().resolve("ca-cert.pem").toString();
    }
}
