package dev.handoff.nbd;

import java.security.cert.CertPathBuilderException;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.X509Certificate;
import java.util.Locale;
import javax.security.auth.x500.X500Principal;

/**
 * Says in one line why a TLS handshake failed, from the side that saw it: JSSE's exceptions name
 * the TLS mechanics ("PKIX path building failed", "Received fatal alert: bad_certificate"); an
 * operator needs to know which certificate was refused and why.
 */
final class TlsFailure {
    private static final String ALERT = "Received fatal alert: ";

    private TlsFailure() {
    }

    /** The subject of a certificate in RFC 4514 form, as {@link ClientAllowList} takes it. */
    static String subject(X509Certificate certificate) {
        return certificate.getSubjectX500Principal().getName(X500Principal.RFC2253);
    }

    /** Why a client's handshake with this server failed. */
    static String seenByServer(Throwable failure) {
        ServerTls.NotAllowedException notAllowed = find(failure, ServerTls.NotAllowedException.class);
        if (notAllowed != null) {
            return notAllowed.getMessage();
        }
        if (find(failure, CertificateExpiredException.class) != null) {
            return "the client's certificate has expired";
        }
        if (find(failure, CertificateNotYetValidException.class) != null) {
            return "the client's certificate is not valid yet";
        }
        if (untrusted(failure)) {
            return "the client's certificate is not signed by this server's certificate authority";
        }
        String message = innermostMessage(failure);
        if (message.contains("Empty client certificate chain") || message.contains("certificate_required")) {
            return "the client sent no certificate (this server requires one signed by its certificate authority)";
        }
        String alert = alert(failure);
        if (alert != null) {
            return "the client aborted the TLS handshake (TLS alert " + alert + ")"
                    + (certificateAlert(alert) ? ": it does not accept this server's certificate" : "");
        }
        if (message.contains("Unsupported or unrecognized SSL message")) {
            return "the client did not speak TLS after its NBD_OPT_STARTTLS was accepted";
        }
        if (message.contains(TlsTransport.PEER_LEFT)) {
            // GnuTLS clients (QEMU, libnbd) that refuse the server's certificate hang up without an alert.
            return "the client hung up during the TLS handshake (does it trust this server's certificate?)";
        }
        return "TLS handshake failed: " + message;
    }

    /** Why this client's handshake with a server failed; {@code host} is the name checked, or null. */
    static String seenByClient(Throwable failure, String host, String caFile) {
        if (find(failure, CertificateExpiredException.class) != null) {
            return "the server's certificate has expired";
        }
        if (find(failure, CertificateNotYetValidException.class) != null) {
            return "the server's certificate is not valid yet";
        }
        if (untrusted(failure)) {
            return "the server's certificate is not signed by the certificate authority in " + caFile;
        }
        String message = innermostMessage(failure);
        if (message.startsWith("No subject alternative") || message.startsWith("No name matching")) {
            return "the server's certificate is not for host " + host + " (" + message.strip() + ")";
        }
        String alert = alert(failure);
        if (alert != null) {
            if (alert.equals("certificate_required")) {
                return "the server requires a client certificate (client-cert.pem and client-key.pem beside " + caFile
                        + ")";
            }
            return "the server refused the TLS session (TLS alert " + alert + ")"
                    + (certificateAlert(alert) ? ": it does not accept this client's certificate (signed by its"
                    + " certificate authority? on its allow-list?)" : "");
        }
        if (message.contains("Unsupported or unrecognized SSL message")) {
            return "the server did not speak TLS after accepting NBD_OPT_STARTTLS";
        }
        if (message.contains(TlsTransport.PEER_LEFT)) {
            return "the server hung up during the TLS handshake (does it accept this client's certificate?)";
        }
        return "TLS handshake failed: " + message;
    }

    private static boolean untrusted(Throwable failure) {
        return find(failure, CertPathBuilderException.class) != null
                || find(failure, CertPathValidatorException.class) != null
                || innermostMessage(failure).contains("unable to find valid certification path")
                || String.valueOf(failure.getMessage()).contains("PKIX path");
    }

    private static boolean certificateAlert(String alert) {
        return switch (alert.toLowerCase(Locale.ROOT)) {
            case "bad_certificate", "certificate_unknown", "unknown_ca", "certificate_expired", "certificate_revoked",
                 "unsupported_certificate", "access_denied", "decrypt_error" -> true;
            default -> false;
        };
    }

    /** The alert named in "Received fatal alert: NAME" anywhere in the chain, or null. */
    private static String alert(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            String m = t.getMessage();
            if (m != null && m.contains(ALERT)) {
                String rest = m.substring(m.indexOf(ALERT) + ALERT.length()).strip();
                int space = rest.indexOf(' ');
                return space < 0 ? rest : rest.substring(0, space);
            }
        }
        return null;
    }

    private static <T extends Throwable> T find(Throwable failure, Class<T> type) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (type.isInstance(t)) {
                return type.cast(t);
            }
            for (Throwable s : t.getSuppressed()) {
                if (type.isInstance(s)) {
                    return type.cast(s);
                }
            }
        }
        return null;
    }

    private static String innermostMessage(Throwable failure) {
        String message = String.valueOf(failure.getMessage());
        for (Throwable t = failure.getCause(); t != null; t = t.getCause()) {
            if (t.getMessage() != null) {
                message = t.getMessage();
            }
        }
        return message;
    }
}
