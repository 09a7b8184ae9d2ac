package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * A scripted NBD server on a unix socket for client tests: it accepts one connection and runs the
 * script on it in its own thread. Closing stops the script (by closing its socket) and waits for
 * it; a script failure other than a closed socket is rethrown by {@link #result()}.
 */
final class FakeServer implements AutoCloseable {
    interface Script {
        void run(Side side) throws Exception;
    }

    private final Path dir;
    private final ServerSocketChannel listener;
    private final Thread thread;
    private final CompletableFuture<Void> done = new CompletableFuture<>();
    private volatile SocketChannel socket;

    FakeServer(Script script) throws IOException {
        dir = Sockets.newDirectory();
        listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        listener.bind(UnixDomainSocketAddress.of(dir.resolve("s")));
        thread = new Thread(() -> {
            try (SocketChannel s = listener.accept()) {
                socket = s;
                script.run(new Side(s));
                done.complete(null);
            } catch (Throwable e) {
                done.completeExceptionally(e);
            }
        }, "fake-nbd-server");
        thread.setDaemon(true);
        thread.start();
    }

    NbdUri uri() {
        return new NbdUri(NbdAddress.unix(dir.resolve("s")), "disk");
    }

    /** Waits for the script to finish and rethrows its failure. */
    void result() throws Exception {
        try {
            done.get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof Exception x) {
                throw x;
            }
            throw e;
        }
    }

    @Override
    public void close() throws IOException {
        SocketChannel s = socket;
        if (s != null) {
            s.close();
        }
        listener.close();
        thread.interrupt(); // a script waiting on a latch
        try {
            thread.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        Sockets.deleteTree(dir);
    }

    /** The server's end of the connection, with the NBD steps scripts need. */
    static final class Side {
        final SocketChannel channel;

        Side(SocketChannel channel) {
            this.channel = channel;
        }

        void send(byte[] bytes) throws IOException {
            FrameIo.writeFully(channel, ByteBuffer.wrap(bytes));
        }

        void send(ByteBuffer bytes) throws IOException {
            FrameIo.writeFully(channel, bytes);
        }

        byte[] read(int n) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(n);
            FrameIo.readFully(channel, b);
            return b.array();
        }

        void greeting() throws IOException {
            send(ByteBuffer.allocate(GREETING_SIZE).putLong(NBD_MAGIC).putLong(IHAVEOPT)
                    .putShort((short) (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)).flip());
            read(4);
        }

        OptionRequest option() throws IOException {
            OptionRequest o = OptionRequest.decode(ByteBuffer.wrap(read(OPTION_HEADER_SIZE)));
            read((int) o.length());
            return o;
        }

        void optionReply(int option, int type, byte[] data) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(OPTION_REPLY_HEADER_SIZE + data.length);
            new OptionReply(option, type, data.length).encode(b);
            send(b.put(data).flip());
        }

        /** Greeting, flags and a successful GO for an export of {@code size} bytes. */
        void acceptGo(long size, int flags) throws IOException {
            greeting();
            OptionRequest o = option();
            if (o.option() != OPT_GO) {
                throw new IOException("expected GO, got " + o.option());
            }
            optionReply(OPT_GO, REP_INFO, ByteBuffer.allocate(12).putShort((short) INFO_EXPORT).putLong(size)
                    .putShort((short) flags).array());
            optionReply(OPT_GO, REP_ACK, new byte[0]);
        }

        void acceptGo(long size) throws IOException {
            acceptGo(size, TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH | TFLAG_SEND_FUA | TFLAG_SEND_TRIM
                    | TFLAG_SEND_WRITE_ZEROES);
        }

        /** Reads one request header, and a WRITE's payload (discarded). */
        Request request() throws IOException {
            Request r = Request.decode(ByteBuffer.wrap(read(REQUEST_SIZE)));
            if (r.type() == CMD_WRITE) {
                read((int) r.length());
            }
            return r;
        }

        void reply(int error, long handle) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(SIMPLE_REPLY_SIZE);
            new SimpleReply(error, handle).encode(b);
            send(b.flip());
        }
    }
}
