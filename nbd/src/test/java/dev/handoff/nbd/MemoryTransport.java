package dev.handoff.nbd;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;

/**
 * An in-memory transport: reads come from a fixed byte array (then end of stream), writes are
 * collected. Never blocks, so a connection driven over it always runs to its end.
 */
final class MemoryTransport implements Transport {
    private final byte[] input;
    private int position;
    private final ByteArrayOutputStream output = new ByteArrayOutputStream();
    private volatile boolean closed;
    private volatile boolean inputShut;

    MemoryTransport(byte[] input) {
        this.input = input;
    }

    @Override
    public synchronized int read(ByteBuffer dst) throws ClosedChannelException {
        if (closed) {
            throw new ClosedChannelException();
        }
        if (inputShut || position >= input.length) {
            return -1;
        }
        int n = Math.min(dst.remaining(), input.length - position);
        dst.put(input, position, n);
        position += n;
        return n;
    }

    @Override
    public int write(ByteBuffer src) throws ClosedChannelException {
        if (closed) {
            throw new ClosedChannelException();
        }
        int n = src.remaining();
        byte[] bytes = new byte[n];
        src.get(bytes);
        synchronized (output) {
            output.write(bytes, 0, n);
        }
        return n;
    }

    @Override
    public void shutdownInput() {
        inputShut = true;
    }

    @Override
    public boolean isOpen() {
        return !closed;
    }

    @Override
    public void close() {
        closed = true;
    }

    byte[] written() {
        synchronized (output) {
            return output.toByteArray();
        }
    }
}
