package dev.handoff.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.SocketChannel;

/**
 * The byte stream a connection runs on: a blocking socket in production, an in-memory stream in
 * the fuzz and robustness tests. Reads come from one thread at a time and writes from one thread
 * at a time (the connection serializes them); a read and a write may run at once.
 */
interface Transport extends ByteChannel {

    /**
     * Ends the input side: a read blocked now or started later sees end of stream. Used to stop a
     * connection gracefully (in-flight requests still get their replies).
     */
    void shutdownInput() throws IOException;

    /** Writes all of {@code header} and then all of {@code data} ({@code data} may be null). */
    default void writeFully(ByteBuffer header, ByteBuffer data) throws IOException {
        FrameIo.writeFully(this, header);
        if (data != null) {
            FrameIo.writeFully(this, data);
        }
    }

    /** A transport over a connected blocking socket channel (TCP or unix). */
    static Transport of(SocketChannel channel) {
        return new SocketTransport(channel);
    }

    /** Socket channels gather a reply header and its data into one system call. */
    final class SocketTransport implements Transport {
        private final SocketChannel channel;

        SocketTransport(SocketChannel channel) {
            this.channel = channel;
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            return channel.read(dst);
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            return channel.write(src);
        }

        @Override
        public void writeFully(ByteBuffer header, ByteBuffer data) throws IOException {
            if (data == null) {
                FrameIo.writeFully(channel, header);
                return;
            }
            ByteBuffer[] both = {header, data};
            GatheringByteChannel gathering = channel;
            while (header.hasRemaining() || data.hasRemaining()) {
                gathering.write(both);
            }
        }

        @Override
        public void shutdownInput() throws IOException {
            channel.shutdownInput();
        }

        @Override
        public boolean isOpen() {
            return channel.isOpen();
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }

        @Override
        public String toString() {
            try {
                return String.valueOf(channel.getRemoteAddress());
            } catch (IOException e) {
                return "closed socket";
            }
        }
    }
}
