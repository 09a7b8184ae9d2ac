package dev.handoff.nbd;

import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Objects;

/**
 * An NBD export named by a URI, in the forms QEMU and libnbd accept:
 * <ul>
 *   <li>{@code nbd+unix:///NAME?socket=PATH}: export NAME on the unix socket PATH;</li>
 *   <li>{@code nbd://HOST:PORT/NAME} (port 10809 if omitted): export NAME over TCP;</li>
 *   <li>{@code nbds://HOST:PORT/NAME}, {@code nbds+unix:///NAME?socket=PATH}: the same over TLS,
 *       which the client then insists on (it never falls back to plain text).</li>
 * </ul>
 * The export name is the URI's path without its leading slash, percent-decoded; an empty name is
 * the server's default export. A TLS URI may name the host the server's certificate must be for,
 * {@code ?tls-hostname=NAME} (libnbd's parameter); without it a TCP URI's host is checked, and a
 * unix socket's server is checked against the CA only, as QEMU and libnbd do.
 *
 * @param address     where the server listens
 * @param exportName  the export's name
 * @param tls         whether the connection must be upgraded to TLS
 * @param tlsHostname the name the server's certificate must carry, or null for the default
 */
public record NbdUri(NbdAddress address, String exportName, boolean tls, String tlsHostname) {

    public NbdUri {
        Objects.requireNonNull(address, "address");
        Objects.requireNonNull(exportName, "exportName");
        if (!NbdWire.isValidString(exportName)) {
            throw new IllegalArgumentException("export name must be at most 4096 UTF-8 bytes without NUL");
        }
        if (tlsHostname != null && (!tls || tlsHostname.isEmpty())) {
            throw new IllegalArgumentException(tls ? "empty tls-hostname" : "tls-hostname needs a TLS URI (nbds)");
        }
    }

    /** A plain (non-TLS) URI. */
    public NbdUri(NbdAddress address, String exportName) {
        this(address, exportName, false, null);
    }

    /** The same export over TLS. */
    public NbdUri withTls() {
        return new NbdUri(address, exportName, true, tlsHostname);
    }

    /**
     * The host name the server's certificate must carry: {@code tls-hostname}, else the TCP host;
     * null for a unix socket without {@code tls-hostname} (the CA is then the only check).
     */
    public String verifiedHostname() {
        if (tlsHostname != null) {
            return tlsHostname;
        }
        return address instanceof NbdAddress.Tcp tcp ? tcp.host() : null;
    }

    /** Whether {@code text} looks like an NBD URI (so a caller can tell it from a file name). */
    public static boolean isNbdUri(String text) {
        return text.startsWith("nbd:") || text.startsWith("nbd+") || text.startsWith("nbds:")
                || text.startsWith("nbds+");
    }

    /** Whether {@code text} looks like a TLS NBD URI ({@code nbds://}, {@code nbds+unix://}); false for null. */
    public static boolean isTlsUri(String text) {
        return text != null && (text.startsWith("nbds:") || text.startsWith("nbds+"));
    }

    /** Parses an {@code nbd://}, {@code nbd+unix://}, {@code nbds://} or {@code nbds+unix://} URI. */
    public static NbdUri parse(String text) {
        Objects.requireNonNull(text, "uri");
        URI uri;
        try {
            uri = new URI(text);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("not a valid NBD URI: '" + text + "': " + e.getMessage(), e);
        }
        String scheme = uri.getScheme();
        if (scheme == null) {
            throw new IllegalArgumentException("not an NBD URI (no scheme): '" + text + "'");
        }
        String name = exportName(uri);
        boolean tls = scheme.startsWith("nbds");
        String tlsHostname = null;
        String socket = null;
        String query = uri.getRawQuery();
        if (query != null) {
            for (String raw : query.split("&")) {
                String param = decode(raw);
                if (param.startsWith("socket=") && scheme.endsWith("+unix")) {
                    socket = param.substring("socket=".length());
                } else if (param.startsWith("tls-hostname=") && tls) {
                    tlsHostname = param.substring("tls-hostname=".length());
                    if (tlsHostname.isEmpty()) {
                        throw new IllegalArgumentException("empty tls-hostname in '" + text + "'");
                    }
                } else if (param.startsWith("tls-certificates=")) {
                    throw new IllegalArgumentException("tls-certificates in the URI is not taken: give the"
                            + " credentials directory separately (--tls-creds DIR), in '" + text + "'");
                } else if (!param.isEmpty()) {
                    throw new IllegalArgumentException("unexpected parameter '" + param + "' in '" + text + "'");
                }
            }
        }
        switch (scheme) {
            case "nbd", "nbd+tcp", "nbds", "nbds+tcp" -> {
                String host = uri.getHost();
                if (host == null || host.isEmpty()) {
                    throw new IllegalArgumentException("NBD URI without a host: '" + text + "'");
                }
                if (host.startsWith("[") && host.endsWith("]")) {
                    host = host.substring(1, host.length() - 1);
                }
                int port = uri.getPort() < 0 ? NbdAddress.DEFAULT_PORT : uri.getPort();
                return new NbdUri(NbdAddress.tcp(host, port), name, tls, tlsHostname);
            }
            case "nbd+unix", "nbds+unix" -> {
                if (uri.getRawAuthority() != null) {
                    throw new IllegalArgumentException("a unix NBD URI has no host: '" + text + "'");
                }
                if (socket == null || socket.isEmpty()) {
                    throw new IllegalArgumentException("unix NBD URI needs ?socket=PATH: '" + text + "'");
                }
                return new NbdUri(NbdAddress.unix(Path.of(socket)), name, tls, tlsHostname);
            }
            default -> throw new IllegalArgumentException("not an NBD URI scheme: '" + scheme + "' in '" + text + "'");
        }
    }

    /** Percent-decodes one query parameter (without turning '+' into a space, as form decoding would). */
    private static String decode(String raw) {
        try {
            String decoded = new URI("x:/?" + raw).getQuery();
            return decoded == null ? "" : decoded;
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("bad query parameter '" + raw + "'", e);
        }
    }

    private static String exportName(URI uri) {
        String path = uri.getPath();
        if (path == null || path.isEmpty()) {
            return "";
        }
        return path.startsWith("/") ? path.substring(1) : path;
    }

    /**
     * The URI form, as QEMU's tools take it: {@code nbd+unix:///NAME?socket=PATH} (QEMU insists on
     * the empty authority, {@code ///}) or {@code nbd://HOST:PORT/NAME}, percent-encoded; with
     * {@code nbds} and any {@code tls-hostname} for TLS.
     */
    @Override
    public String toString() {
        try {
            String path = new URI(null, null, "/" + exportName, null).getRawPath();
            String scheme = tls ? "nbds" : "nbd";
            String hostname = tlsHostname == null ? "" : queryParameter("tls-hostname=" + tlsHostname);
            if (address instanceof NbdAddress.Unix unix) {
                return scheme + "+unix://" + path + "?" + queryParameter("socket=" + unix.path())
                        + (hostname.isEmpty() ? "" : "&" + hostname);
            }
            NbdAddress.Tcp tcp = (NbdAddress.Tcp) address;
            String host = tcp.host().indexOf(':') >= 0 ? "[" + tcp.host() + "]" : tcp.host();
            return scheme + "://" + host + ":" + tcp.port() + path + (hostname.isEmpty() ? "" : "?" + hostname);
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String queryParameter(String parameter) throws URISyntaxException {
        return new URI(null, null, null, parameter, null).getRawQuery().replace("&", "%26");
    }
}
