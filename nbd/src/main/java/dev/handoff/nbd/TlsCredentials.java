package dev.handoff.nbd;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.CertificateParsingException;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * X.509 credentials for NBD over TLS, read from a directory laid out as QEMU's
 * {@code tls-creds-x509} object and libnbd's {@code tls-certificates=DIR} expect it:
 * <pre>
 *   ca-cert.pem                        the certificate authority (or several) trusted to sign peers
 *   server-cert.pem, server-key.pem    a server's certificate (optionally followed by its chain) and key
 *   client-cert.pem, client-key.pem    a client's, optional for a client
 * </pre>
 * Peers are trusted only if their certificate chains to {@code ca-cert.pem}; the system's trust
 * store is never used. A server always asks for a client certificate (QEMU's {@code verify-peer}
 * default); a client without one is refused by such servers.
 *
 * <p>Everything is checked when the directory is loaded (DESIGN §7.5), so a bad directory fails at start-up,
 * with one line that names the file: a file missing, unreadable or not PEM; an encrypted key; a key
 * that does not belong to its certificate; a certificate that has expired, is not yet valid, is not
 * signed by the CA, or is not meant for its role (extended key usage).
 *
 * <p>Immutable; thread-safe.
 */
public final class TlsCredentials {
    /** The side of the connection these credentials are for. */
    public enum Role {
        SERVER("server"), CLIENT("client");

        private final String prefix;

        Role(String prefix) {
            this.prefix = prefix;
        }
    }

    /** The protocols offered: TLS 1.3, and 1.2 because the NBD protocol requires it (nothing older). */
    static final String[] PROTOCOLS = {"TLSv1.3", "TLSv1.2"};

    private static final String SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
    private static final String CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
    private static final String ANY_USAGE = "2.5.29.37.0";

    private final Path directory;
    private final Role role;
    private final List<X509Certificate> authorities;
    /** Our certificate and its chain; empty for a client without a certificate. */
    private final List<X509Certificate> chain;
    private final PrivateKey key;

    private TlsCredentials(Path directory, Role role, List<X509Certificate> authorities, List<X509Certificate> chain,
                           PrivateKey key) {
        this.directory = directory;
        this.role = role;
        this.authorities = List.copyOf(authorities);
        this.chain = List.copyOf(chain);
        this.key = key;
    }

    /** A server's credentials: {@code ca-cert.pem}, {@code server-cert.pem} and {@code server-key.pem} in {@code dir}. */
    public static TlsCredentials server(Path dir) throws IOException {
        return load(dir, Role.SERVER);
    }

    /**
     * A client's credentials: {@code ca-cert.pem} in {@code dir}, and {@code client-cert.pem} with
     * {@code client-key.pem} if present (both or neither).
     */
    public static TlsCredentials client(Path dir) throws IOException {
        return load(dir, Role.CLIENT);
    }

    private static TlsCredentials load(Path dir, Role role) throws IOException {
        Objects.requireNonNull(dir, "dir");
        if (!Files.isDirectory(dir)) {
            throw new IOException("TLS credentials " + dir + ": " + (Files.exists(dir) ? "not a directory"
                    : "no such directory"));
        }
        Path caFile = dir.resolve("ca-cert.pem");
        List<X509Certificate> authorities = certificates(caFile);
        Path certFile = dir.resolve(role.prefix + "-cert.pem");
        Path keyFile = dir.resolve(role.prefix + "-key.pem");
        if (role == Role.CLIENT && !Files.exists(certFile) && !Files.exists(keyFile)) {
            return new TlsCredentials(dir, role, authorities, List.of(), null);
        }
        if (role == Role.CLIENT && Files.exists(certFile) != Files.exists(keyFile)) {
            Path missing = Files.exists(certFile) ? keyFile : certFile;
            throw new IOException(missing + ": no such file (a client certificate needs both "
                    + certFile.getFileName() + " and " + keyFile.getFileName() + ")");
        }
        List<X509Certificate> chain = certificates(certFile);
        PrivateKey key = privateKey(keyFile);
        X509Certificate leaf = chain.get(0);
        checkKeyMatches(key, leaf, keyFile, certFile);
        checkValidity(leaf, certFile);
        checkSignedBy(chain, authorities, certFile, caFile);
        checkUsage(leaf, role, certFile);
        return new TlsCredentials(dir, role, authorities, chain, key);
    }

    /** The directory the credentials came from. */
    public Path directory() {
        return directory;
    }

    public Role role() {
        return role;
    }

    /** Whether there is a certificate to present (always for a server). */
    public boolean hasCertificate() {
        return !chain.isEmpty();
    }

    /** Our certificate, or null for a client without one. */
    public X509Certificate certificate() {
        return chain.isEmpty() ? null : chain.get(0);
    }

    /** The trust manager that checks peers against {@code ca-cert.pem}. */
    X509ExtendedTrustManager trustManager() {
        try {
            KeyStore trusted = KeyStore.getInstance("PKCS12");
            trusted.load(null, null);
            for (int i = 0; i < authorities.size(); i++) {
                trusted.setCertificateEntry("ca-" + i, authorities.get(i));
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
            tmf.init(trusted);
            for (var tm : tmf.getTrustManagers()) {
                if (tm instanceof X509ExtendedTrustManager x) {
                    return x;
                }
            }
            throw new IllegalStateException("the JDK's PKIX trust manager factory made no X509ExtendedTrustManager");
        } catch (GeneralSecurityException | IOException e) {
            throw new IllegalStateException("cannot set up TLS trust from " + directory + ": " + e, e);
        }
    }

    /** A TLS context presenting our certificate (if any) and trusting peers through {@code trust}. */
    SSLContext context(X509TrustManager trust) {
        try {
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            KeyStore keys = KeyStore.getInstance("PKCS12");
            keys.load(null, null);
            char[] password = new char[0];
            if (!chain.isEmpty()) {
                keys.setKeyEntry("nbd", key, password, chain.toArray(new X509Certificate[0]));
            }
            kmf.init(keys, password);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(kmf.getKeyManagers(), new javax.net.ssl.TrustManager[] {trust}, new SecureRandom());
            return context;
        } catch (GeneralSecurityException | IOException e) {
            throw new IllegalStateException("cannot set up a TLS context from " + directory + ": " + e, e);
        }
    }

    @Override
    public String toString() {
        return "TlsCredentials[" + role.prefix + ", " + directory
                + (chain.isEmpty() ? ", no certificate" : ", " + chain.get(0).getSubjectX500Principal().getName()) + "]";
    }

    /* ---------------- Loading and checks ---------------- */

    private static List<X509Certificate> certificates(Path file) throws IOException {
        List<X509Certificate> out = new ArrayList<>();
        CertificateFactory factory;
        try {
            factory = CertificateFactory.getInstance("X.509");
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
        for (Pem.Block block : Pem.read(file)) {
            if (!block.type().equals("CERTIFICATE") && !block.type().equals("X509 CERTIFICATE")) {
                continue;
            }
            try {
                out.add((X509Certificate) factory.generateCertificate(new ByteArrayInputStream(block.der())));
            } catch (GeneralSecurityException e) {
                throw new IOException(file + ": not a valid X.509 certificate: " + e.getMessage());
            }
        }
        if (out.isEmpty()) {
            throw new IOException(file + ": holds no certificate (no -----BEGIN CERTIFICATE----- block)");
        }
        return out;
    }

    private static PrivateKey privateKey(Path file) throws IOException {
        PrivateKey found = null;
        for (Pem.Block block : Pem.read(file)) {
            if (!PrivateKeyDecoder.isPrivateKey(block.type())) {
                continue; // e.g. EC PARAMETERS before an EC key
            }
            if (found != null) {
                throw new IOException(file + ": holds more than one private key");
            }
            try {
                found = PrivateKeyDecoder.decode(block.type(), block.der());
            } catch (GeneralSecurityException e) {
                throw new IOException(file + ": not a usable private key: " + e.getMessage());
            }
        }
        if (found == null) {
            throw new IOException(file + ": holds no private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)");
        }
        return found;
    }

    /** Signs with the key and verifies with the certificate's public key: they must be one pair. */
    private static void checkKeyMatches(PrivateKey key, X509Certificate cert, Path keyFile, Path certFile)
            throws IOException {
        PublicKey publicKey = cert.getPublicKey();
        boolean matches;
        try {
            if (!key.getAlgorithm().equals(publicKey.getAlgorithm())) {
                matches = false;
            } else {
                Signature signer = signature(key.getAlgorithm());
                byte[] probe = "handoff: does this key belong to this certificate?".getBytes(StandardCharsets.US_ASCII);
                signer.initSign(key);
                signer.update(probe);
                byte[] signed = signer.sign();
                Signature verifier = signature(key.getAlgorithm());
                verifier.initVerify(publicKey);
                verifier.update(probe);
                matches = verifier.verify(signed);
            }
        } catch (GeneralSecurityException e) {
            throw new IOException(keyFile + ": cannot check it against " + certFile.getFileName() + ": " + e.getMessage());
        }
        if (!matches) {
            throw new IOException(keyFile + ": this key does not belong to the certificate in " + certFile.getFileName());
        }
    }

    private static Signature signature(String keyAlgorithm) throws GeneralSecurityException {
        return switch (keyAlgorithm) {
            case "RSA" -> Signature.getInstance("SHA256withRSA");
            case "EC" -> Signature.getInstance("SHA256withECDSA");
            case "RSASSA-PSS" -> {
                Signature s = Signature.getInstance("RSASSA-PSS");
                s.setParameter(new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1));
                yield s;
            }
            default -> Signature.getInstance(keyAlgorithm); // Ed25519, Ed448
        };
    }

    private static void checkValidity(X509Certificate cert, Path file) throws IOException {
        try {
            cert.checkValidity();
        } catch (CertificateExpiredException e) {
            throw new IOException(file + ": the certificate expired on " + cert.getNotAfter().toInstant());
        } catch (CertificateNotYetValidException e) {
            throw new IOException(file + ": the certificate is not valid before " + cert.getNotBefore().toInstant());
        }
    }

    /** Our own chain must validate against the CA, or every peer would refuse it. */
    private static void checkSignedBy(List<X509Certificate> chain, List<X509Certificate> authorities, Path certFile,
                                      Path caFile) throws IOException {
        try {
            Set<TrustAnchor> anchors = new HashSet<>();
            for (X509Certificate ca : authorities) {
                anchors.add(new TrustAnchor(ca, null));
            }
            PKIXParameters parameters = new PKIXParameters(anchors);
            parameters.setRevocationEnabled(false);
            CertificateFactory factory = CertificateFactory.getInstance("X.509");
            List<X509Certificate> path = new ArrayList<>(chain);
            path.removeIf(c -> authorities.contains(c)); // a chain that repeats the root
            CertPathValidator.getInstance("PKIX").validate(factory.generateCertPath(path), parameters);
        } catch (CertPathValidatorException e) {
            throw new IOException(certFile + ": not signed by the certificate authority in " + caFile.getFileName()
                    + " (" + e.getMessage() + ")");
        } catch (GeneralSecurityException e) {
            throw new IOException(certFile + ": cannot check it against " + caFile.getFileName() + ": " + e.getMessage());
        }
    }

    private static void checkUsage(X509Certificate cert, Role role, Path file) throws IOException {
        List<String> usages;
        try {
            usages = cert.getExtendedKeyUsage();
        } catch (CertificateParsingException e) {
            throw new IOException(file + ": unreadable extended key usage: " + e.getMessage());
        }
        String needed = role == Role.SERVER ? SERVER_AUTH : CLIENT_AUTH;
        if (usages != null && !usages.contains(needed) && !usages.contains(ANY_USAGE)) {
            throw new IOException(file + ": the certificate is not for TLS " + role.prefix + "s (its extended key usage"
                    + " lacks " + (role == Role.SERVER ? "serverAuth" : "clientAuth") + ")");
        }
    }
}
