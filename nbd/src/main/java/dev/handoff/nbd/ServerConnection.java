package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import java.io.EOFException;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.IntFunction;
import javax.net.ssl.SSLException;

/**
 * One client connection of an {@link NbdServer}: the fixed newstyle handshake (upgraded to TLS
 * first when the server requires it), then the transmission phase with simple replies, or
 * structured ones once the client negotiated them.
 */
final class ServerConnection {
    /*
     * Overview.
     *
     * Threads. One reader thread runs run(): it writes the greeting, reads options and answers
     * them, then reads request headers (and WRITE payloads) one after the other. It validates each
     * header, answers invalid requests itself, and hands valid ones to this connection's worker
     * pool, which performs the device operation and sends the reply. Replies therefore leave in
     * completion order, which the protocol allows; the client matches them by handle.
     *
     * Inline requests (ServerLimits.inlineRequests, on by default). A READ or WRITE of at most
     * INLINE_MAX bytes, without FUA, is served by the reader itself, which then reads the next
     * header, when the reader caught up with its client and nothing else of the connection is in
     * flight: a client with one request at a time (a guest at queue depth 1) gets every request
     * served without a hand-off, whose wake-up of a worker was most of a 4 KiB request's time in
     * the server (docs/BENCHMARKS.md, rounds 12 and 13). While the reader serves, the connection's
     * next requests wait, so only short operations qualify: a FLUSH, a FUA write, a TRIM,
     * WRITE_ZEROES or a large request always goes to a worker, as does every request that finds
     * another one in flight (a client that keeps several in flight keeps the workers'
     * concurrency). "Caught up" is two facts about the request, both needed:
     *  - nothing of a later request has arrived (ReadAhead.pending() is 0 once its payload is
     *    read): a client that sent its next request without waiting for a reply, several at once
     *    after a pause say, has them served by workers from the first;
     *  - the reader waited for its header: the read took longer than ServerLimits.inlineAfterWait
     *    (5 µs), which a read of bytes already there does not (about 2.5 µs), while a client at
     *    queue depth 1 sends its next request 19 µs or more after its reply (BENCHMARKS, round 13). A reader that comes late to a request
     *    already waiting, because both CPUs were busy (a mirror's copier running), hands it to a
     *    worker rather than take the copier's share (BENCHMARKS, round 13).
     * Either misjudged only picks the other thread, which changes no result. A device that blocks
     * a small write (a mirror job stopped on an error, a write-blocking write waiting for its
     * chunk's copy) holds up the connection's next request until it returns, as it does once every
     * worker is held.
     *
     * Writes to the socket are serialized by sendLock: a reply's header and data go out together,
     * never interleaved with another reply. The reader also sends under sendLock (handshake
     * replies, error replies for refused requests).
     *
     * Backpressure and memory. Before the reader reads a WRITE payload, or hands over a READ, it
     * takes one slot (maxRequestsInFlight) and the request's length from two byte budgets: the
     * connection's and the server's (in that order, everywhere, so no two readers can wait on each
     * other). The worker gives them back after the reply is sent. A client that sends faster than
     * the device serves it therefore stops being read; a client that does not read its replies
     * blocks a worker in the socket write, its requests stop being read, and the watchdog closes
     * it after replyTimeout. Lengths from the wire are checked against maxPayload before any
     * allocation; discarded payloads go through one 64 KiB scratch buffer. In transmission the
     * reader reads through a 64 KiB read-ahead buffer (ReadAhead): a header and a small payload in
     * one system call; the bytes of later requests wait there, as they would in the socket, until
     * the reader takes their slot and budget (after a graceful shutdown's end of input too, as a
     * header already read was served before).
     *
     * Validation before the device. Every request reaching the device has flags it understands,
     * an offset and length inside the export (unsigned arithmetic, no overflow), and, for writes,
     * a writable export. A WRITE whose payload is truncated by end of stream is never applied.
     *
     * Termination. End of stream between frames, NBD_CMD_DISC, and a graceful server shutdown
     * (shutdownInput) stop the reader; in-flight requests finish and get their replies; then the
     * socket closes. A protocol violation, a failed socket write, a watchdog timeout or a forced
     * close close the socket at once; workers still running finish their device operation (every
     * one of which was validated) and find the socket closed.
     *
     * Never interrupt: workers may be inside FileChannel I/O, which an interrupt would close for
     * the whole device. Closing the socket is what unblocks threads here.
     *
     * Structured replies and base:allocation. NBD_OPT_STRUCTURED_REPLY switches every reply of the
     * transmission phase to one structured chunk with NBD_REPLY_FLAG_DONE: OFFSET_DATA for a READ's
     * data, BLOCK_STATUS for a block status, ERROR for any error, NONE otherwise. Never fragmented,
     * so DF is honoured by construction. NBD_OPT_SET_META_CONTEXT selects base:allocation for one
     * export; it holds in transmission only if the client then goes to that same export. The
     * answer to NBD_CMD_BLOCK_STATUS is the device's own map (AllocationExtents). The negotiated
     * state is written by the reader during the handshake and only read afterwards: the executor's
     * hand-off of each request publishes it to the workers.
     *
     * TLS (DESIGN §7.2, §7.3: FORCEDTLS in the protocol's terms, when the server has credentials).
     * Before the upgrade only NBD_OPT_STARTTLS and NBD_OPT_ABORT are answered; every other option gets
     * NBD_REP_ERR_TLS_REQD and changes nothing, and NBD_OPT_EXPORT_NAME, which cannot be refused
     * with an error, ends the connection. So nothing negotiated in plain text survives the upgrade
     * (there is nothing to reset), and a client that does not upgrade learns no export, no size,
     * and reaches no device. The reader runs the TLS handshake itself, before any worker exists,
     * and then swaps `transport` for the TLS one (volatile: closeNow, on the watchdog's thread,
     * closes whichever it reads, and both close the same socket). The handshake deadline covers
     * the TLS handshake too.
     *
     * Access modes. The fields other threads read are touched only through accessors named by
     * mode (CONTRIBUTING, "One accessor convention"): lp plain load, lv volatile load, sv volatile
     * store, cas compare-and-set; getAndAdd a volatile read-modify-write.
     *  - closed: casClosed by closeNow (the one winner records the reason and closes the socket);
     *    lvClosed by the reader, the workers and the budget waits, pairing with that CAS.
     *  - closeReason: svCloseReason by closeNow's winner, after its CAS; lvCloseReason anywhere.
     *    A thread that saw closed may still read null here (the store follows the CAS): it only
     *    passes the reason to closeNow again, whose CAS then fails and drops it. The reader's own
     *    reads at the end (finish, reportRefusal) follow the workers' termination and the close.
     *  - transport: svTransport by the reader (its TLS upgrade); lpTransport by the reader itself;
     *    lvTransport by every other thread (the workers' sends, closeNow on the watchdog's thread,
     *    a graceful shutdown), pairing with that store. Stronger than needed: a release store and
     *    acquire loads would do (nothing but the transport is published through it), and closing
     *    either transport closes the same socket; the workers' sends are ordered after the upgrade
     *    by the executor's hand-off anyway.
     *  - sendStartedAt: svSendStartedAt by the sender, under sendLock; lvSendStartedAt by the
     *    watchdog. phase: svPhase by the reader; lvPhase by the watchdog and toString.
     *    inTlsHandshake: svInTlsHandshake by the reader; lvInTlsHandshake by the watchdog, for its
     *    message. All three stronger than needed: the watchdog wants a recent value and reads
     *    nothing published through them, so opaque accesses would do.
     *  - pooledBuffers: getAndAddPooledBuffers, a count of the direct buffers made for the pool;
     *    the atomicity is what is needed, not the ordering (the buffers pass through the pool's
     *    queue).
     *  - slots (a Semaphore: its count is volatile, each acquire and release a CAS on it): the
     *    reader alone acquires, workers and the reader release after each reply. servesInline reads
     *    the count (availablePermits, a volatile load) after the reader's own acquire; as nobody
     *    else acquires, it reads "only this request holds a slot" only once every earlier request's
     *    release CAS precedes the load, i.e. once every earlier reply has been sent. A load that
     *    misses a release just sent (the worker's CAS not yet done) sends the request to a worker:
     *    slower, never wrong; the choice of thread changes no result.
     */

    private static final System.Logger LOG = System.getLogger("dev.handoff.nbd");
    private static final VarHandle CLOSED;
    private static final VarHandle CLOSE_REASON;
    private static final VarHandle TRANSPORT;
    private static final VarHandle SEND_STARTED_AT;
    private static final VarHandle PHASE;
    private static final VarHandle IN_TLS_HANDSHAKE;
    private static final VarHandle POOLED_BUFFERS;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            CLOSED = l.findVarHandle(ServerConnection.class, "closed", boolean.class);
            CLOSE_REASON = l.findVarHandle(ServerConnection.class, "closeReason", String.class);
            TRANSPORT = l.findVarHandle(ServerConnection.class, "transport", Transport.class);
            SEND_STARTED_AT = l.findVarHandle(ServerConnection.class, "sendStartedAt", long.class);
            PHASE = l.findVarHandle(ServerConnection.class, "phase", Phase.class);
            IN_TLS_HANDSHAKE = l.findVarHandle(ServerConnection.class, "inTlsHandshake", boolean.class);
            POOLED_BUFFERS = l.findVarHandle(ServerConnection.class, "pooledBuffers", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** What a connection needs from its server. */
    interface Host {
        /** The export of that name, or null. */
        NbdExport export(String name);

        /** Every export, for NBD_OPT_LIST. */
        List<NbdExport> exports();

        /** Called once, when the connection is done and its socket closed. */
        void closed(ServerConnection connection);

        /** The TLS every client must start before anything else, or null for none. */
        default ServerTls tls() {
            return null;
        }

        /**
         * Called once for a client refused before it reached an export: {@code why} is one line
         * (the peer's address, then what it did or what failed).
         */
        default void refused(ServerConnection connection, String why) {
        }
    }

    /** The close reason of a socket that failed: the peer went away (not reported as a refusal). */
    private static final String PEER_GONE = "I/O error: ";

    /** Thrown to end a connection whose client is refused; the message says why. */
    static final class Refused extends IOException {
        private static final long serialVersionUID = 1L;

        Refused(String message) {
            super(message);
        }
    }

    private enum Phase { HANDSHAKE, TRANSMISSION, DONE }

    private final long id;
    /** The plain transport until a TLS upgrade replaces it (reader thread); read by any thread. */
    private volatile Transport transport; // through the accessors (see "Access modes")
    private final String peer;
    private final Host host;
    private final ServerTls tls;
    private final ServerLimits limits;
    private final Semaphore serverBytes;
    private final IntFunction<ByteBuffer> allocator;

    private final Semaphore slots;
    private final Semaphore connectionBytes;
    private final ThreadPoolExecutor workers;
    private final ReentrantLock sendLock = new ReentrantLock();
    private volatile boolean closed; // through the accessors (see "Access modes"), as the volatiles below
    private final CountDownLatch done = new CountDownLatch(1);

    private final long handshakeDeadline;
    /** System.nanoTime() when the send in progress started, or 0; read by the watchdog. */
    private volatile long sendStartedAt;
    private volatile Phase phase;
    private volatile String closeReason;
    /** The TLS handshake is running; read by the watchdog for its message. */
    private volatile boolean inTlsHandshake;
    /** Reader thread only: TLS is up; options refused with NBD_REP_ERR_TLS_REQD; the export was reached. */
    private boolean tlsActive;
    private int refusedBeforeTls;
    private boolean reachedExport;
    /** Set before run() for a client over the connection limit: every option is refused with this. */
    private String busy;
    /** Reader thread in the handshake; read-only once transmission starts (see the overview). */
    private boolean structuredReplies;
    /** The export NBD_OPT_SET_META_CONTEXT selected base:allocation for, or null (reader thread). */
    private NbdExport allocationSelectedFor;
    /** Fixed when transmission starts: base:allocation is selected for the export served. */
    private boolean allocationContext;
    private ByteBuffer scratch;
    private boolean aborted;
    /**
     * Direct buffers of {@link #POOLED_CAPACITY} bytes for request data that fits, reused from
     * request to request: a heap buffer per request costs a copy through the JDK's temporary direct
     * buffer on each socket and file operation, and garbage whose collection shows up as tail
     * latency. At most workers + 2 are kept per connection; null when a test allocator is set.
     */
    private final ArrayBlockingQueue<ByteBuffer> pool;
    /** Direct buffers this connection has created for {@link #pool}: never more than its capacity. */
    private volatile int pooledBuffers; // through getAndAddPooledBuffers
    /** Request data up to this size comes from {@link #pool}: 4 KiB to 128 KiB requests are the common case. */
    static final int POOLED_CAPACITY = 128 << 10;

    ServerConnection(long id, Transport transport, Host host, ServerLimits limits, Semaphore serverBytes,
                     IntFunction<ByteBuffer> allocator) {
        this.id = id;
        svTransport(transport);
        svPhase(Phase.HANDSHAKE);
        this.peer = transport.toString();
        this.host = host;
        this.tls = host.tls();
        this.limits = limits;
        this.serverBytes = serverBytes;
        this.pool = allocator == null ? new ArrayBlockingQueue<>(poolCapacity()) : null;
        this.allocator = allocator != null ? allocator : ByteBuffer::allocate;
        this.slots = new Semaphore(limits.maxRequestsInFlight());
        this.connectionBytes = new Semaphore((int) limits.maxBytesPerConnection());
        this.workers = new ThreadPoolExecutor(limits.workersPerConnection(), limits.workersPerConnection(),
                5, TimeUnit.SECONDS, new LinkedBlockingQueue<>(), r -> {
                    Thread t = new Thread(r, "nbd-server-" + id + "-worker");
                    t.setDaemon(true);
                    return t;
                });
        this.workers.allowCoreThreadTimeOut(true);
        this.handshakeDeadline = System.nanoTime() + limits.handshakeTimeout().toNanos();
    }

    long id() {
        return id;
    }

    /**
     * Makes this connection one that refuses its client, over the server's connection limit, with an
     * NBD error instead of a silent hang-up: every option but ABORT gets NBD_REP_ERR_POLICY with
     * {@code why}, NBD_OPT_EXPORT_NAME (which cannot carry an error) a hang-up, and no export is
     * reached. Call before {@link #run()} (Thread.start publishes it).
     */
    void refuseEveryOption(String why) {
        this.busy = why;
    }

    /** Why the connection closed, once it has; null while open or after an orderly end. */
    String closeReason() {
        return lvCloseReason();
    }

    /** Runs the connection to its end on the calling thread. Never throws. */
    void run() {
        boolean orderly = false;
        try {
            NbdExport export = negotiate();
            if (export != null) {
                allocationContext = allocationSelectedFor == export;
                reachedExport = true;
                svPhase(Phase.TRANSMISSION);
                transmit(export);
            }
            orderly = true;
        } catch (Refused e) {
            closeNow("refused: " + e.getMessage());
        } catch (SSLException e) {
            closeNow(lvClosed() ? lvCloseReason() : "TLS failed: " + TlsFailure.seenByServer(e));
        } catch (ProtocolViolation e) {
            closeNow("protocol violation: " + e.getMessage());
        } catch (EOFException e) {
            closeNow("peer left mid-frame: " + e.getMessage());
        } catch (IOException e) {
            closeNow(lvClosed() ? lvCloseReason() : PEER_GONE + e);
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "nbd connection " + id + " failed", e);
            closeNow("internal error: " + e);
        } finally {
            finish(orderly);
        }
    }

    private void finish(boolean orderly) {
        svPhase(Phase.DONE);
        workers.shutdown();
        try {
            // After an orderly end the in-flight requests still reply; the watchdog bounds their
            // sends, the device bounds their operations.
            long wait = orderly ? limits.replyTimeout().toNanos() + limits.shutdownGrace().toNanos()
                    : limits.shutdownGrace().toNanos();
            if (!workers.awaitTermination(wait, TimeUnit.NANOSECONDS)) {
                LOG.log(Level.WARNING, "nbd connection " + id + ": device operations still running at close");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (orderly && tlsActive) {
            endTls();
        }
        closeNow(null);
        reportRefusal();
        host.closed(this); // before done: whoever awaits done sees the connection gone
        done.countDown();
        LOG.log(Level.DEBUG, () -> "nbd connection " + id + " closed"
                + (lvCloseReason() == null ? "" : ": " + lvCloseReason()));
    }

    /** Sends TLS's close_notify after the last reply, bounded by the reply watchdog like any send. */
    private void endTls() {
        sendLock.lock();
        try {
            if (!lvClosed()) {
                svSendStartedAt(System.nanoTime() | 1);
                lpTransport().finishOutput(); // the reader's own thread
            }
        } catch (IOException e) {
            // the peer left first: nothing to end
        } finally {
            svSendStartedAt(0);
            sendLock.unlock();
        }
    }

    /**
     * One line for a client that never reached an export and did not leave in order: refused by
     * TLS, cut off by a deadline or a protocol violation, or gone after options refused for want of
     * TLS. A client that only listed exports or aborted is not reported, nor one whose socket merely
     * failed (it went away), nor a server shutdown.
     */
    private void reportRefusal() {
        if (reachedExport) {
            return;
        }
        String reason = lvCloseReason();
        String why = null;
        if (reason != null && !reason.equals("server closed") && !reason.startsWith(PEER_GONE)) {
            why = reason;
        } else if (busy != null) {
            why = "refused: " + busy;
        } else if (refusedBeforeTls > 0 && !tlsActive) {
            why = "refused: " + refusedBeforeTls + (refusedBeforeTls == 1 ? " option" : " options")
                    + " before NBD_OPT_STARTTLS (this server requires TLS); the client left";
        }
        if (why != null) {
            String line = peer + ": " + why;
            LOG.log(Level.DEBUG, () -> "nbd connection " + id + " " + line);
            host.refused(this, line);
        }
    }

    /** Waits until run() has returned. */
    boolean awaitDone(long timeout, TimeUnit unit) throws InterruptedException {
        return done.await(timeout, unit);
    }

    /** Stops reading requests; in-flight ones are answered, then the connection closes. */
    void shutdownGracefully() {
        try {
            lvTransport().shutdownInput();
        } catch (IOException e) {
            closeNow("shutdown: " + e);
        }
    }

    /** Closes the socket now (a hard disconnect). Idempotent; the first reason sticks. */
    void closeNow(String reason) {
        if (casClosed(false, true)) {
            svCloseReason(reason);
            try {
                lvTransport().close();
            } catch (IOException e) {
                LOG.log(Level.DEBUG, () -> "nbd connection " + id + ": close failed: " + e);
            }
        }
    }

    /** The watchdog: closes a connection stuck in its handshake or in a reply its peer will not take. */
    void checkDeadlines(long now) {
        if (lvPhase() == Phase.HANDSHAKE && now - handshakeDeadline > 0) {
            closeNow((lvInTlsHandshake() ? "TLS handshake" : "handshake") + " not finished within "
                    + seconds(limits.handshakeTimeout()));
        }
        long started = lvSendStartedAt();
        if (started != 0 && now - started > limits.replyTimeout().toNanos()) {
            closeNow("peer did not take a reply within " + limits.replyTimeout());
        }
    }

    /* ---------------- Handshake ---------------- */

    /** Returns the export to serve, or null if the client left or aborted. */
    private NbdExport negotiate() throws IOException {
        ByteBuffer greeting = ByteBuffer.allocate(GREETING_SIZE);
        greeting.putLong(NBD_MAGIC).putLong(IHAVEOPT).putShort((short) (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)).flip();
        send(greeting, null);

        ByteBuffer clientFlagsFrame = ByteBuffer.allocate(4);
        if (!FrameIo.readFrame(lpTransport(), clientFlagsFrame)) {
            return null;
        }
        int clientFlags = clientFlagsFrame.flip().getInt();
        if ((clientFlags & ~KNOWN_CLIENT_FLAGS) != 0) {
            // The protocol requires the server to drop a client announcing flags it does not know.
            throw new ProtocolViolation("unknown client flags 0x" + Integer.toHexString(clientFlags));
        }
        boolean fixed = (clientFlags & CLIENT_FIXED_NEWSTYLE) != 0;
        boolean noZeroes = (clientFlags & CLIENT_NO_ZEROES) != 0;

        ByteBuffer header = ByteBuffer.allocate(OPTION_HEADER_SIZE);
        for (int count = 0; ; count++) {
            header.clear();
            if (!FrameIo.readFrame(lpTransport(), header)) {
                return null;
            }
            OptionRequest option = OptionRequest.decode(header.flip());
            if (count >= limits.maxOptions()) {
                throw new ProtocolViolation("more than " + limits.maxOptions() + " options");
            }
            if (option.length() > MAX_OPTION_DATA) {
                // Skipping gigabytes of option data would be a denial of service: hang up.
                throw new ProtocolViolation("option " + option.option() + " carries " + option.length()
                        + " bytes, more than " + MAX_OPTION_DATA);
            }
            ByteBuffer data = allocate((int) option.length());
            FrameIo.readFully(lpTransport(), data);
            data.flip();
            if (!fixed && option.option() != OPT_EXPORT_NAME) {
                // Without fixed newstyle there is no way to answer an option with an error.
                throw new ProtocolViolation("option " + option.option() + " without fixed newstyle");
            }
            if (busy != null) {
                if (refuseBusy(option.option())) {
                    return null;
                }
                continue;
            }
            if (tls != null && !tlsActive && !allowedBeforeTls(option.option())) {
                continue;
            }
            NbdExport chosen = answer(option, data, noZeroes);
            if (chosen != null || aborted) {
                return chosen;
            }
        }
    }

    /** Over the connection limit: refuses the option; true when the client aborted. */
    private boolean refuseBusy(int opt) throws IOException {
        switch (opt) {
            case OPT_ABORT -> {
                try {
                    optionReply(opt, REP_ACK, null);
                } catch (IOException e) {
                    // The client may close without waiting for the acknowledgement.
                }
                aborted = true;
                return true;
            }
            case OPT_EXPORT_NAME -> throw new Refused(busy);
            default -> {
                optionError(opt, REP_ERR_POLICY, busy);
                return false;
            }
        }
    }

    /**
     * FORCEDTLS: before the upgrade, whether answer() may handle the option. STARTTLS and ABORT
     * may; EXPORT_NAME ends the connection (it cannot be refused with an error); every other
     * option is refused here with NBD_REP_ERR_TLS_REQD.
     */
    private boolean allowedBeforeTls(int opt) throws IOException {
        switch (opt) {
            case OPT_STARTTLS, OPT_ABORT -> {
                return true;
            }
            case OPT_EXPORT_NAME -> throw new Refused("NBD_OPT_EXPORT_NAME before NBD_OPT_STARTTLS (this server"
                    + " requires TLS)");
            default -> {
                refusedBeforeTls++;
                optionError(opt, REP_ERR_TLS_REQD, "TLS is required: send NBD_OPT_STARTTLS first");
                return false;
            }
        }
    }

    /** Runs the TLS handshake after STARTTLS was acknowledged; a failed handshake ends the connection. */
    private void startTls() throws IOException {
        svInTlsHandshake(true);
        TlsTransport upgraded;
        try {
            upgraded = TlsTransport.handshake(lpTransport(), tls.newEngine());
        } catch (SSLException e) {
            if (lvClosed()) {
                throw e; // the watchdog's close: its reason stands
            }
            throw new Refused(TlsFailure.seenByServer(e));
        } finally {
            svInTlsHandshake(false);
        }
        svTransport(upgraded);
        tlsActive = true;
        LOG.log(Level.DEBUG, () -> "nbd connection " + id + ": " + upgraded.protocol() + " with client "
                + upgraded.peerSubject());
    }

    /** Answers one option; returns the export to serve (GO, EXPORT_NAME), or null to go on (or stop, if aborted). */
    private NbdExport answer(OptionRequest option, ByteBuffer data, boolean noZeroes) throws IOException {
        int opt = option.option();
        switch (opt) {
            case OPT_EXPORT_NAME -> {
                String name = decodeString(data, data.remaining(), "export name");
                NbdExport export = host.export(name);
                if (export == null) {
                    // This option cannot carry an error: the protocol says hang up.
                    throw new ProtocolViolation("NBD_OPT_EXPORT_NAME for unknown export '" + name + "'");
                }
                ByteBuffer reply = ByteBuffer.allocate(10 + (noZeroes ? 0 : EXPORT_NAME_REPLY_ZEROES));
                reply.putLong(export.device().size()).putShort((short) export.transmissionFlags(structuredReplies));
                reply.position(reply.limit()).flip();
                send(reply, null);
                return export;
            }
            case OPT_ABORT -> {
                try {
                    optionReply(opt, REP_ACK, null);
                } catch (IOException e) {
                    // The client may close without waiting for the acknowledgement.
                }
                aborted = true;
                return null;
            }
            case OPT_STARTTLS -> {
                if (tls == null) {
                    optionError(opt, REP_ERR_POLICY, "TLS is not configured on this server");
                } else if (tlsActive) {
                    optionError(opt, REP_ERR_INVALID, "TLS is already active");
                } else if (data.hasRemaining()) {
                    optionError(opt, REP_ERR_INVALID, "NBD_OPT_STARTTLS takes no data");
                } else {
                    optionReply(opt, REP_ACK, null);
                    startTls();
                }
                return null;
            }
            case OPT_LIST -> {
                if (data.hasRemaining()) {
                    optionError(opt, REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
                    return null;
                }
                for (NbdExport export : host.exports()) {
                    byte[] name = utf8(export.name());
                    ByteBuffer server = ByteBuffer.allocate(4 + name.length);
                    server.putInt(name.length).put(name).flip();
                    optionReply(opt, REP_SERVER, server);
                }
                optionReply(opt, REP_ACK, null);
                return null;
            }
            case OPT_INFO, OPT_GO -> {
                InfoRequest request;
                try {
                    request = InfoRequest.decode(data);
                } catch (ProtocolViolation e) {
                    optionError(opt, REP_ERR_INVALID, e.getMessage());
                    return null;
                }
                NbdExport export = host.export(request.name());
                if (export == null) {
                    optionError(opt, REP_ERR_UNKNOWN, "no export named '" + request.name() + "'");
                    return null;
                }
                sendInfo(opt, request, export);
                optionReply(opt, REP_ACK, null);
                return opt == OPT_GO ? export : null;
            }
            case OPT_STRUCTURED_REPLY -> {
                if (data.hasRemaining()) {
                    optionError(opt, REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data");
                } else if (structuredReplies) {
                    optionError(opt, REP_ERR_INVALID, "structured replies are already negotiated");
                } else {
                    structuredReplies = true;
                    optionReply(opt, REP_ACK, null);
                }
                return null;
            }
            case OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT -> {
                metaContext(opt, data);
                return null;
            }
            default -> {
                // Extended headers and anything unknown: declined, and the client carries on with
                // what this server does speak.
                optionError(opt, REP_ERR_UNSUP, "option " + Integer.toUnsignedString(opt) + " is not supported");
                return null;
            }
        }
    }

    /**
     * NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT. The one context is base:allocation:
     * LIST names it for no query, "base:" or its own name; SET selects it for its own name only, and
     * replaces any earlier selection (an empty or failed SET selects nothing).
     */
    private void metaContext(int opt, ByteBuffer data) throws IOException {
        boolean set = opt == OPT_SET_META_CONTEXT;
        if (set) {
            allocationSelectedFor = null;
        }
        String what = set ? "NBD_OPT_SET_META_CONTEXT" : "NBD_OPT_LIST_META_CONTEXT";
        if (!structuredReplies) {
            optionError(opt, REP_ERR_INVALID, what + " needs NBD_OPT_STRUCTURED_REPLY first");
            return;
        }
        MetaContextRequest request;
        try {
            request = MetaContextRequest.decode(data);
        } catch (ProtocolViolation e) {
            optionError(opt, REP_ERR_INVALID, e.getMessage());
            return;
        }
        NbdExport export = host.export(request.name());
        if (export == null) {
            optionError(opt, REP_ERR_UNKNOWN, "no export named '" + request.name() + "'");
            return;
        }
        boolean allocation = !set && request.queries().isEmpty();
        for (String query : request.queries()) {
            allocation |= query.equals(BASE_ALLOCATION) || (!set && query.equals("base:"));
        }
        if (allocation) {
            byte[] name = utf8(BASE_ALLOCATION);
            // LIST's context ids are reserved (zero); SET's is the one BLOCK_STATUS replies carry.
            optionReply(opt, REP_META_CONTEXT, ByteBuffer.allocate(4 + name.length)
                    .putInt(set ? BASE_ALLOCATION_ID : 0).put(name).flip());
            if (set) {
                allocationSelectedFor = export;
            }
        }
        optionReply(opt, REP_ACK, null);
    }

    /** The id of base:allocation in NBD_REP_META_CONTEXT and in BLOCK_STATUS chunks. */
    static final int BASE_ALLOCATION_ID = 1;

    private void sendInfo(int opt, InfoRequest request, NbdExport export) throws IOException {
        ByteBuffer info = ByteBuffer.allocate(12);
        info.putShort((short) INFO_EXPORT).putLong(export.device().size()).putShort((short) export.transmissionFlags(structuredReplies)).flip();
        optionReply(opt, REP_INFO, info);
        if (request.asks(INFO_NAME)) {
            byte[] name = utf8(export.name());
            optionReply(opt, REP_INFO, ByteBuffer.allocate(2 + name.length).putShort((short) INFO_NAME).put(name).flip());
        }
        if (request.asks(INFO_DESCRIPTION) && !export.description().isEmpty()) {
            byte[] text = utf8(export.description());
            optionReply(opt, REP_INFO,
                    ByteBuffer.allocate(2 + text.length).putShort((short) INFO_DESCRIPTION).put(text).flip());
        }
        if (request.asks(INFO_BLOCK_SIZE)) {
            ByteBuffer sizes = ByteBuffer.allocate(14);
            sizes.putShort((short) INFO_BLOCK_SIZE).putInt(1).putInt(4096).putInt(limits.maxPayload()).flip();
            optionReply(opt, REP_INFO, sizes);
        }
    }

    private void optionError(int opt, int type, String message) throws IOException {
        byte[] text = utf8(message.length() > 1024 ? message.substring(0, 1024) : message);
        optionReply(opt, type, ByteBuffer.wrap(text));
    }

    private void optionReply(int opt, int type, ByteBuffer data) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(OPTION_REPLY_HEADER_SIZE);
        new OptionReply(opt, type, data == null ? 0 : data.remaining()).encode(header);
        send(header.flip(), data);
    }

    /* ---------------- Transmission ---------------- */

    private void transmit(NbdExport export) throws IOException {
        BlockDevice device = export.device();
        long size = device.size();
        ByteBuffer header = ByteBuffer.allocate(REQUEST_SIZE);
        ReadAhead input = new ReadAhead(lpTransport()); // the transport stays this one from here on
        boolean inline = limits.inlineRequests();
        long inlineAfterWait = limits.inlineAfterWait().toNanos();
        while (!lvClosed()) {
            header.clear();
            long readStart = System.nanoTime();
            if (!FrameIo.readFrame(input, header)) {
                return;
            }
            long headerWait = System.nanoTime() - readStart;
            Request request = Request.decode(header.flip());
            if (request.type() == CMD_DISC) {
                return;
            }
            int refusal = refusal(request, export, size);
            if (request.type() == CMD_WRITE) {
                if (request.length() > limits.discardablePayload()) {
                    throw new ProtocolViolation("WRITE of " + request.length() + " bytes exceeds the maximum payload "
                            + limits.maxPayload());
                }
                if (refusal != 0) {
                    FrameIo.skip(input, request.length(), scratch());
                }
            }
            NbdRequestEvent event = NbdRequestEvent.startIfRecording(headerWait); // null unless a JFR recording takes it
            if (refusal != 0) {
                reply(request, refusal, null);
                if (event != null) {
                    event.replied(id, request, refusal);
                }
                continue;
            }
            int bytes = carriesData(request) ? (int) request.length() : 0;
            if (!acquire(bytes)) {
                return;
            }
            ByteBuffer payload = null;
            try {
                if (request.type() == CMD_WRITE) {
                    payload = requestBuffer(bytes);
                    FrameIo.readFully(input, payload); // a truncated payload throws: nothing of it is applied
                    payload.flip();
                }
                if (event != null) {
                    event.received();
                }
                // The reader caught up with its client: it waited for this header, and nothing of a
                // later request has arrived (see "Inline requests" in the overview).
                boolean caughtUp = inline && headerWait > inlineAfterWait && input.pending() == 0;
                submit(request, device, payload, bytes, event, caughtUp);
            } catch (IOException | RuntimeException e) {
                release(bytes);
                throw e;
            }
        }
    }

    /** The error a request is refused with before it reaches the device, or 0 if it is valid. */
    private int refusal(Request request, NbdExport export, long size) {
        int allowedFlags = CMD_FLAG_FUA | switch (request.type()) {
            case CMD_WRITE_ZEROES -> CMD_FLAG_NO_HOLE | CMD_FLAG_FAST_ZERO;
            case CMD_READ -> structuredReplies ? CMD_FLAG_DF : 0;
            case CMD_BLOCK_STATUS -> CMD_FLAG_REQ_ONE;
            default -> 0;
        };
        if ((request.flags() & ~allowedFlags) != 0) {
            return EINVAL;
        }
        boolean inside = request.inside(size);
        boolean readOnly = export.readOnly();
        return switch (request.type()) {
            case CMD_READ -> request.length() > limits.maxPayload() || !inside ? EINVAL : 0;
            case CMD_WRITE -> readOnly ? EPERM
                    : request.length() > limits.maxPayload() ? EINVAL
                    : !inside ? ENOSPC : 0;
            case CMD_FLUSH -> request.offset() != 0 || request.length() != 0 ? EINVAL : 0;
            case CMD_TRIM -> readOnly ? EPERM : !inside ? EINVAL : 0;
            case CMD_WRITE_ZEROES -> readOnly ? EPERM : !inside ? ENOSPC
                    // Zeroes that must stay allocated are written, which is never fast.
                    : (request.flags() & (CMD_FLAG_FAST_ZERO | CMD_FLAG_NO_HOLE)) == (CMD_FLAG_FAST_ZERO | CMD_FLAG_NO_HOLE)
                    ? ENOTSUP : 0;
            case CMD_CACHE -> !inside ? EINVAL : 0;
            // Needs a selected context (so structured replies), and a range of at least one byte.
            case CMD_BLOCK_STATUS -> !allocationContext || request.length() == 0 || !inside ? EINVAL : 0;
            default -> EINVAL; // unknown commands
        };
    }

    private static boolean carriesData(Request request) {
        return request.type() == CMD_READ || request.type() == CMD_WRITE;
    }

    /** Serves a validated request here (see "Inline requests" in the overview) or on a worker. */
    private void submit(Request request, BlockDevice device, ByteBuffer payload, int bytes, NbdRequestEvent event,
                        boolean caughtUp) {
        boolean onReader = servesInline(request, caughtUp);
        if (event != null) {
            event.onReader = onReader;
        }
        if (onReader) {
            serve(request, device, payload, bytes, event);
        } else {
            workers.execute(() -> serve(request, device, payload, bytes, event));
        }
    }

    /** The largest READ or WRITE the reader serves itself: the pooled buffers' size (ServerLimits says 128 KiB). */
    static final int INLINE_MAX = POOLED_CAPACITY;

    /**
     * Whether the reader serves {@code request} itself: it caught up with its client
     * ({@code caughtUp}: it waited for the request's header and nothing of a later request has
     * arrived; false unless inline requests are on), the request is a READ or WRITE of at most
     * {@link #INLINE_MAX} bytes without FUA, and no other request is in flight (this one holds the
     * only slot taken; see "Access modes" for the load).
     */
    private boolean servesInline(Request request, boolean caughtUp) {
        return caughtUp
                && (request.type() == CMD_READ || request.type() == CMD_WRITE)
                && (request.flags() & CMD_FLAG_FUA) == 0
                && request.length() <= INLINE_MAX
                && slots.availablePermits() == limits.maxRequestsInFlight() - 1;
    }

    /**
     * On a worker, or on the reader for a request it serves itself: performs one validated request
     * and sends its reply ({@code event}: null unless recorded).
     */
    private void serve(Request request, BlockDevice device, ByteBuffer payload, int bytes, NbdRequestEvent event) {
        boolean replied = false;
        if (event != null) {
            event.started();
        }
        try {
            int error = 0;
            ByteBuffer data = null;
            try {
                data = perform(request, device, payload, bytes);
            } catch (NotFast e) {
                error = ENOTSUP;
            } catch (DeviceException e) {
                error = errnoFor(e.kind());
                LOG.log(Level.DEBUG, () -> "nbd connection " + id + ": " + commandName(request.type()) + " at "
                        + request.offset() + "+" + request.length() + " failed: " + e.getMessage());
            } catch (RuntimeException e) {
                error = EIO;
                LOG.log(Level.WARNING, "nbd connection " + id + ": device failed on " + commandName(request.type()), e);
            }
            if (event != null) {
                event.performed();
            }
            reply(request, error, error == 0 ? data : null);
            replied = true;
            if (event != null) {
                event.replied(id, request, error);
            }
            // The device operation and the reply are done with both buffers (send is synchronous).
            recycle(payload);
            recycle(data);
        } finally {
            release(bytes);
            if (!replied) {
                // An Error escaped: the client would wait forever for this reply. Hang up instead.
                closeNow("request " + request.handle() + " failed without a reply");
            }
        }
    }

    private ByteBuffer perform(Request request, BlockDevice device, ByteBuffer payload, int bytes)
            throws DeviceException, NotFast {
        boolean fua = (request.flags() & CMD_FLAG_FUA) != 0;
        switch (request.type()) {
            case CMD_READ -> {
                ByteBuffer data = requestBuffer(bytes);
                if (bytes > 0) {
                    device.read(request.offset(), data);
                }
                return data.flip();
            }
            case CMD_WRITE -> {
                if (bytes > 0) {
                    device.write(request.offset(), payload);
                }
            }
            case CMD_FLUSH -> device.flush();
            case CMD_TRIM -> {
                if (request.length() > 0) {
                    device.discard(request.offset(), request.length());
                }
            }
            case CMD_WRITE_ZEROES -> {
                if ((request.flags() & CMD_FLAG_FAST_ZERO) != 0) {
                    // Fast only where there is nothing to do: the range is a hole already (a fresh
                    // sparse target, as qemu-img and nbdcopy find it). Otherwise the client writes.
                    if (request.length() > 0 && device.nextData(request.offset()) < request.offset() + request.length()) {
                        throw new NotFast();
                    }
                } else if (request.length() > 0) {
                    device.writeZeroes(request.offset(), request.length());
                }
            }
            case CMD_CACHE -> {
                // Advisory, and the device reads through its own cache: nothing to prefetch here.
            }
            case CMD_BLOCK_STATUS -> {
                return AllocationExtents.of(device, BASE_ALLOCATION_ID, request.offset(), request.length(),
                        (request.flags() & CMD_FLAG_REQ_ONE) != 0);
            }
            default -> throw new IllegalStateException("unvalidated command " + request.type());
        }
        if (fua && request.type() != CMD_FLUSH) {
            device.flush();
        }
        return null;
    }

    /** A fast zero (NBD_CMD_FLAG_FAST_ZERO) that would not be fast: answered ENOTSUP, nothing done. */
    private static final class NotFast extends Exception {
        private static final long serialVersionUID = 1L;

        NotFast() {
            super(null, null, false, false);
        }
    }

    /** The protocol error for a device failure. */
    static int errnoFor(DeviceException.Kind kind) {
        return switch (kind) {
            case IO_ERROR -> EIO;
            case NO_SPACE -> ENOSPC;
            // An inactive or fenced image refuses writes: "operation not permitted" is the nearest.
            case READ_ONLY, INACTIVE, FENCED -> EPERM;
            case OUT_OF_RANGE -> EINVAL;
            // The export's device is gone: the server is, for this export, shutting down.
            case CLOSED -> ESHUTDOWN;
        };
    }

    /* ---------------- Budgets ---------------- */

    /** Takes a slot and {@code bytes} from both budgets; false if the connection closed meanwhile. */
    private boolean acquire(int bytes) throws IOException {
        if (!acquire(slots, 1)) {
            return false;
        }
        if (!acquire(connectionBytes, bytes)) {
            slots.release();
            return false;
        }
        if (!acquire(serverBytes, bytes)) {
            connectionBytes.release(bytes);
            slots.release();
            return false;
        }
        return true;
    }

    private boolean acquire(Semaphore semaphore, int permits) throws IOException {
        try {
            while (!lvClosed()) {
                if (semaphore.tryAcquire(permits, 100, TimeUnit.MILLISECONDS)) {
                    return true;
                }
            }
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted while waiting for a request slot");
        }
    }

    private void release(int bytes) {
        serverBytes.release(bytes);
        connectionBytes.release(bytes);
        slots.release();
    }

    /* ---------------- Sending ---------------- */

    /**
     * Sends the reply to {@code request}: a simple reply, or after NBD_OPT_STRUCTURED_REPLY one
     * structured chunk marked done ({@code data}: a READ's data or a BLOCK_STATUS payload, null
     * for an error). A failure to send closes the connection. Never throws.
     */
    private void reply(Request request, int error, ByteBuffer data) {
        ByteBuffer header;
        if (!structuredReplies) {
            header = ByteBuffer.allocate(SIMPLE_REPLY_SIZE);
            new SimpleReply(error, request.handle()).encode(header);
        } else if (error != 0) {
            header = ByteBuffer.allocate(STRUCTURED_REPLY_HEADER_SIZE + 6);
            new StructuredReplyHeader(REPLY_FLAG_DONE, REPLY_TYPE_ERROR, request.handle(), 6).encode(header);
            header.putInt(error).putShort((short) 0); // no message: the error number says it
            data = null;
        } else if (request.type() == CMD_READ && data != null && data.hasRemaining()) {
            header = ByteBuffer.allocate(STRUCTURED_REPLY_HEADER_SIZE + 8);
            new StructuredReplyHeader(REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, request.handle(), 8L + data.remaining())
                    .encode(header);
            header.putLong(request.offset());
        } else if (request.type() == CMD_BLOCK_STATUS && data != null) {
            header = ByteBuffer.allocate(STRUCTURED_REPLY_HEADER_SIZE);
            new StructuredReplyHeader(REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, request.handle(), data.remaining())
                    .encode(header);
        } else {
            // Success without data, a READ of zero bytes included (OFFSET_DATA must carry one).
            header = ByteBuffer.allocate(STRUCTURED_REPLY_HEADER_SIZE);
            new StructuredReplyHeader(REPLY_FLAG_DONE, REPLY_TYPE_NONE, request.handle(), 0).encode(header);
            data = null;
        }
        try {
            send(header.flip(), data);
        } catch (IOException e) {
            closeNow(lvClosed() ? lvCloseReason() : "reply failed: " + e);
        }
    }

    private void send(ByteBuffer header, ByteBuffer data) throws IOException {
        sendLock.lock();
        try {
            if (lvClosed()) {
                throw new java.nio.channels.ClosedChannelException();
            }
            svSendStartedAt(System.nanoTime() | 1); // never 0, which means "not sending"
            lvTransport().writeFully(header, data); // a worker's, or the reader's in the handshake
        } finally {
            svSendStartedAt(0);
            sendLock.unlock();
        }
    }

    /* ---------------- Buffers ---------------- */

    private ByteBuffer allocate(int size) {
        return allocator.apply(size);
    }

    /** A buffer of exactly {@code size} bytes remaining for one request's data (a READ's or a WRITE's). */
    private ByteBuffer requestBuffer(int size) {
        if (pool == null || size > POOLED_CAPACITY) {
            return allocate(size);
        }
        ByteBuffer b = pool.poll();
        if (b == null) {
            if (getAndAddPooledBuffers(1) >= poolCapacity()) {
                // More requests in flight than the pool holds: this one gets a buffer of its own.
                getAndAddPooledBuffers(-1);
                return allocate(size);
            }
            b = ByteBuffer.allocateDirect(POOLED_CAPACITY);
        }
        return b.clear().limit(size);
    }

    /** Pooled buffers per connection: one per worker, and two for the reader's next requests. */
    private int poolCapacity() {
        return limits.workersPerConnection() + 2;
    }

    /** Returns a pooled buffer once its request is answered; others are left to the collector. */
    private void recycle(ByteBuffer b) {
        if (pool != null && b != null && b.isDirect() && b.capacity() == POOLED_CAPACITY) {
            pool.offer(b); // never full: at most its capacity of pooled buffers exist
        }
    }

    private ByteBuffer scratch() {
        if (scratch == null) {
            scratch = allocate(FrameIo.SKIP_CHUNK);
        }
        return scratch;
    }

    private static String seconds(java.time.Duration d) {
        long millis = d.toMillis();
        return millis % 1000 == 0 ? millis / 1000 + " s" : millis + " ms";
    }

    @Override
    public String toString() {
        return "nbd connection " + id + " (" + lvTransport() + ", " + lvPhase() + ")";
    }

    /* ---------------- Accessors (modes and partners: "Access modes" in the overview) ---------------- */

    private boolean lvClosed() {
        return (boolean) CLOSED.getVolatile(this); // pairs with casClosed
    }

    private boolean casClosed(boolean expected, boolean next) {
        return CLOSED.compareAndSet(this, expected, next); // one winner closes
    }

    private String lvCloseReason() {
        return (String) CLOSE_REASON.getVolatile(this); // pairs with svCloseReason
    }

    private void svCloseReason(String reason) {
        CLOSE_REASON.setVolatile(this, reason); // after the winning casClosed
    }

    private Transport lpTransport() {
        return (Transport) TRANSPORT.get(this); // the reader, which is the only writer
    }

    private Transport lvTransport() {
        return (Transport) TRANSPORT.getVolatile(this); // pairs with svTransport; stronger than needed
    }

    private void svTransport(Transport t) {
        TRANSPORT.setVolatile(this, t); // the reader: construction, the TLS upgrade; a release would do
    }

    private long lvSendStartedAt() {
        return (long) SEND_STARTED_AT.getVolatile(this); // the watchdog; opaque would do
    }

    private void svSendStartedAt(long nanos) {
        SEND_STARTED_AT.setVolatile(this, nanos); // under sendLock; opaque would do
    }

    private Phase lvPhase() {
        return (Phase) PHASE.getVolatile(this); // the watchdog, toString; opaque would do
    }

    private void svPhase(Phase p) {
        PHASE.setVolatile(this, p); // the reader; opaque would do
    }

    private boolean lvInTlsHandshake() {
        return (boolean) IN_TLS_HANDSHAKE.getVolatile(this); // the watchdog's message; opaque would do
    }

    private void svInTlsHandshake(boolean running) {
        IN_TLS_HANDSHAKE.setVolatile(this, running); // the reader; opaque would do
    }

    /** Volatile RMW: only its atomicity matters (see "Access modes"). */
    private int getAndAddPooledBuffers(int delta) {
        return (int) POOLED_BUFFERS.getAndAdd(this, delta);
    }
}
