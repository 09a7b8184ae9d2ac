package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.DeviceException.Kind;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A {@link BlockDevice} backed by a remote NBD export: usable as a mirror target or source, or
 * anywhere else a device is.
 *
 * <h2>Behaviour</h2>
 * <ul>
 *   <li>Requests from all calling threads are pipelined on one connection, at most
 *       {@link Options#maxInFlight()} at a time; reads and writes larger than the maximum payload
 *       (the server's maximum block size, at most {@link Options#maxPayload()}) are split into
 *       several pipelined requests.</li>
 *   <li>Each call waits at most {@link Options#requestTimeout()} for its replies. A request
 *       without a reply by then fails with {@link Kind#IO_ERROR}, and the connection is closed:
 *       the protocol has no way to cancel a request, so the server's state is unknown.</li>
 *   <li>Server errors map to kinds: {@code EPERM}/{@code EROFS} to {@link Kind#READ_ONLY},
 *       {@code ENOSPC}/{@code EDQUOT}/{@code EFBIG} to {@link Kind#NO_SPACE}, {@code EINVAL}/{@code
 *       EOVERFLOW} to {@link Kind#OUT_OF_RANGE}, {@code ESHUTDOWN} to {@link Kind#CLOSED} (and a
 *       soft disconnect once in-flight requests are answered), everything else to
 *       {@link Kind#IO_ERROR}. Ranges outside the export fail with {@link Kind#OUT_OF_RANGE}
 *       before anything is sent; writes to a read-only export fail with {@link Kind#READ_ONLY}.</li>
 *   <li>A lost connection fails the requests in flight and every later call with
 *       {@link Kind#CLOSED}; a server that breaks the protocol fails the requests in flight with
 *       {@link Kind#IO_ERROR}, then likewise. There is no reconnection.</li>
 *   <li>With an {@code nbds} URI the connection is upgraded to TLS before anything else is sent
 *       ({@code NBD_OPT_STARTTLS}); the server's certificate must chain to the credentials' CA and,
 *       for TCP or with {@code tls-hostname}, name the host. A server that does not upgrade is left
 *       (there is no plain-text fallback).</li>
 *   <li>{@link #flush()} sends {@code NBD_CMD_FLUSH} (a no-op if the server does not offer it);
 *       {@link #discard} sends {@code NBD_CMD_TRIM} (a no-op if not offered); {@link #writeZeroes}
 *       sends {@code NBD_CMD_WRITE_ZEROES}, or writes zeroes if not offered.</li>
 * </ul>
 * Simple replies are used unless {@link Options#allocationMap} asks for structured replies and the
 * base:allocation context, which {@link #nextData} and {@link #nextHole} then read with
 * NBD_CMD_BLOCK_STATUS (a READ may then come back in several data and hole chunks). The server's minimum and
 * preferred block sizes are not enforced: an unaligned request to a server that requires alignment
 * gets that server's error (typically {@code EINVAL}, so {@link Kind#OUT_OF_RANGE}).
 *
 * <p>Threading: every method may be called from any number of threads. A caller interrupted
 * while it waits for a reply gives up that request (the reply is read and dropped when it comes)
 * and gets {@link Kind#IO_ERROR}; a caller interrupted while its request is being written to the
 * socket closes the connection, as an interrupt does to any NIO channel. Do not interrupt I/O
 * threads (the kernel never does).
 */
public final class NbdDevice implements BlockDevice {
    /*
     * Overview.
     *
     * Threads. Callers send: each request is registered in `pending` under a fresh handle, then
     * its header (and WRITE payload, straight from the caller's buffer) is written under sendLock,
     * so frames never interleave. One reader thread takes replies: it removes the entry for the
     * reply's handle (the only way an entry leaves the map besides failAll), gives back the
     * in-flight permit, and completes the entry. A READ's data is read by the reader straight into
     * the caller's buffer, so the caller must not get its buffer back while the reader may still
     * write into it. The per-entry state machine guarantees that:
     *
     *   WAITING --reader: data arrives--> RECEIVING --reader--> DONE
     *   WAITING --reader or failAll--> DONE
     *   WAITING --caller gives up (timeout, interrupt)--> ABANDONED  (the reader will skip the data)
     *
     * Transitions out of WAITING are compare-and-sets, so a caller that gives up and a reader that
     * starts receiving agree on one winner. A caller that loses to RECEIVING closes the connection
     * (which makes the reader's read fail promptly) and waits for DONE before returning.
     *
     * Failure. breakConnection records the first reason (`broken`, read by every call),
     * closes the transport and fails every WAITING entry. The reader fails the entry it is
     * receiving into when its read fails. Every entry leaves the map exactly once, and its permit
     * is returned exactly then.
     *
     * Deadlines. Callers wait with a timeout; a send blocked because the server stopped reading is
     * caught by the watchdog on the shared timer (sendStartedAt), which closes the connection.
     *
     * Access modes. The fields threads share without a lock are touched only through accessors
     * named by mode (CONTRIBUTING, "One accessor convention"): lp plain load, lv volatile load, sv
     * volatile store, cas compare-and-set; getAndAdd a volatile read-modify-write.
     *  - broken: svBroken under brokenLock (lpBroken there, ordered by the lock), lvBroken by every
     *    call. submit and breakConnection are a store-load pair: submit puts its entry in `pending`,
     *    then loads broken (and serverShuttingDown); breakConnection stores broken, then takes every
     *    entry from the map. All volatile (the map's put and iteration are), so one of them fails
     *    the entry: none is left waiting on a connection that is gone.
     *  - watchdog: svWatchdog once, by the constructor after the reader started; lvWatchdog by
     *    breakConnection, on any thread. The same store-load shape: the constructor stores the
     *    watchdog, then loads broken; breakConnection stores broken, then loads the watchdog; so a
     *    watchdog made while the connection broke is cancelled by one of the two.
     *  - serverShuttingDown: svServerShuttingDown by the reader, before it completes the entry
     *    whose ESHUTDOWN reply it read (the caller's next call must see it; the entry's latch
     *    orders that too, so the volatile store is stronger than needed there); lvServerShuttingDown
     *    by callers and the reader.
     *  - closing: casClosing by close (one winner disconnects); lvClosing by callers.
     *  - sendStartedAt: svSendStartedAt under sendLock; lvSendStartedAt by the watchdog. Stronger
     *    than needed: the watchdog wants a recent value and reads nothing published through it, so
     *    opaque accesses would do.
     *  - handles: getAndAddHandles gives each request a distinct handle; only its atomicity
     *    matters (the entry is published by the map).
     *  - Pending.state: Pending.casState for every transition out of WAITING (one winner between a
     *    caller giving up and the reader receiving or completing), Pending.svState by the reader
     *    leaving RECEIVING (no one else writes a RECEIVING entry's state), Pending.lvState by the
     *    caller and the reader, pairing with both. Its failure and data are published by the
     *    entry's latch, not by the state.
     */

    private static final System.Logger LOG = System.getLogger("dev.handoff.nbd");
    private static final VarHandle HANDLES;
    private static final VarHandle CLOSING;
    private static final VarHandle WATCHDOG;
    private static final VarHandle BROKEN;
    private static final VarHandle SERVER_SHUTTING_DOWN;
    private static final VarHandle SEND_STARTED_AT;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            HANDLES = l.findVarHandle(NbdDevice.class, "handles", long.class);
            CLOSING = l.findVarHandle(NbdDevice.class, "closing", boolean.class);
            WATCHDOG = l.findVarHandle(NbdDevice.class, "watchdog", ScheduledFuture.class);
            BROKEN = l.findVarHandle(NbdDevice.class, "broken", DeviceException.class);
            SERVER_SHUTTING_DOWN = l.findVarHandle(NbdDevice.class, "serverShuttingDown", boolean.class);
            SEND_STARTED_AT = l.findVarHandle(NbdDevice.class, "sendStartedAt", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }
    /** WRITE_ZEROES and TRIM lengths are 32-bit; larger ranges go out in pieces of this size. */
    private static final long MAX_RANGE_REQUEST = 1L << 30;
    private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(1 << 20).asReadOnlyBuffer();

    /**
     * Client settings.
     *
     * @param connectTimeout connecting and the handshake together (default 30 s)
     * @param requestTimeout how long one call waits for its replies (default 60 s)
     * @param maxInFlight    requests sent but not yet answered (default 16)
     * @param maxPayload     the largest READ or WRITE sent (default 32 MiB; lowered to the
     *                       server's maximum block size)
     * @param tls            client credentials for {@code nbds} URIs, or null (a plain URI with
     *                       credentials is refused, as is a TLS URI without)
     * @param allocationMap  ask for structured replies and the base:allocation meta context, so that
     *                       {@link #nextData} and {@link #nextHole} answer from the server's map (a
     *                       mirror from this device then skips its holes); default off, and a server
     *                       that declines either is used without them
     */
    public record Options(Duration connectTimeout, Duration requestTimeout, int maxInFlight, int maxPayload,
                          TlsCredentials tls, boolean allocationMap) {
        public Options {
            Objects.requireNonNull(connectTimeout, "connectTimeout");
            Objects.requireNonNull(requestTimeout, "requestTimeout");
            if (connectTimeout.isNegative() || connectTimeout.isZero() || requestTimeout.isNegative()
                    || requestTimeout.isZero()) {
                throw new IllegalArgumentException("timeouts must be > 0");
            }
            if (maxInFlight < 1) {
                throw new IllegalArgumentException("maxInFlight must be >= 1");
            }
            if (maxPayload < 512) {
                throw new IllegalArgumentException("maxPayload must be >= 512");
            }
            if (tls != null && tls.role() != TlsCredentials.Role.CLIENT) {
                throw new IllegalArgumentException("a client needs client TLS credentials, got " + tls);
            }
        }

        public static Options defaults() {
            return new Options(Duration.ofSeconds(30), Duration.ofSeconds(60), 16, DEFAULT_MAX_PAYLOAD, null, false);
        }

        public Options withConnectTimeout(Duration timeout) {
            return new Options(timeout, requestTimeout, maxInFlight, maxPayload, tls, allocationMap);
        }

        public Options withRequestTimeout(Duration timeout) {
            return new Options(connectTimeout, timeout, maxInFlight, maxPayload, tls, allocationMap);
        }

        public Options withMaxInFlight(int n) {
            return new Options(connectTimeout, requestTimeout, n, maxPayload, tls, allocationMap);
        }

        public Options withMaxPayload(int bytes) {
            return new Options(connectTimeout, requestTimeout, maxInFlight, bytes, tls, allocationMap);
        }

        /** Client credentials for TLS ({@code nbds} URIs). */
        public Options withTls(TlsCredentials credentials) {
            return new Options(connectTimeout, requestTimeout, maxInFlight, maxPayload, credentials, allocationMap);
        }

        /** Whether to read the server's allocation map (structured replies and base:allocation). */
        public Options withAllocationMap(boolean on) {
            return new Options(connectTimeout, requestTimeout, maxInFlight, maxPayload, tls, on);
        }
    }

    private final String description;
    private final String exportName;
    private final Transport transport;
    private final Options options;
    private final long size;
    private final int flags;
    private final int maxPayload;
    /** Structured replies were negotiated; base:allocation's id, or -1 (fixed at the handshake). */
    private final boolean structured;
    private final long allocationContext;

    private final Semaphore permits;
    private final ReentrantLock sendLock = new ReentrantLock();
    private final ConcurrentHashMap<Long, Pending> pending = new ConcurrentHashMap<>();
    /* The volatile fields below are touched only through their accessors ("Access modes"). */
    private volatile long handles;
    private volatile boolean closing;
    private final Thread reader;
    /** Set once, at the end of the constructor (after the reader started). */
    private volatile ScheduledFuture<?> watchdog;

    /** The first reason the connection ended, or null while it is usable; set under brokenLock. */
    private volatile DeviceException broken;
    private final Object brokenLock = new Object();
    /** The server answered ESHUTDOWN: no new requests; disconnect once the map drains. */
    private volatile boolean serverShuttingDown;
    /** System.nanoTime() when the send in progress started, or 0. */
    private volatile long sendStartedAt;

    private NbdDevice(String description, String exportName, Options options, ClientHandshake.Negotiated negotiated) {
        this.description = description;
        this.exportName = exportName;
        this.transport = negotiated.transport();
        this.options = options;
        this.size = negotiated.size();
        this.flags = negotiated.flags();
        int serverMax = negotiated.maxBlock();
        this.maxPayload = serverMax > 0 ? Math.min(options.maxPayload(), serverMax) : options.maxPayload();
        this.structured = negotiated.structured();
        this.allocationContext = negotiated.allocationContext();
        this.permits = new Semaphore(options.maxInFlight());
        svHandles(1);
        this.reader = new Thread(this::readReplies, "nbd-client-" + description);
        this.reader.setDaemon(true);
        this.reader.start();
        ScheduledFuture<?> w = NbdTimer.every(NbdTimer.periodFor(options.requestTimeout().toNanos()), this::checkSend);
        svWatchdog(w);
        if (lvBroken() != null) { // after the store: the store-load pair with breakConnection
            w.cancel(false); // the connection broke before the watchdog existed
        }
    }

    /* ---------------- Opening ---------------- */

    /** Connects to an export given as {@code nbd+unix:///NAME?socket=PATH} or {@code nbd://HOST:PORT/NAME}. */
    public static NbdDevice open(String uri) throws DeviceException {
        return open(NbdUri.parse(uri), Options.defaults());
    }

    /**
     * Connects to an export over TLS or not, as the URI says: an {@code nbds} URI needs client
     * credentials in {@code options}, and gets TLS or no connection at all.
     */
    public static NbdDevice open(String uri, Options options) throws DeviceException {
        return open(NbdUri.parse(uri), options);
    }

    /** Connects to an export with the default options. */
    public static NbdDevice open(NbdUri uri) throws DeviceException {
        return open(uri, Options.defaults());
    }

    /**
     * Connects to an export. A TLS URI ({@code nbds}) needs {@link Options#tls() credentials} and
     * credentials need a TLS URI: {@link IllegalArgumentException} otherwise.
     */
    public static NbdDevice open(NbdUri uri, Options options) throws DeviceException {
        if (uri.tls() && options.tls() == null) {
            throw new IllegalArgumentException(uri + " is a TLS URI: it needs client TLS credentials");
        }
        if (!uri.tls() && options.tls() != null) {
            throw new IllegalArgumentException("TLS credentials given for " + uri + ", which is not a TLS URI (nbds)");
        }
        ClientTls tls = uri.tls() ? new ClientTls(options.tls(), uri.verifiedHostname()) : null;
        SocketChannel channel;
        try {
            channel = uri.address().connect(options.connectTimeout());
        } catch (IOException e) {
            throw new DeviceException(Kind.IO_ERROR, "cannot connect to " + uri + ": " + e.getMessage(), e);
        }
        return open(Transport.of(channel), uri.toString(), uri.exportName(), options, ByteBuffer::allocate, tls);
    }

    /** Runs the handshake on a connected transport (tests use in-memory transports). */
    static NbdDevice open(Transport transport, String description, String exportName, Options options)
            throws DeviceException {
        return open(transport, description, exportName, options, ByteBuffer::allocate);
    }

    /** As above, with the test seam: the allocator for sizes from the wire. */
    static NbdDevice open(Transport transport, String description, String exportName, Options options,
                          java.util.function.IntFunction<ByteBuffer> allocator) throws DeviceException {
        return open(transport, description, exportName, options, allocator, null);
    }

    /** As above, upgrading to TLS with {@code tls} first (unless null). */
    static NbdDevice open(Transport transport, String description, String exportName, Options options,
                          java.util.function.IntFunction<ByteBuffer> allocator, ClientTls tls)
            throws DeviceException {
        AtomicBoolean timedOut = new AtomicBoolean();
        ScheduledFuture<?> deadline = NbdTimer.after(options.connectTimeout().toNanos(), () -> {
            timedOut.set(true);
            closeQuietly(transport);
        });
        boolean ok = false;
        try {
            ClientHandshake.Negotiated negotiated = ClientHandshake.negotiate(transport, exportName, allocator, tls,
                    options.allocationMap());
            deadline.cancel(false);
            if (timedOut.get()) {
                throw new IOException("closed by the handshake deadline");
            }
            NbdDevice device = new NbdDevice(description, exportName, options, negotiated);
            ok = true;
            return device;
        } catch (DeviceException e) {
            if (timedOut.get()) {
                throw new DeviceException(Kind.IO_ERROR, "NBD handshake with " + description + " timed out after "
                        + options.connectTimeout(), e);
            }
            throw e;
        } catch (ProtocolViolation e) {
            throw new DeviceException(Kind.IO_ERROR, "NBD handshake with " + description + " failed: " + e.getMessage(), e);
        } catch (IOException e) {
            throw new DeviceException(Kind.IO_ERROR, "NBD handshake with " + description
                    + (timedOut.get() ? " timed out after " + options.connectTimeout() : " failed: " + e.getMessage()), e);
        } finally {
            deadline.cancel(false);
            if (!ok) {
                closeQuietly(transport);
            }
        }
    }

    /* ---------------- Properties ---------------- */

    @Override
    public long size() {
        return size;
    }

    /** The export's name. */
    public String exportName() {
        return exportName;
    }

    /** The transmission flags the server announced. */
    public int transmissionFlags() {
        return flags;
    }

    /** Whether the server announced the export read-only. */
    public boolean isReadOnly() {
        return (flags & TFLAG_READ_ONLY) != 0;
    }

    /** The largest READ or WRITE request this client sends. */
    public int maxPayload() {
        return maxPayload;
    }

    /** Requests sent and not yet answered (or abandoned and not yet answered). */
    public int requestsInFlight() {
        return pending.size();
    }

    /* ---------------- Operations ---------------- */

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        ensureUsable();
        int length = dst.remaining();
        DeviceException.checkRange(offset, length, size);
        int at = dst.position();
        send(CMD_READ, offset, length, maxPayload, (done, n) -> dst.slice(at + (int) done, n), Buffers.NONE);
        dst.position(dst.limit());
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        ensureUsable();
        int length = src.remaining();
        DeviceException.checkRange(offset, length, size);
        ensureWritable();
        int at = src.position();
        send(CMD_WRITE, offset, length, maxPayload, Buffers.NONE, (done, n) -> src.slice(at + (int) done, n));
        src.position(src.limit());
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        ensureUsable();
        DeviceException.checkRange(offset, length, size);
        ensureWritable();
        if ((flags & TFLAG_SEND_WRITE_ZEROES) != 0) {
            send(CMD_WRITE_ZEROES, offset, length, MAX_RANGE_REQUEST, Buffers.NONE, Buffers.NONE);
        } else {
            send(CMD_WRITE, offset, length, Math.min(maxPayload, ZEROES.capacity()), Buffers.NONE,
                    (done, n) -> ZEROES.duplicate().limit(n));
        }
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        ensureUsable();
        DeviceException.checkRange(offset, length, size);
        ensureWritable();
        if ((flags & TFLAG_SEND_TRIM) != 0) {
            send(CMD_TRIM, offset, length, MAX_RANGE_REQUEST, Buffers.NONE, Buffers.NONE);
        }
    }

    @Override
    public void flush() throws DeviceException {
        ensureUsable();
        if ((flags & TFLAG_SEND_FLUSH) != 0) {
            send(CMD_FLUSH, 0, 0, 1, Buffers.NONE, Buffers.NONE);
        }
    }

    /**
     * With the server's allocation map ({@link Options#allocationMap}, if the server selected
     * base:allocation): the start of the next range that may hold data, asked with
     * NBD_CMD_BLOCK_STATUS; extents with NBD_STATE_ZERO read as zeroes and are skipped (a copy need
     * not read them). Without the map: {@code offset}, everything may be data.
     */
    @Override
    public long nextData(long offset) throws DeviceException {
        return walkMap(offset, true);
    }

    /** The start of the next range that reads as zeroes (NBD_STATE_ZERO), or the size; see {@link #nextData}. */
    @Override
    public long nextHole(long offset) throws DeviceException {
        return walkMap(offset, false);
    }

    /** Whether {@link #nextData} and {@link #nextHole} answer from the server's allocation map. */
    public boolean hasAllocationMap() {
        return allocationContext >= 0;
    }

    private long walkMap(long offset, boolean toData) throws DeviceException {
        ensureUsable();
        DeviceException.checkRange(offset, 0, size);
        if (allocationContext < 0) {
            return toData ? offset : size;
        }
        long pos = offset;
        while (pos < size) {
            long deadline = deadline();
            Pending p = submit(CMD_BLOCK_STATUS, 0, pos, Math.min(size - pos, MAX_RANGE_REQUEST), null, null, deadline);
            DeviceException failure = awaitAll(List.of(p), deadline, null);
            if (failure != null) {
                throw failure;
            }
            long[] extents = p.extents; // (length, status) pairs, checked by the reader; published by the latch
            for (int i = 0; i < extents.length; i += 2) {
                boolean zero = (extents[i + 1] & STATE_ZERO) != 0;
                if (zero != toData) {
                    return pos;
                }
                pos += extents[i];
            }
        }
        return size;
    }

    /** The buffer of the piece {@code [done, done + n)} of one call: a READ's destination or a WRITE's payload. */
    private interface Buffers {
        Buffers NONE = (done, n) -> null;

        ByteBuffer slice(long done, int n);
    }

    /**
     * One call's requests: {@code [offset, offset + length)} cut into pieces of at most {@code piece}
     * bytes (a flush, which has no range, is one request), all submitted before any is awaited so
     * that they are pipelined, then all awaited within one deadline. If a submit fails the pieces
     * already sent are still awaited (their buffers are the caller's) and the first failure is
     * thrown.
     */
    private void send(int type, long offset, long length, long piece, Buffers dst, Buffers payload)
            throws DeviceException {
        long deadline = deadline();
        long requests = type == CMD_FLUSH ? 1 : (length + piece - 1) / piece;
        List<Pending> sent = new ArrayList<>((int) Math.min(requests, 64));
        DeviceException failure = null;
        try {
            for (long i = 0, done = 0; i < requests; i++, done += piece) {
                int n = (int) Math.min(piece, length - done);
                sent.add(submit(type, 0, offset + done, n, dst.slice(done, n), payload.slice(done, n), deadline));
            }
        } catch (DeviceException e) {
            failure = e;
        }
        failure = awaitAll(sent, deadline, failure);
        if (failure != null) {
            throw failure;
        }
    }

    /**
     * Waits for in-flight requests, sends {@code NBD_CMD_DISC} and closes the connection. Does not
     * flush (as the {@link BlockDevice} contract says). Idempotent.
     */
    @Override
    public void close() {
        if (!casClosing(false, true)) {
            return;
        }
        boolean drained = false;
        try {
            drained = permits.tryAcquire(options.maxInFlight(), options.requestTimeout().toNanos(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (lvBroken() == null && drained) {
            sendDisconnect();
        }
        breakConnection(Kind.CLOSED, "the device was closed");
        if (drained) {
            permits.release(options.maxInFlight());
        }
        if (Thread.currentThread() != reader) {
            try {
                reader.join(TimeUnit.SECONDS.toMillis(5));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /* ---------------- Sending ---------------- */

    private Pending submit(int type, int cmdFlags, long offset, long length, ByteBuffer dst, ByteBuffer payload,
                           long deadline) throws DeviceException {
        acquirePermit(deadline);
        long handle = getAndAddHandles(1);
        Pending p = new Pending(handle, type, offset, length, dst);
        pending.put(handle, p);
        // Re-checked after the put: a breakConnection that ran before it did not see this entry.
        if (lvBroken() != null || lvServerShuttingDown()) { // the store-load pair with breakConnection
            if (pending.remove(handle) != null) {
                permits.release();
            }
            throw unusable();
        }
        ByteBuffer header = ByteBuffer.allocate(REQUEST_SIZE);
        new Request(cmdFlags, type, handle, offset, length).encode(header);
        header.flip();
        sendLock.lock();
        try {
            if (lvBroken() == null) {
                svSendStartedAt(System.nanoTime() | 1);
                transport.writeFully(header, payload);
            }
        } catch (IOException e) {
            // A partly written frame leaves the stream unusable.
            breakConnection(Kind.CLOSED, "sending to " + description + " failed: " + e);
        } finally {
            svSendStartedAt(0);
            sendLock.unlock();
        }
        return p;
    }

    /** NBD_CMD_DISC, then (over TLS) close_notify: the orderly end of the session. */
    private void sendDisconnect() {
        ByteBuffer header = ByteBuffer.allocate(REQUEST_SIZE);
        new Request(0, CMD_DISC, getAndAddHandles(1), 0, 0).encode(header);
        sendLock.lock();
        try {
            svSendStartedAt(System.nanoTime() | 1);
            transport.writeFully(header.flip(), null);
            transport.finishOutput();
        } catch (IOException e) {
            LOG.log(System.Logger.Level.DEBUG, () -> "NBD_CMD_DISC to " + description + " failed: " + e);
        } finally {
            svSendStartedAt(0);
            sendLock.unlock();
        }
    }

    private void acquirePermit(long deadline) throws DeviceException {
        try {
            if (!permits.tryAcquire(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                throw new DeviceException(Kind.IO_ERROR, "no request slot free on " + description + " within "
                        + options.requestTimeout());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new DeviceException(Kind.IO_ERROR, "interrupted while waiting for a request slot on " + description);
        }
    }

    /* ---------------- Waiting ---------------- */

    /**
     * Waits for every request in {@code sent}; returns the first failure (or {@code first}). Returns
     * only when no reader can touch a buffer of these requests any more.
     */
    private DeviceException awaitAll(List<Pending> sent, long deadline, DeviceException first) {
        DeviceException failure = first;
        for (Pending p : sent) {
            DeviceException e = await(p, deadline);
            if (failure == null) {
                failure = e;
            }
        }
        return failure;
    }

    private DeviceException await(Pending p, long deadline) {
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    if (p.done.await(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                        return p.failure;
                    }
                    if (p.casState(Pending.WAITING, Pending.ABANDONED)) {
                        String message = "no reply to " + p.describe() + " from " + description + " within "
                                + options.requestTimeout();
                        breakConnection(Kind.IO_ERROR, message);
                        return new DeviceException(Kind.IO_ERROR, message);
                    }
                    if (p.lvState() == Pending.DONE) {
                        return awaitReleased(p); // completed just now
                    }
                    // The reader is filling our buffer: stop it, and wait until it has let go.
                    breakConnection(Kind.IO_ERROR, "the reply to " + p.describe() + " from " + description
                            + " stalled for " + options.requestTimeout());
                    return awaitReleased(p);
                } catch (InterruptedException e) {
                    interrupted = true;
                    if (p.casState(Pending.WAITING, Pending.ABANDONED)) {
                        return new DeviceException(Kind.IO_ERROR, "interrupted while waiting for " + p.describe());
                    }
                    // Receiving: the data is on its way; fall through and wait for it.
                    return awaitReleased(p);
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Waits, uninterruptibly and boundedly, until the reader is done with {@code p}. */
    private DeviceException awaitReleased(Pending p) {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    if (p.done.await(Math.max(0, end - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                        return p.failure;
                    }
                    breakConnection(Kind.IO_ERROR, "reply to " + p.describe() + " stalled");
                    return new DeviceException(Kind.IO_ERROR, "reply to " + p.describe() + " stalled");
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /* ---------------- Receiving ---------------- */

    private void readReplies() {
        ByteBuffer header = ByteBuffer.allocate(STRUCTURED_REPLY_HEADER_SIZE);
        ByteBuffer[] scratch = new ByteBuffer[1];
        // READs the reader is writing into: the one of a simple reply while its data arrives, and,
        // with structured replies, every READ between its first data chunk and its last chunk.
        List<Pending> receiving = new ArrayList<>();
        try {
            while (true) {
                header.clear().limit(SIMPLE_REPLY_SIZE);
                if (!FrameIo.readFrame(transport, header)) {
                    breakConnection(Kind.CLOSED, "the server closed the connection");
                    return;
                }
                if (structured && header.getInt(0) == STRUCTURED_REPLY_MAGIC) {
                    header.limit(STRUCTURED_REPLY_HEADER_SIZE);
                    FrameIo.readFully(transport, header);
                    chunk(StructuredReplyHeader.decode(header.flip()), receiving, scratch);
                } else {
                    simpleReply(SimpleReply.decode(header.flip()), receiving, scratch);
                }
                if (lvServerShuttingDown() && pending.isEmpty()) {
                    sendDisconnect();
                    breakConnection(Kind.CLOSED, "the server is shutting down");
                    return;
                }
            }
        } catch (ProtocolViolation e) {
            DeviceException failure = new DeviceException(Kind.IO_ERROR, "protocol error from " + description + ": "
                    + e.getMessage(), e);
            breakConnection(failure); // first: a caller that returns must find the connection broken
            for (Pending p : receiving) {
                p.finishReceiving(copy(failure));
            }
        } catch (IOException | RuntimeException e) {
            DeviceException current = lvBroken();
            DeviceException failure = current != null ? copy(current)
                    : new DeviceException(Kind.CLOSED, "connection to " + description + " lost: " + e, e);
            breakConnection(failure);
            for (Pending p : receiving) {
                p.finishReceiving(copy(failure));
            }
        }
    }

    private void simpleReply(SimpleReply reply, List<Pending> receiving, ByteBuffer[] scratch) throws IOException {
        Pending p = pending.get(reply.handle());
        if (p == null || p.structuredChunks) {
            throw new ProtocolViolation("reply for handle " + reply.handle() + ", which is not in flight"
                    + (p == null ? "" : " as a simple reply"));
        }
        if (pending.remove(reply.handle()) == null) {
            throw new ProtocolViolation("reply for handle " + reply.handle() + ", which is no longer in flight");
        }
        permits.release(); // exactly once per entry: whoever removes it from the map
        if (reply.error() == ESHUTDOWN) {
            svServerShuttingDown(); // before the caller learns of it: its next call must see it
        }
        if (p.type == CMD_READ && reply.error() == 0) {
            if (p.casState(Pending.WAITING, Pending.RECEIVING)) {
                receiving.add(p);
                FrameIo.readFully(transport, p.dst);
                receiving.remove(p);
                p.finishReceiving(null);
            } else {
                FrameIo.skip(transport, p.length, scratch(scratch));
            }
        } else if (p.type == CMD_BLOCK_STATUS && reply.error() == 0) {
            throw new ProtocolViolation("a simple reply to NBD_CMD_BLOCK_STATUS carries no extents");
        } else {
            p.finish(reply.error() == 0 ? null : errorFor(reply.error(), p));
        }
    }

    /**
     * One structured reply chunk. Every length is checked before anything is read or allocated: a
     * READ's chunks must lie inside its request and not overlap, and together cover it by the
     * chunk marked done; a block status carries base:allocation's id and extents inside its range.
     */
    private void chunk(StructuredReplyHeader h, List<Pending> receiving, ByteBuffer[] scratch) throws IOException {
        Pending p = pending.get(h.handle());
        if (p == null) {
            throw new ProtocolViolation("reply chunk for handle " + h.handle() + ", which is not in flight");
        }
        p.structuredChunks = true;
        long length = h.length();
        switch (h.type()) {
            case REPLY_TYPE_NONE -> {
                if (length != 0 || !h.done()) {
                    throw new ProtocolViolation("NBD_REPLY_TYPE_NONE with " + length + " bytes" + (h.done() ? ""
                            : ", not marked done"));
                }
            }
            case REPLY_TYPE_OFFSET_DATA, REPLY_TYPE_OFFSET_HOLE -> readChunk(p, h, receiving, scratch);
            case REPLY_TYPE_BLOCK_STATUS -> blockStatusChunk(p, length);
            default -> {
                if ((h.type() & (1 << 15)) == 0) {
                    throw new ProtocolViolation("unknown reply chunk type " + h.type());
                }
                if (length < 6 || length > 6 + MAX_STRING_BYTES + 8) {
                    throw new ProtocolViolation("error chunk of " + length + " bytes");
                }
                ByteBuffer d = ByteBuffer.allocate((int) length);
                FrameIo.readFully(transport, d);
                d.flip();
                int error = d.getInt();
                int messageLength = Short.toUnsignedInt(d.getShort());
                if (error == 0 || messageLength > d.remaining()) {
                    throw new ProtocolViolation("error chunk with error " + error + " and a message of " + messageLength
                            + " bytes in " + length);
                }
                if (error == ESHUTDOWN) {
                    svServerShuttingDown();
                }
                if (p.firstError == null) {
                    p.firstError = errorFor(error, p);
                }
            }
        }
        if (!h.done()) {
            return;
        }
        DeviceException failure = p.firstError;
        // Checked while the entry is still in the map and in `receiving`: a violation fails it there.
        if (failure == null && p.type == CMD_READ && p.covered != p.length) {
            throw new ProtocolViolation("the reply to " + p.describe() + " ended with " + p.covered + " bytes covered");
        }
        if (failure == null && p.type == CMD_BLOCK_STATUS && p.extents == null) {
            throw new ProtocolViolation("the reply to " + p.describe() + " ended without extents");
        }
        if (pending.remove(h.handle()) == null) {
            throw new ProtocolViolation("reply chunk for handle " + h.handle() + ", which is no longer in flight");
        }
        permits.release(); // exactly once per entry: whoever removes it from the map
        receiving.remove(p);
        if (p.lvState() == Pending.RECEIVING) {
            p.finishReceiving(failure);
        } else {
            p.finish(failure);
        }
    }

    /** OFFSET_DATA (read into the caller's buffer) or OFFSET_HOLE (zeroes there) for a READ. */
    private void readChunk(Pending p, StructuredReplyHeader h, List<Pending> receiving, ByteBuffer[] scratch)
            throws IOException {
        boolean data = h.type() == REPLY_TYPE_OFFSET_DATA;
        if (p.type != CMD_READ || (data ? h.length() <= 8 : h.length() != 12)) {
            throw new ProtocolViolation((data ? "OFFSET_DATA" : "OFFSET_HOLE") + " chunk of " + h.length()
                    + " bytes for " + p.describe());
        }
        ByteBuffer head = ByteBuffer.allocate(data ? 8 : 12);
        FrameIo.readFully(transport, head);
        head.flip();
        long at = head.getLong();
        long n = data ? h.length() - 8 : Integer.toUnsignedLong(head.getInt());
        long rel = at - p.offset;
        if (at < p.offset || rel > p.length || n == 0 || n > p.length - rel) {
            throw new ProtocolViolation((data ? "data" : "a hole") + " at " + Long.toUnsignedString(at) + "+" + n
                    + " outside " + p.describe());
        }
        if (!p.claim((int) rel, (int) n)) {
            throw new ProtocolViolation("chunks overlap at " + at + " in the reply to " + p.describe());
        }
        boolean ours = p.lvState() == Pending.RECEIVING || p.casState(Pending.WAITING, Pending.RECEIVING);
        if (ours && !receiving.contains(p)) {
            receiving.add(p);
        }
        if (!ours) {
            if (data) {
                FrameIo.skip(transport, n, scratch(scratch)); // the caller gave up: drop the data
            }
            return;
        }
        ByteBuffer region = p.dst.slice((int) rel, (int) n);
        if (data) {
            FrameIo.readFully(transport, region);
        } else {
            while (region.hasRemaining()) {
                region.put(ZEROES.duplicate().limit(Math.min(ZEROES.capacity(), region.remaining())));
            }
        }
    }

    /** Extents in one block status chunk at most: 1 MiB of payload. */
    private static final int MAX_EXTENTS = 1 << 17;

    private void blockStatusChunk(Pending p, long length) throws IOException {
        if (p.type != CMD_BLOCK_STATUS || p.extents != null || length < 12 || (length - 4) % 8 != 0
                || length > 4 + 8L * MAX_EXTENTS) {
            throw new ProtocolViolation("block status chunk of " + length + " bytes for " + p.describe());
        }
        ByteBuffer d = ByteBuffer.allocate((int) length);
        FrameIo.readFully(transport, d);
        d.flip();
        long id = Integer.toUnsignedLong(d.getInt());
        if (id != allocationContext) {
            throw new ProtocolViolation("block status for meta context " + id + ", not base:allocation ("
                    + allocationContext + ")");
        }
        long[] extents = new long[2 * d.remaining() / 8];
        long covered = 0;
        int n = 0;
        while (d.hasRemaining() && covered < p.length) {
            long extent = Integer.toUnsignedLong(d.getInt());
            int status = d.getInt();
            if (extent == 0) {
                throw new ProtocolViolation("an empty extent in the reply to " + p.describe());
            }
            extent = Math.min(extent, p.length - covered); // a last extent past the range says nothing more
            extents[n++] = extent;
            extents[n++] = status;
            covered += extent;
        }
        p.extents = java.util.Arrays.copyOf(extents, n);
    }

    private static ByteBuffer scratch(ByteBuffer[] holder) {
        if (holder[0] == null) {
            holder[0] = ByteBuffer.allocate(FrameIo.SKIP_CHUNK);
        }
        return holder[0];
    }

    /** The exception for a server error on request {@code p}. */
    private DeviceException errorFor(int errno, Pending p) {
        return new DeviceException(kindFor(errno), description + " answered " + errnoName(errno) + " to "
                + p.describe());
    }

    /** The device error kind for an NBD error value. */
    static Kind kindFor(int errno) {
        return switch (errno) {
            case EPERM, EROFS -> Kind.READ_ONLY;
            case ENOSPC, EDQUOT, EFBIG -> Kind.NO_SPACE;
            case EINVAL, EOVERFLOW -> Kind.OUT_OF_RANGE;
            case ESHUTDOWN -> Kind.CLOSED;
            default -> Kind.IO_ERROR;
        };
    }

    /* ---------------- Failure ---------------- */

    private void breakConnection(Kind kind, String message) {
        breakConnection(new DeviceException(kind, message));
    }

    /** Ends the connection for good; the first reason sticks. Fails every request still waiting. */
    private void breakConnection(DeviceException reason) {
        DeviceException first;
        synchronized (brokenLock) {
            if (lpBroken() == null) {
                svBroken(reason); // then the watchdog and the entries: the pairs with the constructor, submit
            }
            first = lpBroken();
        }
        closeQuietly(transport);
        ScheduledFuture<?> w = lvWatchdog();
        if (w != null) {
            w.cancel(false);
        }
        for (Long handle : pending.keySet()) {
            Pending p = pending.remove(handle);
            if (p != null) {
                permits.release();
                p.finish(copy(first)); // the first reason, whichever thread gets here first
            }
        }
    }

    private void checkSend() {
        long started = lvSendStartedAt();
        if (started != 0 && System.nanoTime() - started > options.requestTimeout().toNanos()) {
            breakConnection(Kind.IO_ERROR, description + " stopped taking requests for " + options.requestTimeout());
        }
    }

    private void ensureUsable() throws DeviceException {
        if (lvClosing() || lvBroken() != null || lvServerShuttingDown()) {
            throw unusable();
        }
    }

    private DeviceException unusable() {
        if (lvClosing()) {
            return new DeviceException(Kind.CLOSED, "NBD device " + description + " is closed");
        }
        DeviceException reason = lvBroken();
        return new DeviceException(Kind.CLOSED, "connection to " + description + " is closed"
                + (reason == null ? " (the server is shutting down)" : ": " + reason.getMessage()), reason);
    }

    private void ensureWritable() throws DeviceException {
        if (isReadOnly()) {
            throw new DeviceException(Kind.READ_ONLY, "export " + description + " is read-only");
        }
    }

    private long deadline() {
        return System.nanoTime() + options.requestTimeout().toNanos();
    }

    /** A fresh exception per waiter: exceptions are mutable (stack, suppressed). */
    private static DeviceException copy(DeviceException e) {
        return new DeviceException(e.kind(), e.getMessage(), e);
    }

    private static void closeQuietly(Transport transport) {
        try {
            transport.close();
        } catch (IOException e) {
            // closing anyway
        }
    }

    /* ---------------- Accessors (modes and partners: "Access modes" in the overview) ---------------- */

    private DeviceException lvBroken() {
        return (DeviceException) BROKEN.getVolatile(this); // pairs with svBroken
    }

    private DeviceException lpBroken() {
        return (DeviceException) BROKEN.get(this); // under brokenLock, which orders every store
    }

    private void svBroken(DeviceException reason) {
        BROKEN.setVolatile(this, reason); // under brokenLock; one side of two store-load pairs
    }

    private ScheduledFuture<?> lvWatchdog() {
        return (ScheduledFuture<?>) WATCHDOG.getVolatile(this); // pairs with svWatchdog
    }

    private void svWatchdog(ScheduledFuture<?> w) {
        WATCHDOG.setVolatile(this, w); // once, by the constructor
    }

    private boolean lvServerShuttingDown() {
        return (boolean) SERVER_SHUTTING_DOWN.getVolatile(this); // pairs with svServerShuttingDown
    }

    private void svServerShuttingDown() {
        SERVER_SHUTTING_DOWN.setVolatile(this, true); // the reader
    }

    private boolean lvClosing() {
        return (boolean) CLOSING.getVolatile(this); // pairs with casClosing
    }

    private boolean casClosing(boolean expected, boolean next) {
        return CLOSING.compareAndSet(this, expected, next); // one winner closes
    }

    private long lvSendStartedAt() {
        return (long) SEND_STARTED_AT.getVolatile(this); // the watchdog; opaque would do
    }

    private void svSendStartedAt(long nanos) {
        SEND_STARTED_AT.setVolatile(this, nanos); // under sendLock; opaque would do
    }

    private void svHandles(long first) {
        HANDLES.setVolatile(this, first); // the constructor, before any request
    }

    /** Volatile RMW: only its atomicity matters (see "Access modes"). */
    private long getAndAddHandles(long delta) {
        return (long) HANDLES.getAndAdd(this, delta);
    }

    @Override
    public String toString() {
        return "NbdDevice[" + description + ", " + size + " bytes" + (isReadOnly() ? ", read-only" : "") + "]";
    }

    /** One request in flight. */
    private static final class Pending {
        static final int WAITING = 0;
        static final int RECEIVING = 1;
        static final int DONE = 2;
        static final int ABANDONED = 3;
        private static final VarHandle STATE;

        static {
            try {
                STATE = MethodHandles.lookup().findVarHandle(Pending.class, "state", int.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        final long handle;
        final int type;
        final long offset;
        final long length;
        /** For READ: the caller's bytes for this request (a slice); null otherwise. */
        final ByteBuffer dst;
        /** WAITING, RECEIVING, DONE or ABANDONED: only through the accessors below ("Access modes"). */
        private volatile int state; // WAITING is 0: the entry starts in it
        final CountDownLatch done = new CountDownLatch(1);
        /** Written before done.countDown(), read after done.await(): the latch orders the two. */
        DeviceException failure;
        /* Reader thread only, while the entry is in flight (structured replies). */
        boolean structuredChunks;
        DeviceException firstError;
        /** READ: bytes covered by data and hole chunks; the ranges covered (start to end), to refuse overlaps. */
        long covered;
        private java.util.TreeMap<Integer, Integer> ranges;
        /** BLOCK_STATUS: (length, status) pairs; written by the reader before done.countDown(). */
        long[] extents;

        Pending(long handle, int type, long offset, long length, ByteBuffer dst) {
            this.handle = handle;
            this.type = type;
            this.offset = offset;
            this.length = length;
            this.dst = dst;
        }

        /** Completes a WAITING entry; an ABANDONED one has nobody waiting. */
        void finish(DeviceException failure) {
            this.failure = failure;
            if (casState(WAITING, DONE)) {
                done.countDown();
            }
        }

        /** Completes the entry the reader was receiving into. */
        void finishReceiving(DeviceException failure) {
            this.failure = failure;
            svState(DONE);
            done.countDown();
        }

        int lvState() {
            return (int) STATE.getVolatile(this); // pairs with casState and svState
        }

        /** One winner per transition out of WAITING: the caller giving up or the reader. */
        boolean casState(int expected, int next) {
            return STATE.compareAndSet(this, expected, next);
        }

        void svState(int next) {
            STATE.setVolatile(this, next); // the reader, leaving RECEIVING: it alone writes that state
        }

        String describe() {
            return commandName(type) + " at " + offset + "+" + length;
        }

        /** Records {@code [rel, rel + n)} as covered; false if it overlaps a range covered before. */
        boolean claim(int rel, int n) {
            if (ranges == null) {
                ranges = new java.util.TreeMap<>();
            }
            var before = ranges.floorEntry(rel);
            var after = ranges.ceilingEntry(rel);
            if ((before != null && before.getValue() > rel) || (after != null && after.getKey() < rel + n)) {
                return false;
            }
            ranges.put(rel, rel + n);
            covered += n;
            return true;
        }
    }
}
