package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * A hand-driven NBD client on a unix socket, for tests that send exactly the bytes they mean
 * (including malformed ones). Every read has a deadline, so a test never hangs on a server that
 * fails to answer.
 */
final class RawPeer implements AutoCloseable {
    static final Duration TIMEOUT = Duration.ofSeconds(10);

    private final SocketChannel channel;
    private final Selector selector;

    record OptionAnswer(int option, int type, byte[] data) {
        String text() {
            return new String(data, StandardCharsets.UTF_8);
        }
    }

    record Reply(int error, long handle) {
    }

    RawPeer(Path socket) throws IOException {
        channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        channel.connect(UnixDomainSocketAddress.of(socket));
        channel.configureBlocking(false);
        selector = Selector.open();
    }

    /* ---------------- raw bytes ---------------- */

    void send(ByteBuffer bytes) throws IOException {
        SelectionKey key = channel.register(selector, SelectionKey.OP_WRITE);
        try {
            long end = System.nanoTime() + TIMEOUT.toNanos();
            while (bytes.hasRemaining()) {
                if (channel.write(bytes) == 0) {
                    long left = end - System.nanoTime();
                    if (left <= 0) {
                        throw new IOException("send timed out");
                    }
                    selector.select(Math.max(1, left / 1_000_000));
                    selector.selectedKeys().clear();
                }
            }
        } finally {
            key.cancel();
            selector.selectNow();
        }
    }

    void send(byte[] bytes) throws IOException {
        send(ByteBuffer.wrap(bytes));
    }

    /** Reads exactly n bytes; EOFException if the server closes first, IOException on timeout. */
    byte[] read(int n) throws IOException {
        return read(n, TIMEOUT);
    }

    byte[] read(int n, Duration timeout) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(n);
        SelectionKey key = channel.register(selector, SelectionKey.OP_READ);
        try {
            long end = System.nanoTime() + timeout.toNanos();
            while (buffer.hasRemaining()) {
                int r = channel.read(buffer);
                if (r < 0) {
                    throw new EOFException("server closed after " + buffer.position() + " of " + n + " bytes");
                }
                if (r == 0) {
                    long left = end - System.nanoTime();
                    if (left <= 0) {
                        throw new IOException("read timed out after " + buffer.position() + " of " + n + " bytes");
                    }
                    selector.select(Math.max(1, left / 1_000_000));
                    selector.selectedKeys().clear();
                }
            }
            return buffer.array();
        } finally {
            key.cancel();
            selector.selectNow();
        }
    }

    /**
     * Whether the server closes the connection within {@code timeout}, discarding whatever it sends
     * first (at most 1 MiB). A reset counts as closed.
     */
    boolean closedWithin(Duration timeout) throws IOException {
        ByteBuffer sink = ByteBuffer.allocate(64 << 10);
        long total = 0;
        SelectionKey key = channel.register(selector, SelectionKey.OP_READ);
        try {
            long end = System.nanoTime() + timeout.toNanos();
            while (true) {
                sink.clear();
                int r;
                try {
                    r = channel.read(sink);
                } catch (IOException reset) {
                    return true;
                }
                if (r < 0) {
                    return true;
                }
                total += r;
                if (total > (1 << 20)) {
                    return false;
                }
                if (r == 0) {
                    long left = end - System.nanoTime();
                    if (left <= 0) {
                        return false;
                    }
                    selector.select(Math.max(1, left / 1_000_000));
                    selector.selectedKeys().clear();
                }
            }
        } finally {
            key.cancel();
            selector.selectNow();
        }
    }

    /** Nothing arrives within {@code quiet} (and the connection stays open). */
    boolean silentFor(Duration quiet) throws IOException {
        try {
            read(1, quiet);
            return false;
        } catch (EOFException e) {
            return false;
        } catch (IOException e) {
            return e.getMessage().startsWith("read timed out");
        }
    }

    /* ---------------- handshake ---------------- */

    /** Reads and checks the greeting; returns the handshake flags. */
    int greeting() throws IOException {
        ByteBuffer g = ByteBuffer.wrap(read(GREETING_SIZE));
        if (g.getLong() != NBD_MAGIC || g.getLong() != IHAVEOPT) {
            throw new IOException("bad greeting");
        }
        return Short.toUnsignedInt(g.getShort());
    }

    void clientFlags(int flags) throws IOException {
        send(ByteBuffer.allocate(4).putInt(flags).flip());
    }

    /** Greeting plus client flags (fixed newstyle, no zeroes). */
    RawPeer hello() throws IOException {
        greeting();
        clientFlags(CLIENT_FIXED_NEWSTYLE | CLIENT_NO_ZEROES);
        return this;
    }

    void option(int option, byte[] data) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(OPTION_HEADER_SIZE + data.length);
        new OptionRequest(option, data.length).encode(b);
        b.put(data);
        send(b.flip());
    }

    OptionAnswer optionAnswer() throws IOException {
        ByteBuffer h = ByteBuffer.wrap(read(OPTION_REPLY_HEADER_SIZE));
        OptionReply reply = OptionReply.decode(h);
        if (reply.length() > (1 << 20)) {
            throw new IOException("option reply too long: " + reply.length());
        }
        return new OptionAnswer(reply.option(), reply.type(), read((int) reply.length()));
    }

    static byte[] infoRequest(String name, int... infos) {
        InfoRequest r = new InfoRequest(name, infos);
        ByteBuffer b = ByteBuffer.allocate(r.encodedSize());
        r.encode(b);
        return b.array();
    }

    /** NBD_OPT_GO for {@code name}; returns {size, flags}, failing on an error reply. */
    long[] go(String name) throws IOException {
        option(OPT_GO, infoRequest(name));
        long size = -1;
        long flags = -1;
        while (true) {
            OptionAnswer a = optionAnswer();
            if (a.type() == REP_ACK) {
                return new long[] {size, flags};
            }
            if (a.type() != REP_INFO) {
                throw new IOException("GO answered " + replyTypeName(a.type()) + ": " + a.text());
            }
            ByteBuffer d = ByteBuffer.wrap(a.data());
            if (d.getShort() == INFO_EXPORT) {
                size = d.getLong();
                flags = Short.toUnsignedInt(d.getShort());
            }
        }
    }

    static byte[] metaContextRequest(String name, String... queries) {
        MetaContextRequest r = new MetaContextRequest(name, List.of(queries));
        ByteBuffer b = ByteBuffer.allocate(r.encodedSize());
        r.encode(b);
        return b.array();
    }

    /** NBD_OPT_STRUCTURED_REPLY, which must be acknowledged. */
    RawPeer structuredReplies() throws IOException {
        option(OPT_STRUCTURED_REPLY, new byte[0]);
        OptionAnswer a = optionAnswer();
        if (a.type() != REP_ACK) {
            throw new IOException("STRUCTURED_REPLY answered " + replyTypeName(a.type()) + ": " + a.text());
        }
        return this;
    }

    /** The answers to one LIST or SET_META_CONTEXT up to its ACK or error: context id to name (last: the final type). */
    java.util.Map<Integer, String> metaContexts(int option, String name, String... queries) throws IOException {
        option(option, metaContextRequest(name, queries));
        java.util.Map<Integer, String> contexts = new java.util.LinkedHashMap<>();
        while (true) {
            OptionAnswer a = optionAnswer();
            if (a.type() != REP_META_CONTEXT) {
                if (a.type() != REP_ACK) {
                    throw new IOException(replyTypeName(a.type()) + ": " + a.text());
                }
                return contexts;
            }
            ByteBuffer d = ByteBuffer.wrap(a.data());
            int id = d.getInt();
            contexts.put(id, new String(a.data(), 4, a.data().length - 4, java.nio.charset.StandardCharsets.UTF_8));
        }
    }

    /** A structured reply chunk. */
    record Chunk(int flags, int type, long handle, byte[] payload) {
        ByteBuffer data() {
            return ByteBuffer.wrap(payload);
        }

        /** An ERROR chunk's error number. */
        int error() {
            return data().getInt();
        }
    }

    Chunk chunk() throws IOException {
        StructuredReplyHeader h = StructuredReplyHeader.decode(ByteBuffer.wrap(read(STRUCTURED_REPLY_HEADER_SIZE)));
        if (h.length() > (64 << 20)) {
            throw new IOException("chunk too long: " + h.length());
        }
        return new Chunk(h.flags(), h.type(), h.handle(), read((int) h.length()));
    }

    /** Greeting, flags and GO: ready for requests. */
    RawPeer open(String name) throws IOException {
        hello();
        go(name);
        return this;
    }

    /* ---------------- transmission ---------------- */

    void request(int flags, int type, long handle, long offset, long length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(REQUEST_SIZE);
        new Request(flags, type, handle, offset, length).encode(b);
        send(b.flip());
    }

    void write(long handle, long offset, byte[] data) throws IOException {
        request(0, CMD_WRITE, handle, offset, data.length);
        send(data);
    }

    Reply reply() throws IOException {
        SimpleReply r = SimpleReply.decode(ByteBuffer.wrap(read(SIMPLE_REPLY_SIZE)));
        return new Reply(r.error(), r.handle());
    }

    @Override
    public void close() throws IOException {
        try {
            selector.close();
        } finally {
            channel.close();
        }
    }
}
