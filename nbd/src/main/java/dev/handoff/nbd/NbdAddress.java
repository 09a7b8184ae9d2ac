package dev.handoff.nbd;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.Objects;

/**
 * Where an NBD server listens: a unix socket, or a TCP port (on 127.0.0.1 unless a host is given).
 *
 * <p>Text form, as taken by {@link #parse} and produced by {@link #toString}: {@code unix:PATH},
 * {@code tcp:HOST:PORT} (also {@code tcp:PORT} and {@code HOST:PORT}; IPv6 hosts in brackets).
 */
public sealed interface NbdAddress permits NbdAddress.Unix, NbdAddress.Tcp {

    /** The IANA port for NBD. */
    int DEFAULT_PORT = 10809;

    /** The loopback host a TCP address binds to by default. */
    String LOOPBACK = "127.0.0.1";

    /** A unix socket at {@code path}. */
    static Unix unix(Path path) {
        return new Unix(path);
    }

    /** TCP port {@code port} on 127.0.0.1; port 0 asks the system for a free port when binding. */
    static Tcp tcp(int port) {
        return new Tcp(LOOPBACK, port);
    }

    /** TCP port {@code port} on {@code host}. */
    static Tcp tcp(String host, int port) {
        return new Tcp(host, port);
    }

    /** Parses {@code unix:PATH}, {@code tcp:HOST:PORT}, {@code tcp:PORT} or {@code HOST:PORT}. */
    static NbdAddress parse(String text) {
        Objects.requireNonNull(text, "address");
        if (text.startsWith("unix:")) {
            String path = text.substring("unix:".length());
            if (path.isEmpty()) {
                throw new IllegalArgumentException("empty unix socket path in '" + text + "'");
            }
            return unix(Path.of(path));
        }
        String rest = text.startsWith("tcp:") ? text.substring("tcp:".length()) : text;
        int colon = rest.lastIndexOf(':');
        if (colon < 0) {
            if (!text.startsWith("tcp:")) {
                throw new IllegalArgumentException("not an NBD address (unix:PATH or tcp:HOST:PORT): '" + text + "'");
            }
            return tcp(parsePort(rest, text));
        }
        String host = rest.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        if (host.isEmpty()) {
            host = LOOPBACK;
        }
        return tcp(host, parsePort(rest.substring(colon + 1), text));
    }

    private static int parsePort(String port, String text) {
        try {
            int p = Integer.parseInt(port);
            if (p < 0 || p > 65535) {
                throw new IllegalArgumentException("port out of range in '" + text + "'");
            }
            return p;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("bad port in '" + text + "'", e);
        }
    }

    /** The socket address to bind or connect to. */
    SocketAddress socketAddress();

    /** Opens a blocking channel connected to this address. */
    SocketChannel connect(java.time.Duration timeout) throws IOException;

    /** A unix socket. */
    record Unix(Path path) implements NbdAddress {
        public Unix {
            Objects.requireNonNull(path, "path");
        }

        @Override
        public SocketAddress socketAddress() {
            return UnixDomainSocketAddress.of(path);
        }

        @Override
        public SocketChannel connect(java.time.Duration timeout) throws IOException {
            SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
            try {
                channel.connect(socketAddress()); // local: completes or fails at once
                return channel;
            } catch (IOException | RuntimeException e) {
                channel.close();
                throw e;
            }
        }

        @Override
        public String toString() {
            return "unix:" + path;
        }
    }

    /** A TCP host and port. */
    record Tcp(String host, int port) implements NbdAddress {
        public Tcp {
            Objects.requireNonNull(host, "host");
            if (port < 0 || port > 65535) {
                throw new IllegalArgumentException("port out of range: " + port);
            }
        }

        @Override
        public SocketAddress socketAddress() {
            return new InetSocketAddress(host, port);
        }

        /**
         * Whether the host is a loopback address (127.0.0.0/8, ::1, or a name that resolves to
         * one), reachable from this machine only. A name that does not resolve is not.
         */
        public boolean isLoopback() {
            try {
                return java.net.InetAddress.getByName(host).isLoopbackAddress();
            } catch (java.net.UnknownHostException e) {
                return false;
            }
        }

        @Override
        public SocketChannel connect(java.time.Duration timeout) throws IOException {
            SocketChannel channel = SocketChannel.open();
            try {
                channel.socket().connect(socketAddress(), (int) Math.min(Integer.MAX_VALUE, timeout.toMillis()));
                channel.socket().setTcpNoDelay(true);
                return channel;
            } catch (IOException | RuntimeException e) {
                channel.close();
                throw e;
            }
        }

        @Override
        public String toString() {
            return "tcp:" + (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
        }
    }
}
