package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;

import dev.handoff.device.DeviceException;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The client's side of the handshake: fixed newstyle with {@code NBD_OPT_GO}, falling back to
 * {@code NBD_OPT_EXPORT_NAME} for servers that do not know GO or do not speak fixed newstyle.
 *
 * <p>Everything the server sends is checked: magic numbers, the option each reply echoes, reply
 * lengths (at most 64 KiB, read only after the check), info payload sizes, the export size (at
 * most 2^63 - 1) and the number of replies. A server that fails a check gets a
 * {@link ProtocolViolation}; a server that answers GO with an error gets a {@link DeviceException}
 * carrying its message.
 */
final class ClientHandshake {
    /** GO replies accepted before the final one: far more than the few infos a server sends. */
    private static final int MAX_REPLIES = 64;

    /** What the handshake agreed on. */
    record Negotiated(long size, int flags, int minBlock, int preferredBlock, int maxBlock) {
    }

    private ClientHandshake() {
    }

    /** Runs the handshake for export {@code name} on a fresh connection. */
    static Negotiated negotiate(Transport transport, String name) throws IOException {
        return negotiate(transport, name, ByteBuffer::allocate);
    }

    /** As above; every buffer whose size came from the wire is allocated by {@code allocator}. */
    static Negotiated negotiate(Transport transport, String name, java.util.function.IntFunction<ByteBuffer> allocator)
            throws IOException {
        ByteBuffer greeting = ByteBuffer.allocate(GREETING_SIZE);
        readFully(transport, greeting);
        greeting.flip();
        long magic = greeting.getLong();
        if (magic != NBD_MAGIC) {
            throw new ProtocolViolation("not an NBD server: greeting starts with 0x" + Long.toHexString(magic));
        }
        long style = greeting.getLong();
        if (style == OLDSTYLE_MAGIC) {
            throw new ProtocolViolation("the server speaks the oldstyle handshake, which is not supported");
        }
        if (style != IHAVEOPT) {
            throw new ProtocolViolation("bad newstyle magic 0x" + Long.toHexString(style));
        }
        int serverFlags = Short.toUnsignedInt(greeting.getShort());
        boolean fixed = (serverFlags & FLAG_FIXED_NEWSTYLE) != 0;
        boolean noZeroes = (serverFlags & FLAG_NO_ZEROES) != 0;
        int clientFlags = (fixed ? CLIENT_FIXED_NEWSTYLE : 0) | (noZeroes ? CLIENT_NO_ZEROES : 0);
        FrameIo.writeFully(transport, ByteBuffer.allocate(4).putInt(clientFlags).flip());

        if (fixed) {
            Negotiated viaGo = go(transport, name, allocator);
            if (viaGo != null) {
                return viaGo;
            }
        }
        return exportName(transport, name, noZeroes);
    }

    /** NBD_OPT_GO; null if the server does not support it. */
    private static Negotiated go(Transport transport, String name, java.util.function.IntFunction<ByteBuffer> allocator)
            throws IOException {
        InfoRequest request = new InfoRequest(name, new int[] {INFO_BLOCK_SIZE});
        ByteBuffer out = ByteBuffer.allocate(OPTION_HEADER_SIZE + request.encodedSize());
        new OptionRequest(OPT_GO, request.encodedSize()).encode(out);
        request.encode(out);
        FrameIo.writeFully(transport, out.flip());

        long size = -1;
        int flags = 0;
        int min = 1;
        int preferred = 4096;
        int max = 0;
        ByteBuffer header = ByteBuffer.allocate(OPTION_REPLY_HEADER_SIZE);
        for (int i = 0; i < MAX_REPLIES; i++) {
            header.clear();
            readFully(transport, header);
            OptionReply reply = OptionReply.decode(header.flip());
            if (reply.option() != OPT_GO) {
                throw new ProtocolViolation("reply to option " + reply.option() + " while waiting for NBD_OPT_GO");
            }
            if (reply.length() > MAX_OPTION_REPLY_DATA) {
                throw new ProtocolViolation("option reply of " + reply.length() + " bytes, more than "
                        + MAX_OPTION_REPLY_DATA);
            }
            ByteBuffer data = allocator.apply((int) Math.min(reply.length(), Integer.MAX_VALUE));
            readFully(transport, data);
            data.flip();
            if (reply.isError()) {
                if (reply.type() == REP_ERR_UNSUP) {
                    return null;
                }
                String message = message(data);
                throw new DeviceException(DeviceException.Kind.IO_ERROR, "the server refused export '" + name + "': "
                        + replyTypeName(reply.type()) + (message.isEmpty() ? "" : " (" + message + ")"));
            }
            switch (reply.type()) {
                case REP_ACK -> {
                    if (size < 0) {
                        throw new ProtocolViolation("NBD_OPT_GO acknowledged without the export's size");
                    }
                    return new Negotiated(size, flags, min, preferred, max);
                }
                case REP_INFO -> {
                    if (data.remaining() < 2) {
                        throw new ProtocolViolation("NBD_REP_INFO of " + data.remaining() + " bytes");
                    }
                    int type = Short.toUnsignedInt(data.getShort());
                    if (type == INFO_EXPORT) {
                        expectInfo(data, 10, "NBD_INFO_EXPORT");
                        size = data.getLong();
                        if (size < 0) {
                            throw new ProtocolViolation("export size " + Long.toUnsignedString(size) + " is too large");
                        }
                        flags = Short.toUnsignedInt(data.getShort());
                    } else if (type == INFO_BLOCK_SIZE) {
                        expectInfo(data, 12, "NBD_INFO_BLOCK_SIZE");
                        min = data.getInt();
                        preferred = data.getInt();
                        max = data.getInt();
                        if (min < 1 || Integer.bitCount(min) != 1 || min > (64 << 10)
                                || (max != 0 && Integer.compareUnsigned(max, min) < 0)) {
                            throw new ProtocolViolation("inconsistent block sizes " + min + "/" + preferred + "/" + max);
                        }
                    }
                    // Other information (name, description, unknown types) is not needed.
                }
                default -> throw new ProtocolViolation("unexpected " + replyTypeName(reply.type()) + " to NBD_OPT_GO");
            }
        }
        throw new ProtocolViolation("more than " + MAX_REPLIES + " replies to NBD_OPT_GO");
    }

    /** NBD_OPT_EXPORT_NAME: the old way in, with no error reply (an unknown export closes the connection). */
    private static Negotiated exportName(Transport transport, String name, boolean noZeroes) throws IOException {
        byte[] bytes = utf8(name);
        ByteBuffer out = ByteBuffer.allocate(OPTION_HEADER_SIZE + bytes.length);
        new OptionRequest(OPT_EXPORT_NAME, bytes.length).encode(out);
        out.put(bytes);
        FrameIo.writeFully(transport, out.flip());
        ByteBuffer reply = ByteBuffer.allocate(10 + (noZeroes ? 0 : EXPORT_NAME_REPLY_ZEROES));
        try {
            FrameIo.readFully(transport, reply);
        } catch (EOFException e) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR,
                    "the server closed the connection: no export named '" + name + "'?", e);
        }
        reply.flip();
        long size = reply.getLong();
        if (size < 0) {
            throw new ProtocolViolation("export size " + Long.toUnsignedString(size) + " is too large");
        }
        return new Negotiated(size, Short.toUnsignedInt(reply.getShort()), 1, 4096, 0);
    }

    private static void expectInfo(ByteBuffer data, int size, String what) throws ProtocolViolation {
        if (data.remaining() != size) {
            throw new ProtocolViolation(what + " with " + data.remaining() + " bytes of data, expected " + size);
        }
    }

    private static void readFully(Transport transport, ByteBuffer buffer) throws IOException {
        try {
            FrameIo.readFully(transport, buffer);
        } catch (EOFException e) {
            throw new EOFException("the server closed the connection during the handshake");
        }
    }

    /** A server's error message, made safe to print: at most 1024 characters, no control characters. */
    static String message(ByteBuffer data) {
        String s = StandardCharsets.UTF_8.decode(data.slice(data.position(), Math.min(data.remaining(), 4096))).toString();
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < s.length() && out.length() < 1024; i++) {
            char c = s.charAt(i);
            out.append(Character.isISOControl(c) ? '?' : c);
        }
        return out.toString();
    }
}
