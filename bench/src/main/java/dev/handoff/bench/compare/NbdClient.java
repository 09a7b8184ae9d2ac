package dev.handoff.bench.compare;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * The smallest NBD client the writer needs, written against the protocol document rather than
 * either server: fixed newstyle handshake, {@code NBD_OPT_GO}, simple replies, one request at a
 * time (queue depth 1). Kept independent of Handoff's own NBD code so that the same bytes go to
 * QEMU's export and to Handoff's.
 */
final class NbdClient implements AutoCloseable {
    private static final long NBD_MAGIC = 0x4e42444d41474943L;      // "NBDMAGIC"
    private static final long IHAVEOPT = 0x49484156454F5054L;       // "IHAVEOPT"
    private static final long OPTION_REPLY_MAGIC = 0x0003e889045565a9L;
    private static final int REQUEST_MAGIC = 0x25609513;
    private static final int SIMPLE_REPLY_MAGIC = 0x67446698;
    private static final int FLAG_FIXED_NEWSTYLE = 1;
    private static final int FLAG_NO_ZEROES = 2;
    private static final int OPT_GO = 7;
    private static final int REP_ACK = 1;
    private static final int REP_INFO = 3;
    private static final int INFO_EXPORT = 0;
    private static final short CMD_WRITE = 1;
    private static final short CMD_DISC = 2;
    private static final short CMD_FLUSH = 3;

    private final SocketChannel channel;
    private final long size;
    private final ByteBuffer header = ByteBuffer.allocateDirect(28);
    private final ByteBuffer reply = ByteBuffer.allocateDirect(16);
    private final ByteBuffer[] request = new ByteBuffer[2];
    private long cookie;

    private NbdClient(SocketChannel channel, long size) {
        this.channel = channel;
        this.size = size;
        this.request[0] = header;
    }

    /** Connects to export {@code name} on the unix socket {@code socket}. */
    static NbdClient connect(Path socket, String name) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
            ByteBuffer greeting = readFully(ch, 18);
            if (greeting.getLong(0) != NBD_MAGIC || greeting.getLong(8) != IHAVEOPT) {
                throw new IOException("not a fixed newstyle NBD server at " + socket);
            }
            int serverFlags = greeting.getShort(16) & 0xffff;
            if ((serverFlags & FLAG_FIXED_NEWSTYLE) == 0) {
                throw new IOException("server lacks fixed newstyle negotiation");
            }
            boolean noZeroes = (serverFlags & FLAG_NO_ZEROES) != 0;
            writeFully(ch, ByteBuffer.allocate(4).putInt(FLAG_FIXED_NEWSTYLE | (noZeroes ? FLAG_NO_ZEROES : 0)).flip());

            byte[] exportName = name.getBytes(StandardCharsets.UTF_8);
            ByteBuffer go = ByteBuffer.allocate(16 + 4 + exportName.length + 2);
            go.putLong(IHAVEOPT).putInt(OPT_GO).putInt(4 + exportName.length + 2)
                    .putInt(exportName.length).put(exportName).putShort((short) 0).flip();
            writeFully(ch, go);
            long size = -1;
            while (true) {
                ByteBuffer head = readFully(ch, 20);
                if (head.getLong(0) != OPTION_REPLY_MAGIC) {
                    throw new IOException("bad option reply magic");
                }
                int type = head.getInt(12);
                int length = head.getInt(16);
                ByteBuffer data = readFully(ch, length);
                if (type == REP_ACK) {
                    break;
                }
                if (type < 0) {
                    throw new IOException("NBD_OPT_GO refused (reply type 0x" + Integer.toHexString(type) + "): "
                            + StandardCharsets.UTF_8.decode(data));
                }
                if (type == REP_INFO && length >= 12 && data.getShort(0) == INFO_EXPORT) {
                    size = data.getLong(2);
                }
            }
            if (size < 0) {
                throw new IOException("server sent no export size");
            }
            return new NbdClient(ch, size);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    long size() {
        return size;
    }

    /** Writes {@code data} at {@code offset} and waits for the reply. */
    void write(long offset, ByteBuffer data) throws IOException {
        send(CMD_WRITE, offset, data.remaining(), data);
        awaitReply();
    }

    void flush() throws IOException {
        send(CMD_FLUSH, 0, 0, null);
        awaitReply();
    }

    /** Sends NBD_CMD_DISC and closes. */
    @Override
    public void close() throws IOException {
        try {
            if (channel.isOpen()) {
                send(CMD_DISC, 0, 0, null);
            }
        } finally {
            channel.close();
        }
    }

    private void send(short type, long offset, int length, ByteBuffer data) throws IOException {
        header.clear();
        header.putInt(REQUEST_MAGIC).putShort((short) 0).putShort(type).putLong(++cookie).putLong(offset).putInt(length)
                .flip();
        if (data == null) {
            writeFully(channel, header);
            return;
        }
        request[1] = data;
        while (data.hasRemaining()) {
            channel.write(request);
        }
        request[1] = null;
    }

    private void awaitReply() throws IOException {
        reply.clear();
        while (reply.hasRemaining()) {
            if (channel.read(reply) < 0) {
                throw new EOFException("NBD server closed the connection");
            }
        }
        if (reply.getInt(0) != SIMPLE_REPLY_MAGIC) {
            throw new IOException("bad reply magic 0x" + Integer.toHexString(reply.getInt(0)));
        }
        if (reply.getLong(8) != cookie) {
            throw new IOException("reply to cookie " + reply.getLong(8) + ", expected " + cookie);
        }
        int error = reply.getInt(4);
        if (error != 0) {
            throw new IOException("NBD error " + error + " on request " + cookie);
        }
    }

    private static ByteBuffer readFully(SocketChannel ch, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new EOFException("NBD server closed the connection during the handshake");
            }
        }
        return b.flip();
    }

    private static void writeFully(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }
}
