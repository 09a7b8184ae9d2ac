package dev.handoff.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;

/**
 * The transmission phase's input, on the connection's reader: each read from the transport takes
 * whatever the client has sent, up to {@link #CAPACITY} bytes, so a request's header and a small
 * payload arrive in one system call, and {@link #pending()} tells how many bytes of later requests
 * are already here. That is how the reader knows a client sent its next request without waiting
 * for a reply (ServerConnection, "Inline requests"). One thread only: the reader.
 */
final class ReadAhead implements ReadableByteChannel {
    /** The most one read takes from the transport; a read of at least this much goes straight in. */
    static final int CAPACITY = 64 << 10;

    private final ReadableByteChannel in;
    /** Between reads, position..limit are the bytes read from the transport and not yet taken. */
    private final ByteBuffer buffer;

    ReadAhead(ReadableByteChannel in) {
        this.in = in;
        this.buffer = ByteBuffer.allocateDirect(CAPACITY).limit(0);
    }

    /** Bytes read from the transport and not yet taken: the start of the client's next request. */
    int pending() {
        return buffer.remaining();
    }

    /**
     * Moves up to {@code dst.remaining()} bytes into {@code dst}: first the bytes already here; with
     * none, one read of the transport (into {@code dst} itself when it wants at least
     * {@link #CAPACITY} bytes, a large payload, else into the buffer). Returns -1 at end of stream.
     */
    @Override
    public int read(ByteBuffer dst) throws IOException {
        if (!buffer.hasRemaining()) {
            if (dst.remaining() >= CAPACITY) {
                return in.read(dst);
            }
            buffer.clear();
            int n;
            try {
                n = in.read(buffer);
            } finally {
                buffer.flip();
            }
            if (n <= 0) {
                return n;
            }
        }
        int n = Math.min(buffer.remaining(), dst.remaining());
        int limit = buffer.limit();
        buffer.limit(buffer.position() + n);
        dst.put(buffer);
        buffer.limit(limit);
        return n;
    }

    @Override
    public boolean isOpen() {
        return in.isOpen();
    }

    /** Nothing to release: the connection closes its transport itself. */
    @Override
    public void close() {
    }
}
