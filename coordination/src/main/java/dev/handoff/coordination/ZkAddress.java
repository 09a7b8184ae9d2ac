package dev.handoff.coordination;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Where an image's ownership lives: a ZooKeeper ensemble and a znode path under which the
 * ownership record, the lock and the image's identity are kept, written
 * {@code zk://HOST:PORT[,HOST:PORT...]/PATH}. A host without a port means ZooKeeper's 2181; an
 * IPv6 address is written in brackets ({@code [::1]:2181}).
 *
 * <p>One PATH per image: every holder of the image, on every host, names the same PATH, and no
 * other image uses it (a holder refuses a PATH that another image's identity claims).
 *
 * @param connectString the ensemble as ZooKeeper's client takes it ({@code host:port,host:port})
 * @param path          an absolute znode path other than the root, without a trailing slash
 */
public record ZkAddress(String connectString, String path) {
    /** The port ZooKeeper listens on by default. */
    public static final int DEFAULT_PORT = 2181;

    private static final String SCHEME = "zk://";

    public ZkAddress {
        Objects.requireNonNull(connectString, "connectString");
        Objects.requireNonNull(path, "path");
        checkPath(path);
        if (connectString.isEmpty()) {
            throw new IllegalArgumentException("no ZooKeeper server given");
        }
    }

    /**
     * Parses {@code zk://HOST:PORT[,HOST:PORT...]/PATH}.
     *
     * @throws IllegalArgumentException with a one-line reason if {@code uri} is not such an address
     */
    public static ZkAddress parse(String uri) {
        Objects.requireNonNull(uri, "uri");
        String usage = "expected zk://HOST:PORT[,HOST:PORT...]/PATH, e.g. zk://10.0.0.1:2181,10.0.0.2:2181/handoff/vm1-disk";
        if (!uri.startsWith(SCHEME)) {
            throw new IllegalArgumentException("'" + uri + "' is not a ZooKeeper address: " + usage);
        }
        String rest = uri.substring(SCHEME.length());
        if (rest.indexOf('?') >= 0 || rest.indexOf('#') >= 0) {
            throw new IllegalArgumentException("'" + uri + "' has a query or fragment, which a ZooKeeper address has not: " + usage);
        }
        int slash = rest.indexOf('/');
        if (slash < 0) {
            throw new IllegalArgumentException("'" + uri + "' names no PATH: " + usage);
        }
        String hosts = rest.substring(0, slash);
        String path = rest.substring(slash);
        if (hosts.isEmpty()) {
            throw new IllegalArgumentException("'" + uri + "' names no server: " + usage);
        }
        List<String> servers = new ArrayList<>();
        for (String server : hosts.split(",", -1)) {
            servers.add(server(server, uri));
        }
        try {
            checkPath(path);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("'" + uri + "': " + e.getMessage());
        }
        return new ZkAddress(String.join(",", servers), path);
    }

    private static String server(String server, String uri) {
        if (server.isEmpty()) {
            throw new IllegalArgumentException("'" + uri + "' has an empty server in its list");
        }
        String host;
        String port;
        if (server.startsWith("[")) {
            int close = server.indexOf(']');
            if (close < 0) {
                throw new IllegalArgumentException("'" + uri + "': unclosed '[' in server '" + server + "'");
            }
            host = server.substring(0, close + 1);
            String tail = server.substring(close + 1);
            if (!tail.isEmpty() && !tail.startsWith(":")) {
                throw new IllegalArgumentException("'" + uri + "': bad server '" + server + "'");
            }
            port = tail.isEmpty() ? null : tail.substring(1);
        } else {
            int colon = server.indexOf(':');
            if (colon != server.lastIndexOf(':')) {
                throw new IllegalArgumentException("'" + uri + "': server '" + server
                        + "' has several ':' (write an IPv6 address in brackets, [::1]:2181)");
            }
            host = colon < 0 ? server : server.substring(0, colon);
            port = colon < 0 ? null : server.substring(colon + 1);
        }
        if (host.isEmpty() || host.equals("[]")) {
            throw new IllegalArgumentException("'" + uri + "': server '" + server + "' has no host");
        }
        for (int i = 0; i < host.length(); i++) {
            char c = host.charAt(i);
            if (!(Character.isLetterOrDigit(c) || c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']')) {
                throw new IllegalArgumentException("'" + uri + "': host '" + host + "' has a bad character '" + c + "'");
            }
        }
        int p = DEFAULT_PORT;
        if (port != null) {
            try {
                p = Integer.parseInt(port);
            } catch (NumberFormatException e) {
                p = -1;
            }
            if (p < 1 || p > 65535) {
                throw new IllegalArgumentException("'" + uri + "': server '" + server + "' has a bad port '" + port + "'");
            }
        }
        return host + ":" + p;
    }

    private static void checkPath(String path) {
        if (!path.startsWith("/") || path.length() < 2) {
            throw new IllegalArgumentException("PATH must be an absolute znode path below the root, e.g. /handoff/vm1-disk");
        }
        if (path.endsWith("/")) {
            throw new IllegalArgumentException("PATH '" + path + "' ends with '/'");
        }
        for (String segment : path.substring(1).split("/", -1)) {
            if (segment.isEmpty()) {
                throw new IllegalArgumentException("PATH '" + path + "' has an empty segment");
            }
            if (segment.equals(".") || segment.equals("..")) {
                throw new IllegalArgumentException("PATH '" + path + "' has a '" + segment + "' segment");
            }
            for (int i = 0; i < segment.length(); i++) {
                char c = segment.charAt(i);
                if (c < 0x20 || c == 0x7f || (c >= 0xd800 && c <= 0xf8ff) || (c >= 0xfff0)) {
                    throw new IllegalArgumentException("PATH '" + path + "' has a character ZooKeeper refuses (U+"
                            + String.format("%04X", (int) c) + ")");
                }
            }
        }
    }

    /** The znode that holds the ownership record. */
    String recordPath() {
        return path + "/record";
    }

    /** The ephemeral znode that is the lock. */
    String lockPath() {
        return path + "/lock";
    }

    /** {@code zk://connectString/path}. */
    @Override
    public String toString() {
        return SCHEME + connectString + path;
    }
}
