package dev.handoff.nbd;

import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Objects;

/**
 * An NBD export named by a URI, in the forms QEMU and libnbd accept:
 * <ul>
 *   <li>{@code nbd+unix:///NAME?socket=PATH}: export NAME on the unix socket PATH;</li>
 *   <li>{@code nbd://HOST:PORT/NAME} (port 10809 if omitted): export NAME over TCP.</li>
 * </ul>
 * The export name is the URI's path without its leading slash, percent-decoded; an empty name is
 * the server's default export. TLS ({@code nbds}) is not supported.
 */
public record NbdUri(NbdAddress address, String exportName) {

    public NbdUri {
        Objects.requireNonNull(address, "address");
        Objects.requireNonNull(exportName, "exportName");
        if (!NbdWire.isValidString(exportName)) {
            throw new IllegalArgumentException("export name must be at most 4096 UTF-8 bytes without NUL");
        }
    }

    /** Whether {@code text} looks like an NBD URI (so a caller can tell it from a file name). */
    public static boolean isNbdUri(String text) {
        return text.startsWith("nbd:") || text.startsWith("nbd+") || text.startsWith("nbds:")
                || text.startsWith("nbds+");
    }

    /** Parses an {@code nbd://} or {@code nbd+unix://} URI. */
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
        switch (scheme) {
            case "nbd", "nbd+tcp" -> {
                String host = uri.getHost();
                if (host == null || host.isEmpty()) {
                    throw new IllegalArgumentException("NBD URI without a host: '" + text + "'");
                }
                if (host.startsWith("[") && host.endsWith("]")) {
                    host = host.substring(1, host.length() - 1);
                }
                if (uri.getRawQuery() != null) {
                    throw new IllegalArgumentException("unexpected query in TCP NBD URI: '" + text + "'");
                }
                int port = uri.getPort() < 0 ? NbdAddress.DEFAULT_PORT : uri.getPort();
                return new NbdUri(NbdAddress.tcp(host, port), name);
            }
            case "nbd+unix" -> {
                if (uri.getRawAuthority() != null) {
                    throw new IllegalArgumentException("a unix NBD URI has no host: '" + text + "'");
                }
                String socket = null;
                String query = uri.getRawQuery();
                if (query != null) {
                    for (String raw : query.split("&")) {
                        String param = decode(raw);
                        if (param.startsWith("socket=")) {
                            socket = param.substring("socket=".length());
                        } else if (!param.isEmpty()) {
                            throw new IllegalArgumentException("unknown parameter '" + param + "' in '" + text + "'");
                        }
                    }
                }
                if (socket == null || socket.isEmpty()) {
                    throw new IllegalArgumentException("unix NBD URI needs ?socket=PATH: '" + text + "'");
                }
                return new NbdUri(NbdAddress.unix(Path.of(socket)), name);
            }
            case "nbds", "nbds+unix", "nbds+tcp" ->
                    throw new IllegalArgumentException("NBD over TLS is not supported: '" + text + "'");
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
     * the empty authority, {@code ///}) or {@code nbd://HOST:PORT/NAME}, percent-encoded.
     */
    @Override
    public String toString() {
        try {
            String path = new URI(null, null, "/" + exportName, null).getRawPath();
            if (address instanceof NbdAddress.Unix unix) {
                String query = new URI(null, null, null, "socket=" + unix.path(), null).getRawQuery()
                        .replace("&", "%26");
                return "nbd+unix://" + path + "?" + query;
            }
            NbdAddress.Tcp tcp = (NbdAddress.Tcp) address;
            String host = tcp.host().indexOf(':') >= 0 ? "[" + tcp.host() + "]" : tcp.host();
            return "nbd://" + host + ":" + tcp.port() + path;
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
