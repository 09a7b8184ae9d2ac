package dev.handoff.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.SocketChannel;

/**
 * The byte stream a connection runs on: a blocking socket in production (possibly upgraded to
 * TLS, {@link TlsTransport}), an in-memory stream in the fuzz and robustness tests. Reads come from one thread at a time and writes from one thread
 * at a time (the connection serializes them); a read and a write may run at once.
 */
interface Transport extends ByteChannel {

    /**
     * Ends the input side: a read blocked now or started later sees end of stream. Used to stop a
     * connection gracefully (in-flight requests still get their replies).
     */
    void shutdownInput() throws IOException;

    /**
     * Ends the output side in order before a close: TLS sends its close_notify; a plain stream has
     * nothing to send. Nothing may be written after it.
     */
    default void finishOutput() throws IOException {
    }

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

        /** The peer: its address over TCP; over a unix socket, the user it runs as. */
        @Override
        public String toString() {
            try {
                java.net.SocketAddress remote = channel.getRemoteAddress();
                if (remote instanceof java.net.InetSocketAddress inet) {
                    String host = inet.getAddress() != null ? inet.getAddress().getHostAddress() : inet.getHostString();
                    return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + inet.getPort();
                }
                try {
                    var peer = channel.getOption(jdk.net.ExtendedSocketOptions.SO_PEERCRED);
                    return "local client (user " + peer.user().getName() + ")";
                } catch (IOException | UnsupportedOperationException e) {
                    return "local client";
                }
            } catch (IOException e) {
                return "closed socket";
            }
        }
    }
}
