package dev.handoff.nbd;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.net.BindException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.IntFunction;

/**
 * An NBD server: exports {@link dev.handoff.device.BlockDevice}s, in particular a mirror job's
 * guest device, on unix sockets or TCP ports (127.0.0.1 unless told otherwise).
 *
 * <h2>Who gets in (DESIGN §7)</h2>
 * With {@link Builder#tls TLS credentials} every client must upgrade to TLS with
 * {@code NBD_OPT_STARTTLS} before anything else (the protocol's FORCEDTLS mode, as QEMU's
 * {@code --tls-creds}): options before it are refused with {@code NBD_REP_ERR_TLS_REQD}, and a
 * client that does not upgrade learns nothing and reaches no export. The client must present a
 * certificate signed by the credentials' CA and, with {@link Builder#tlsAuthz an allow-list},
 * named on it. Without TLS the server listens only on loopback TCP addresses and unix sockets:
 * another TCP address is refused at start unless {@link Builder#insecure()} says the network is
 * trusted. Unix sockets are created with mode 0600 unless {@link Builder#unixSocketMode} says
 * otherwise. Each refused client is reported in one line ({@link Builder#onRefused}).
 *
 * <h2>Protocol</h2>
 * Fixed newstyle handshake with {@code NBD_OPT_GO}, {@code NBD_OPT_INFO}, {@code NBD_OPT_LIST},
 * {@code NBD_OPT_ABORT}, the old {@code NBD_OPT_EXPORT_NAME}, {@code NBD_OPT_STARTTLS} (answered
 * {@code NBD_REP_ERR_POLICY} without credentials), {@code NBD_OPT_STRUCTURED_REPLY} and the meta
 * context options with the one context {@code base:allocation}; every other option is answered
 * {@code NBD_REP_ERR_UNSUP}. The empty export name (the protocol's default export) is the one
 * export when exactly one is served and none is named "". Transmission, with simple replies or,
 * once negotiated, one structured chunk per request: READ, WRITE (with FUA, which flushes before
 * the reply), FLUSH, TRIM, WRITE_ZEROES (a fast zero succeeds where the range is a hole already and
 * is {@code ENOTSUP} elsewhere), CACHE (checked and answered; the device caches as it does),
 * BLOCK_STATUS (the device's {@link dev.handoff.device.BlockDevice#nextData allocation map}: a
 * device that cannot tell is all data) and DISC; requests of one connection run concurrently and
 * are answered in completion order (a small READ or WRITE the connection's reader had to wait
 * for, and that finds none of its connection's requests in flight, is served by the reader itself:
 * {@link Builder#inlineRequests}).
 * Read-only exports refuse WRITE, TRIM and WRITE_ZEROES with {@code EPERM}. Device failures map to
 * the protocol's errors: I/O error to {@code EIO}, no space to {@code ENOSPC}, read-only, inactive
 * and fenced to {@code EPERM}, out of range to {@code EINVAL}, closed to {@code ESHUTDOWN}.
 *
 * <h2>Threads and limits</h2>
 * One acceptor thread per address, one reader thread per connection and a small worker pool per
 * connection ({@link Builder#workersPerConnection}, {@link Builder#inlineRequests}); all daemon
 * threads. Memory, connections, options, handshake time and stalled replies are bounded (see the
 * builder; a client over the connection limit is told so with an NBD error); a peer that breaks the
 * protocol gets the protocol's error where there is one, and is otherwise disconnected. The server
 * never closes the exported devices.
 *
 * <p>Thread safety: every method may be called from any thread.
 *
 * <h2>Access modes</h2>
 * {@code closed} is touched only through accessors named by mode (CONTRIBUTING, "One accessor
 * convention"): {@code lv} volatile load, {@code cas} compare-and-set. {@link #casClosed} by
 * {@link #close} (one winner shuts down); {@link #lvClosed} by the acceptors and
 * {@code serve}, pairing with it. {@code serve} and {@code close} are a store-load pair: serve
 * puts the connection in the map, then loads {@code closed}; close sets {@code closed}, then reads
 * the map. Both sides are volatile (the map's put and iteration are), so at least one sees the
 * other: a connection accepted while the server closes is closed by one of them.
 * {@code CONNECTION_IDS} gives each connection a distinct id and orders nothing.
 */
public final class NbdServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("dev.handoff.nbd");
    private static final AtomicLong CONNECTION_IDS = new AtomicLong(); // uniqueness only; orders nothing
    private static final VarHandle CLOSED;

    static {
        try {
            CLOSED = MethodHandles.lookup().findVarHandle(NbdServer.class, "closed", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /**
     * Clients over the connection limit refused at once with an NBD error, each for at most the
     * handshake timeout; beyond that a new one is closed unanswered (and logged). DESIGN §7.6.
     */
    static final int MAX_REFUSING = 8;

    private final ServerLimits limits;
    private final IntFunction<ByteBuffer> allocator;
    private final ServerTls tls;
    private final Set<PosixFilePermission> unixSocketMode;
    private final Consumer<String> onRefused;
    private final Map<String, NbdExport> exports = new ConcurrentSkipListMap<>();
    private final Map<Long, ServerConnection> connections = new ConcurrentHashMap<>();
    /** Clients over the connection limit, being told so with an NBD error (at most {@link #MAX_REFUSING}). */
    private final Map<Long, ServerConnection> refusing = new ConcurrentHashMap<>();
    private final List<Listener> listeners = new ArrayList<>();
    private final Semaphore serverBytes;
    @SuppressWarnings("unused") // through CLOSED
    private volatile boolean closed;
    private final ScheduledFuture<?> watchdog;

    private record Listener(NbdAddress address, ServerSocketChannel channel, Thread acceptor, Path ownedSocket) {
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private boolean lvClosed() {
        return (boolean) CLOSED.getVolatile(this); // pairs with casClosed
    }

    private boolean casClosed(boolean expected, boolean next) {
        return CLOSED.compareAndSet(this, expected, next); // one winner closes
    }

    private NbdServer(Builder builder) {
        this.limits = builder.limits();
        this.allocator = builder.allocator;
        this.tls = builder.credentials == null ? null : new ServerTls(builder.credentials, builder.allowList);
        this.unixSocketMode = builder.unixSocketMode;
        this.onRefused = builder.onRefused;
        this.serverBytes = new Semaphore((int) limits.maxBytesInFlight());
        for (NbdExport export : builder.exports) {
            addExport(export);
        }
        long shortest = Math.min(limits.handshakeTimeout().toNanos(), limits.replyTimeout().toNanos());
        this.watchdog = NbdTimer.every(NbdTimer.periodFor(shortest), this::checkDeadlines);
    }

    /** A builder with the default limits and no address or export yet. */
    public static Builder builder() {
        return new Builder();
    }

    /* ---------------- Exports ---------------- */

    /** Adds (or replaces) an export; connections already serving a replaced export keep it. */
    public void addExport(NbdExport export) {
        exports.put(export.name(), Objects.requireNonNull(export, "export"));
    }

    /** Removes an export from new negotiations; connections already serving it keep it. */
    public boolean removeExport(String name) {
        return exports.remove(name) != null;
    }

    /**
     * The export a client asking for {@code name} gets: the one of that name; for the empty name
     * (the protocol's default export, what {@code nbd://HOST:PORT} and {@code nbd+unix:///?socket=...}
     * ask for) with no export of that name, the only export if there is exactly one; else null.
     */
    NbdExport export(String name) {
        NbdExport export = exports.get(name);
        if (export == null && name.isEmpty()) {
            Iterator<NbdExport> all = exports.values().iterator();
            NbdExport only = all.hasNext() ? all.next() : null;
            return all.hasNext() ? null : only;
        }
        return export;
    }

    /** The exports, by name. */
    public List<NbdExport> exports() {
        return List.copyOf(exports.values());
    }

    /* ---------------- Addresses ---------------- */

    /** The addresses listened on, with the actual port where port 0 was asked for. */
    public List<NbdAddress> addresses() {
        synchronized (listeners) {
            return listeners.stream().map(Listener::address).toList();
        }
    }

    /** The URI of export {@code name} at the first address. */
    public NbdUri uri(String name) {
        return new NbdUri(addresses().get(0), name);
    }

    /** Connections currently open. */
    public int connectionCount() {
        return connections.size();
    }

    private void listen(NbdAddress requested) throws IOException {
        Path owned = null;
        ServerSocketChannel channel;
        NbdAddress actual;
        if (requested instanceof NbdAddress.Unix unix) {
            channel = bindUnix(unix.path(), unixSocketMode);
            owned = unix.path();
            actual = unix;
        } else {
            channel = ServerSocketChannel.open();
            try {
                channel.bind(requested.socketAddress(), 64);
            } catch (IOException e) {
                channel.close();
                throw e;
            }
            InetSocketAddress bound = (InetSocketAddress) channel.getLocalAddress();
            actual = NbdAddress.tcp(((NbdAddress.Tcp) requested).host(), bound.getPort());
        }
        Thread acceptor = new Thread(() -> accept(channel, actual), "nbd-server-accept-" + actual);
        acceptor.setDaemon(true);
        synchronized (listeners) {
            listeners.add(new Listener(actual, channel, acceptor, owned));
        }
        acceptor.start();
    }

    /** Binds a unix socket with {@code mode}; a stale socket file that nobody listens on is replaced. */
    private static ServerSocketChannel bindUnix(Path path, Set<PosixFilePermission> mode) throws IOException {
        if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            if (!Files.readAttributes(path, java.nio.file.attribute.BasicFileAttributes.class,
                    LinkOption.NOFOLLOW_LINKS).isOther()) {
                throw new BindException(path + " exists and is not a socket");
            }
            boolean live;
            try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                probe.connect(NbdAddress.unix(path).socketAddress());
                live = true;
            } catch (ConnectException e) {
                live = false;
            }
            if (live) {
                throw new BindException("unix socket " + path + " is in use by a running server");
            }
            Files.delete(path);
        }
        return UnixSockets.bind(path, mode);
    }

    private void accept(ServerSocketChannel channel, NbdAddress address) {
        while (!lvClosed()) {
            SocketChannel socket;
            try {
                socket = channel.accept();
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (lvClosed()) {
                    return;
                }
                LOG.log(Level.WARNING, "nbd server on " + address + ": accept failed", e);
                sleepQuietly(100); // e.g. out of file descriptors: do not spin
                continue;
            }
            serve(socket);
        }
    }

    private void serve(SocketChannel socket) {
        try {
            if (socket.getLocalAddress() instanceof InetSocketAddress) {
                socket.socket().setTcpNoDelay(true);
            }
        } catch (IOException e) {
            closeQuietly(socket);
            return;
        }
        long id = CONNECTION_IDS.incrementAndGet();
        ServerConnection connection = new ServerConnection(id, Transport.of(socket), host, limits, serverBytes, allocator);
        boolean over;
        synchronized (connections) { // acceptors of several addresses share the limit
            if (lvClosed()) {
                closeQuietly(socket);
                return;
            }
            over = connections.size() >= limits.maxConnections();
            if (!over) {
                connections.put(id, connection);
            } else if (refusing.size() < MAX_REFUSING) {
                // Told with an NBD error during its handshake, not dropped: the client can say why it failed.
                connection.refuseEveryOption("too many connections: this server serves at most "
                        + limits.maxConnections() + " at once; try again later");
                refusing.put(id, connection);
            } else {
                LOG.log(Level.INFO, "nbd server: " + connections.size() + " clients served and " + refusing.size()
                        + " being refused: closing a connection from " + Transport.of(socket) + " unanswered");
                closeQuietly(socket);
                return;
            }
        }
        if (lvClosed()) { // after the put: the store-load pair with close() (class comment)
            connection.closeNow("server closed");
        }
        Thread reader = new Thread(connection::run, (over ? "nbd-server-refusing-" : "nbd-server-") + id);
        reader.setDaemon(true);
        reader.start();
    }

    private final ServerConnection.Host host = new ServerConnection.Host() {
        @Override
        public NbdExport export(String name) {
            return NbdServer.this.export(name);
        }

        @Override
        public List<NbdExport> exports() {
            return NbdServer.this.exports();
        }

        @Override
        public void closed(ServerConnection connection) {
            connections.remove(connection.id());
            refusing.remove(connection.id());
        }

        @Override
        public ServerTls tls() {
            return tls;
        }

        @Override
        public void refused(ServerConnection connection, String why) {
            try {
                onRefused.accept(why);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "nbd server: the refusal listener failed", e);
            }
        }
    };

    /** Whether clients must start TLS (the server has credentials). */
    public boolean requiresTls() {
        return tls != null;
    }

    private void checkDeadlines() {
        long now = System.nanoTime();
        for (ServerConnection connection : connections.values()) {
            connection.checkDeadlines(now);
        }
        for (ServerConnection connection : refusing.values()) {
            connection.checkDeadlines(now);
        }
    }

    /**
     * Stops listening, lets in-flight requests finish (up to the shutdown grace), then disconnects
     * every client and removes the unix socket files it created. Idempotent.
     */
    @Override
    public void close() {
        if (!casClosed(false, true)) { // then reads the connections: the pair with serve()
            return;
        }
        List<Listener> all;
        synchronized (listeners) {
            all = List.copyOf(listeners);
        }
        for (Listener listener : all) {
            closeQuietly(listener.channel());
        }
        for (ServerConnection connection : refusing.values()) {
            connection.closeNow("server closed");
        }
        for (ServerConnection connection : connections.values()) {
            connection.shutdownGracefully();
        }
        long deadline = System.nanoTime() + limits.shutdownGrace().toNanos();
        for (ServerConnection connection : connections.values()) {
            try {
                long left = Math.max(0, deadline - System.nanoTime());
                if (!connection.awaitDone(left, TimeUnit.NANOSECONDS)) {
                    connection.closeNow("server closed");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                connection.closeNow("server closed");
            }
        }
        for (ServerConnection connection : connections.values()) {
            connection.closeNow("server closed");
        }
        watchdog.cancel(false);
        for (Listener listener : all) {
            try {
                listener.acceptor().join(TimeUnit.SECONDS.toMillis(5));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (listener.ownedSocket() != null) {
                try {
                    Files.deleteIfExists(listener.ownedSocket());
                } catch (IOException e) {
                    LOG.log(Level.DEBUG, () -> "cannot remove " + listener.ownedSocket() + ": " + e);
                }
            }
        }
    }

    private static void closeQuietly(java.io.Closeable c) {
        try {
            c.close();
        } catch (IOException e) {
            // closing anyway
        }
    }

    private static void sleepQuietly(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public String toString() {
        return "NbdServer" + addresses() + " exports " + exports.keySet();
    }

    /* ---------------- Builder ---------------- */

    /** Configures and starts a server. Limits are checked together when the server starts. */
    public static final class Builder {
        private final List<NbdAddress> addresses = new ArrayList<>();
        private final List<NbdExport> exports = new ArrayList<>();
        private final ServerLimits defaults = ServerLimits.defaults();
        private int maxConnections = defaults.maxConnections();
        private int workersPerConnection = defaults.workersPerConnection();
        private boolean inlineRequests = defaults.inlineRequests();
        private Duration inlineAfterWait = defaults.inlineAfterWait();
        private int maxRequestsInFlight = defaults.maxRequestsInFlight();
        private long maxBytesPerConnection = defaults.maxBytesPerConnection();
        private long maxBytesInFlight = defaults.maxBytesInFlight();
        private int maxPayload = defaults.maxPayload();
        private int maxOptions = defaults.maxOptions();
        private Duration handshakeTimeout = defaults.handshakeTimeout();
        private Duration replyTimeout = defaults.replyTimeout();
        private Duration shutdownGrace = defaults.shutdownGrace();
        /** Null: the server's own buffers (pooled direct buffers for requests that fit, heap otherwise). */
        private IntFunction<ByteBuffer> allocator;
        private TlsCredentials credentials;
        private ClientAllowList allowList;
        private boolean insecure;
        private Set<PosixFilePermission> unixSocketMode = UnixSockets.OWNER_ONLY;
        private Consumer<String> onRefused = why -> LOG.log(Level.INFO, "nbd server: " + why);

        private Builder() {
        }

        /** Listens on {@code address} (repeatable). */
        public Builder listen(NbdAddress address) {
            addresses.add(Objects.requireNonNull(address, "address"));
            return this;
        }

        /** Offers {@code export} (repeatable). */
        public Builder export(NbdExport export) {
            exports.add(Objects.requireNonNull(export, "export"));
            return this;
        }

        /**
         * Requires TLS of every client (NBD_OPT_STARTTLS before anything else), with these server
         * credentials; clients must present a certificate signed by their CA.
         */
        public Builder tls(TlsCredentials credentials) {
            this.credentials = Objects.requireNonNull(credentials, "credentials");
            return this;
        }

        /** Lets in only clients whose certificate's subject is on {@code allowList} (needs {@link #tls}). */
        public Builder tlsAuthz(ClientAllowList allowList) {
            this.allowList = Objects.requireNonNull(allowList, "allowList");
            return this;
        }

        /**
         * Allows TCP addresses other than loopback without TLS: anyone who can reach them reads and
         * writes the exports. For networks that are trusted as a whole.
         */
        public Builder insecure() {
            this.insecure = true;
            return this;
        }

        /** The permissions of the unix sockets the server creates (default {@code rw-------}). */
        public Builder unixSocketMode(Set<PosixFilePermission> mode) {
            this.unixSocketMode = Set.copyOf(Objects.requireNonNull(mode, "mode"));
            return this;
        }

        /**
         * Where the one-line report of each refused client goes (default: the
         * {@code dev.handoff.nbd} logger at INFO). Called on the connection's thread; must not block.
         */
        public Builder onRefused(Consumer<String> sink) {
            this.onRefused = Objects.requireNonNull(sink, "sink");
            return this;
        }

        /**
         * Connections served at once (default 16). A client over the limit is refused in its
         * handshake: NBD_REP_ERR_POLICY ("too many connections") to every option, reported as a
         * refusal; beyond {@value NbdServer#MAX_REFUSING} such clients at once, further ones are
         * closed unanswered.
         */
        public Builder maxConnections(int n) {
            maxConnections = n;
            return this;
        }

        /** Threads serving one connection's requests concurrently (default 4). */
        public Builder workersPerConnection(int n) {
            workersPerConnection = n;
            return this;
        }

        /**
         * Whether a connection's reader serves a READ or WRITE of at most 128 KiB without FUA itself
         * when it had to wait for the request's header and no other request of the connection is
         * in flight (default true; false puts every request on a worker). A client with one
         * request at a time (a guest at queue depth 1) then never waits for a worker to wake up:
         * more IOPS and lower latency. A request whose header was already queued when the reader
         * came to it goes to a worker, as does one that finds another in flight, so a client that
         * keeps several in flight keeps their concurrency; while the reader serves, requests that
         * arrive meanwhile wait in the socket until it returns (a small write that waits in the
         * device, such as a write-blocking mirror's copy of its chunk in flight, holds them up);
         * docs/BENCHMARKS.md, rounds 12 and 13, has both sides.
         */
        public Builder inlineRequests(boolean inline) {
            inlineRequests = inline;
            return this;
        }

        /** Requests of one connection read but not yet answered (default 32). */
        public Builder maxRequestsInFlight(int n) {
            maxRequestsInFlight = n;
            return this;
        }

        /**
         * Payload and reply bytes in flight, per connection (default 64 MiB) and for the whole
         * server (default 256 MiB); each at least the maximum payload, at most 2 GiB.
         */
        public Builder maxBytesInFlight(long perConnection, long total) {
            maxBytesPerConnection = perConnection;
            maxBytesInFlight = total;
            return this;
        }

        /** The largest READ or WRITE accepted (default 32 MiB), announced as the maximum block size. */
        public Builder maxPayload(int bytes) {
            maxPayload = bytes;
            return this;
        }

        /** Options accepted in one handshake (default 256). */
        public Builder maxOptions(int n) {
            maxOptions = n;
            return this;
        }

        /**
         * Deadlines: a handshake not finished within {@code handshake} (default 30 s), and a reply
         * the client has not taken within {@code reply} (default 60 s), close the connection.
         */
        public Builder timeouts(Duration handshake, Duration reply) {
            handshakeTimeout = Objects.requireNonNull(handshake, "handshake");
            replyTimeout = Objects.requireNonNull(reply, "reply");
            return this;
        }

        /** How long {@link NbdServer#close()} lets in-flight requests finish (default 10 s). */
        public Builder shutdownGrace(Duration grace) {
            shutdownGrace = Objects.requireNonNull(grace, "grace");
            return this;
        }

        /**
         * Test seam: how long the read of a request's header must take for the request to count
         * as waited for, one condition of an inline request (default 5 µs; tests that must tell a
         * late reader from a waiting one on a loaded machine make it milliseconds).
         */
        Builder inlineAfterWait(Duration wait) {
            this.inlineAfterWait = Objects.requireNonNull(wait, "wait");
            return this;
        }

        /** Test seam: every buffer whose size came from the wire is allocated here. */
        Builder allocator(IntFunction<ByteBuffer> allocator) {
            this.allocator = Objects.requireNonNull(allocator);
            return this;
        }

        /** The limits as configured so far. */
        ServerLimits limits() {
            return new ServerLimits(maxConnections, workersPerConnection, inlineRequests, inlineAfterWait, maxRequestsInFlight,
                    maxBytesPerConnection,
                    maxBytesInFlight, maxPayload, maxOptions, handshakeTimeout, replyTimeout, shutdownGrace);
        }

        /**
         * Checks the configuration without binding anything: the limits, an allow-list only with
         * TLS, and no TCP address but loopback without TLS (unless {@link #insecure()}). Throws
         * {@link IllegalArgumentException} or {@link IllegalStateException} with the reason.
         * {@link #start()} runs it too.
         */
        public Builder check() {
            limits();
            if (allowList != null && credentials == null) {
                throw new IllegalStateException("a client allow-list needs TLS: clients are named by their certificates");
            }
            if (credentials == null && !insecure) {
                for (NbdAddress address : addresses) {
                    if (address instanceof NbdAddress.Tcp tcp && !tcp.isLoopback()) {
                        throw new IllegalStateException("refusing to serve on " + address + " without TLS: it is not a"
                                + " loopback address, so anyone who can reach it could read and write the exports");
                    }
                }
            }
            return this;
        }

        /** Binds every address and starts serving. On failure nothing stays bound. */
        public NbdServer start() throws IOException {
            if (addresses.isEmpty()) {
                throw new IllegalStateException("no address to listen on");
            }
            check();
            NbdServer server = new NbdServer(this);
            try {
                for (NbdAddress address : addresses) {
                    server.listen(address);
                }
            } catch (IOException | RuntimeException e) {
                server.close();
                throw e;
            }
            return server;
        }
    }
}
