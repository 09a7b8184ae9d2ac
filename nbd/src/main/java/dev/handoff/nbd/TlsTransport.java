package dev.handoff.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.locks.ReentrantLock;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLHandshakeException;

/**
 * A transport upgraded to TLS after {@code NBD_OPT_STARTTLS}: an {@link SSLEngine} over the plain
 * transport, in blocking style. The upgrade happens in the middle of a byte stream, so the plain
 * side must not have read past the STARTTLS exchange; {@link FrameIo} reads exact frames, and the
 * first byte this class reads is the first byte of the handshake.
 *
 * <h2>Threads</h2>
 * As for every transport, reads come from one thread at a time and writes from one thread at a
 * time, and a read and a write may run at once. {@link SSLEngine#wrap} and {@link SSLEngine#unwrap}
 * may run concurrently (SSLEngine's contract). Two locks keep each side's buffers to one thread:
 * {@code readLock} guards {@code netIn}, {@code appIn} and {@code inboundDone}; {@code writeLock}
 * guards {@code netOut}. The reader sometimes has to write: a TLS 1.3 KeyUpdate that asks for one
 * in return makes {@code unwrap} report NEED_WRAP. It then takes {@code writeLock} while holding
 * {@code readLock}; no writer ever takes {@code readLock}, so the two cannot deadlock. The
 * handshake runs before the transport is shared, holding both locks.
 *
 * <h2>Ends</h2>
 * {@link #finishOutput} sends TLS's close_notify, the orderly end; {@link #close} closes the socket
 * at once (a hard disconnect, and what unblocks a reader or writer stuck in the socket: the
 * watchdogs above this class use it). End of stream at a record boundary reads as end of stream
 * (the NBD framing above tells a clean end from a cut frame); end of stream inside a record is an
 * {@link EOFException}. A handshake that fails sends the TLS alert the engine produced, so that the
 * peer learns why, before the exception propagates.
 */
final class TlsTransport implements Transport {
    private static final ByteBuffer[] NOTHING = {ByteBuffer.allocate(0)};
    /** The message of a handshake cut by the peer's hanging up, which {@link TlsFailure} recognizes. */
    static final String PEER_LEFT = "the peer closed the connection during the TLS handshake";

    private final Transport raw;
    private final SSLEngine engine;
    private final ReentrantLock readLock = new ReentrantLock();
    private final ReentrantLock writeLock = new ReentrantLock();

    /** Bytes read from the socket and not yet decrypted, in write mode; guarded by readLock. */
    private ByteBuffer netIn;
    /** Decrypted bytes not yet handed out, in read mode; guarded by readLock. */
    private ByteBuffer appIn;
    /** The peer's stream ended (close_notify or end of stream); guarded by readLock. */
    private boolean inboundDone;
    /** Encrypted bytes to send, in write mode; guarded by writeLock. */
    private ByteBuffer netOut;
    /** The largest record the engine produces: flush before less than this is free; guarded by writeLock. */
    private int packetSize;

    private TlsTransport(Transport raw, SSLEngine engine) {
        this.raw = raw;
        this.engine = engine;
        int packet = engine.getSession().getPacketBufferSize();
        this.packetSize = packet;
        this.netIn = ByteBuffer.allocateDirect(packet);
        this.appIn = ByteBuffer.allocate(engine.getSession().getApplicationBufferSize()).flip();
        // Several records per system call for large replies.
        this.netOut = ByteBuffer.allocateDirect(4 * packet);
    }

    /**
     * Runs the TLS handshake on {@code raw} with {@code engine} (already set to its client or server
     * role) and returns the upgraded transport. On failure the alert is sent, the exception
     * propagates, and {@code raw} is left for the caller to close.
     */
    static TlsTransport handshake(Transport raw, SSLEngine engine) throws IOException {
        TlsTransport tls = new TlsTransport(raw, engine);
        tls.runHandshake();
        return tls;
    }

    /** The negotiated session's protocol (TLSv1.3, ...). */
    String protocol() {
        return engine.getSession().getProtocol();
    }

    /** The engine (tests cut records with it). */
    SSLEngine engine() {
        return engine;
    }

    /** The subject of the peer's certificate (RFC 4514), or "no certificate". */
    String peerSubject() {
        try {
            return TlsFailure.subject((java.security.cert.X509Certificate) engine.getSession().getPeerCertificates()[0]);
        } catch (javax.net.ssl.SSLPeerUnverifiedException e) {
            return "no certificate";
        }
    }

    /* ---------------- Handshake ---------------- */

    private void runHandshake() throws IOException {
        readLock.lock();
        writeLock.lock();
        try {
            engine.beginHandshake();
            HandshakeStatus status = engine.getHandshakeStatus();
            while (status != HandshakeStatus.FINISHED && status != HandshakeStatus.NOT_HANDSHAKING) {
                switch (status) {
                    case NEED_TASK -> {
                        runTasks();
                        status = engine.getHandshakeStatus();
                    }
                    case NEED_WRAP -> {
                        SSLEngineResult r = wrap(NOTHING);
                        flush();
                        if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                            throw new SSLHandshakeException("the TLS session closed during the handshake");
                        }
                        status = r.getHandshakeStatus();
                    }
                    default -> { // NEED_UNWRAP, NEED_UNWRAP_AGAIN
                        SSLEngineResult r = unwrap();
                        if (r == null) {
                            throw new SSLHandshakeException(PEER_LEFT);
                        }
                        if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                            throw new SSLHandshakeException("the peer ended the TLS session during the handshake");
                        }
                        status = r.getHandshakeStatus();
                    }
                }
            }
            packetSize = engine.getSession().getPacketBufferSize();
        } catch (SSLException e) {
            sendPendingAlert();
            throw e;
        } finally {
            writeLock.unlock();
            readLock.unlock();
        }
    }

    /** After a failed handshake: sends the alert the engine has queued, if the socket takes it. */
    private void sendPendingAlert() {
        try {
            engine.closeOutbound();
            for (int i = 0; i < 4; i++) {
                SSLEngineResult r = engine.wrap(NOTHING, netOut);
                if (r.bytesProduced() == 0) {
                    break;
                }
            }
            flush();
        } catch (IOException | RuntimeException e) {
            // the peer learns nothing more; the caller reports the handshake's failure
        }
    }

    private void runTasks() {
        Runnable task;
        while ((task = engine.getDelegatedTask()) != null) {
            task.run();
        }
    }

    /* ---------------- Reading ---------------- */

    @Override
    public int read(ByteBuffer dst) throws IOException {
        if (!dst.hasRemaining()) {
            return 0;
        }
        readLock.lock();
        try {
            while (!appIn.hasRemaining()) {
                if (inboundDone) {
                    return -1;
                }
                SSLEngineResult r = unwrap();
                if (r == null || r.getStatus() == SSLEngineResult.Status.CLOSED) {
                    inboundDone = true; // end of stream, or the peer's close_notify
                    continue;
                }
                afterUnwrap(r.getHandshakeStatus());
            }
            int n = Math.min(dst.remaining(), appIn.remaining());
            ByteBuffer part = appIn.slice(appIn.position(), n);
            dst.put(part);
            appIn.position(appIn.position() + n);
            return n;
        } finally {
            readLock.unlock();
        }
    }

    /** Post-handshake messages: a KeyUpdate may ask for one back. Reader thread, readLock held. */
    private void afterUnwrap(HandshakeStatus status) throws IOException {
        while (true) {
            switch (status) {
                case NEED_TASK -> {
                    runTasks();
                    status = engine.getHandshakeStatus();
                }
                case NEED_WRAP -> {
                    writeLock.lock();
                    try {
                        status = wrap(NOTHING).getHandshakeStatus();
                        flush();
                    } finally {
                        writeLock.unlock();
                    }
                }
                default -> {
                    return; // nothing to do, or more to read: the read loop goes on
                }
            }
        }
    }

    /**
     * Decrypts one record into appIn, reading from the socket until a whole record is there.
     * Returns null at end of stream between records; throws {@link EOFException} inside one.
     * readLock held.
     */
    private SSLEngineResult unwrap() throws IOException {
        while (true) {
            SSLEngineResult r;
            netIn.flip();
            appIn.compact();
            try {
                r = engine.unwrap(netIn, appIn);
            } finally {
                appIn.flip();
                netIn.compact();
            }
            switch (r.getStatus()) {
                case BUFFER_UNDERFLOW -> {
                    if (!fill()) {
                        return null;
                    }
                }
                case BUFFER_OVERFLOW -> appIn = grow(appIn, engine.getSession().getApplicationBufferSize(), true);
                default -> {
                    return r;
                }
            }
        }
    }

    /** Reads more from the socket into netIn; false at end of stream with no partial record. */
    private boolean fill() throws IOException {
        if (!netIn.hasRemaining()) {
            int packet = engine.getSession().getPacketBufferSize();
            if (netIn.capacity() >= 2 * packet) {
                // The engine refuses records over the protocol's size; this is a second line.
                throw new SSLException("a TLS record larger than " + packet + " bytes");
            }
            netIn = grow(netIn, packet, false);
        }
        int n = raw.read(netIn);
        if (n < 0) {
            if (netIn.position() == 0) {
                return false;
            }
            throw new EOFException("the peer closed the connection inside a TLS record");
        }
        return true;
    }

    /** A larger copy of {@code b} (read mode if {@code readMode}, else write mode), keeping its content. */
    private static ByteBuffer grow(ByteBuffer b, int atLeast, boolean readMode) {
        int capacity = Math.max(atLeast, b.capacity()) + b.capacity();
        ByteBuffer bigger = b.isDirect() ? ByteBuffer.allocateDirect(capacity) : ByteBuffer.allocate(capacity);
        if (readMode) {
            bigger.put(b).flip();
        } else {
            b.flip();
            bigger.put(b);
        }
        return bigger;
    }

    /* ---------------- Writing ---------------- */

    @Override
    public int write(ByteBuffer src) throws IOException {
        int n = src.remaining();
        writeFully(src, null);
        return n;
    }

    /** Encrypts all of {@code header} then all of {@code data} (may be null), gathered into as few records as fit. */
    @Override
    public void writeFully(ByteBuffer header, ByteBuffer data) throws IOException {
        ByteBuffer[] sources = data == null ? new ByteBuffer[] {header} : new ByteBuffer[] {header, data};
        writeLock.lock();
        try {
            while (header.hasRemaining() || (data != null && data.hasRemaining())) {
                SSLEngineResult r = wrap(sources);
                if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                    throw new SSLException("the TLS session is closed");
                }
                if (r.getHandshakeStatus() == HandshakeStatus.NEED_TASK) {
                    runTasks();
                }
                if (netOut.remaining() < packetSize) {
                    flush();
                }
            }
            flush();
        } finally {
            writeLock.unlock();
        }
    }

    /** One wrap into netOut, making room when the record does not fit. writeLock held. */
    private SSLEngineResult wrap(ByteBuffer[] sources) throws IOException {
        while (true) {
            SSLEngineResult r = engine.wrap(sources, netOut);
            if (r.getStatus() != SSLEngineResult.Status.BUFFER_OVERFLOW) {
                return r;
            }
            if (netOut.position() > 0) {
                flush();
            } else {
                netOut = grow(netOut, engine.getSession().getPacketBufferSize(), false);
            }
        }
    }

    private void flush() throws IOException {
        netOut.flip();
        try {
            FrameIo.writeFully(raw, netOut);
        } finally {
            netOut.compact();
        }
    }

    /** Sends close_notify: the orderly end of the TLS session. Nothing may be written after it. */
    @Override
    public void finishOutput() throws IOException {
        writeLock.lock();
        try {
            engine.closeOutbound();
            while (!engine.isOutboundDone()) {
                if (wrap(NOTHING).bytesProduced() == 0) {
                    break;
                }
            }
            flush();
        } finally {
            writeLock.unlock();
        }
    }

    /* ---------------- The socket ---------------- */

    @Override
    public void shutdownInput() throws IOException {
        raw.shutdownInput();
    }

    @Override
    public boolean isOpen() {
        return raw.isOpen();
    }

    /** Closes the socket at once (no close_notify: see {@link #finishOutput}). */
    @Override
    public void close() throws IOException {
        raw.close();
    }

    @Override
    public String toString() {
        return raw + " (TLS)";
    }
}
