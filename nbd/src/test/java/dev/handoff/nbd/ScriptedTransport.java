package dev.handoff.nbd;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ClosedChannelException;
import java.util.List;

/**
 * A server's side of a client test, in memory: a list of byte segments the "server" sends.
 * Segment {@code i} becomes readable once the client has written {@code i} frames (each
 * {@code writeFully} is one frame), so replies never arrive before their requests. Reads block
 * until their segment is released or the transport is closed; after the last segment, end of
 * stream. During the handshake (no frame written yet) only segment 0 is readable, then end of
 * stream, since nothing the client does would release more.
 */
final class ScriptedTransport implements Transport {
    private final List<byte[]> segments;
    private final ByteArrayOutputStream written = new ByteArrayOutputStream();
    private int segment;
    private int position;
    private int frames;
    private boolean closed;

    ScriptedTransport(List<byte[]> segments) {
        this.segments = segments;
    }

    @Override
    public synchronized int read(ByteBuffer dst) throws java.io.IOException {
        while (true) {
            if (closed) {
                throw new AsynchronousCloseException();
            }
            if (segment >= segments.size()) {
                return -1;
            }
            byte[] current = segments.get(segment);
            if (position >= current.length) {
                segment++;
                position = 0;
                continue;
            }
            if (segment > frames) {
                if (frames == 0) {
                    return -1; // still in the handshake: the client will not write a frame to release more
                }
                try {
                    wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new java.nio.channels.ClosedByInterruptException();
                }
                continue;
            }
            int n = Math.min(dst.remaining(), current.length - position);
            dst.put(current, position, n);
            position += n;
            return n;
        }
    }

    @Override
    public synchronized int write(ByteBuffer src) throws ClosedChannelException {
        if (closed) {
            throw new ClosedChannelException();
        }
        int n = src.remaining();
        byte[] b = new byte[n];
        src.get(b);
        written.write(b, 0, n);
        return n;
    }

    @Override
    public void writeFully(ByteBuffer header, ByteBuffer data) throws java.io.IOException {
        synchronized (this) {
            FrameIo.writeFully(this, header);
            if (data != null) {
                FrameIo.writeFully(this, data);
            }
            frames++;
            notifyAll();
        }
    }

    /** Everything the client wrote. */
    synchronized byte[] written() {
        return written.toByteArray();
    }

    @Override
    public synchronized void shutdownInput() {
        segment = segments.size();
        notifyAll();
    }

    @Override
    public synchronized boolean isOpen() {
        return !closed;
    }

    @Override
    public synchronized void close() {
        closed = true;
        notifyAll();
    }
}
