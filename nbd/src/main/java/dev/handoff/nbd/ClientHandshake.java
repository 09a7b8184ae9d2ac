package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;

import dev.handoff.device.DeviceException;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import javax.net.ssl.SSLException;

/**
 * The client's side of the handshake: fixed newstyle with {@code NBD_OPT_GO}, falling back to
 * {@code NBD_OPT_EXPORT_NAME} for servers that do not know GO or do not speak fixed newstyle.
 *
 * <p>With TLS (DESIGN §7.4), {@code NBD_OPT_STARTTLS} is the first option, as the protocol
 * advises a client that requires TLS, so that nothing (not even the export's name) is sent in
 * plain text. A server that does not acknowledge it is left (after {@code NBD_OPT_ABORT}): the
 * client never continues without TLS, which is what defeats a downgrade by a man in the middle.
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

    /**
     * What the handshake agreed on, and the transport to go on with (TLS if it was started);
     * {@code structured}: structured replies were negotiated; {@code allocationContext}: the id the
     * server gave base:allocation, or -1 if it was not selected.
     */
    record Negotiated(Transport transport, long size, int flags, int minBlock, int preferredBlock, int maxBlock,
                      boolean structured, long allocationContext) {
        Negotiated(Transport transport, long size, int flags, int minBlock, int preferredBlock, int maxBlock) {
            this(transport, size, flags, minBlock, preferredBlock, maxBlock, false, -1);
        }

        Negotiated with(boolean structured, long allocationContext) {
            return new Negotiated(transport, size, flags, minBlock, preferredBlock, maxBlock, structured,
                    allocationContext);
        }
    }

    private ClientHandshake() {
    }

    /** Runs the handshake for export {@code name} on a fresh connection. */
    static Negotiated negotiate(Transport transport, String name) throws IOException {
        return negotiate(transport, name, ByteBuffer::allocate, null);
    }

    /**
     * As above, upgrading to TLS first unless {@code tls} is null; every buffer whose size came
     * from the wire is allocated by {@code allocator}.
     */
    static Negotiated negotiate(Transport transport, String name, java.util.function.IntFunction<ByteBuffer> allocator,
                                ClientTls tls) throws IOException {
        return negotiate(transport, name, allocator, tls, false);
    }

    /**
     * As above; with {@code allocation}, structured replies and the base:allocation meta context
     * are asked for first (a server that declines either is used without them).
     */
    static Negotiated negotiate(Transport transport, String name, java.util.function.IntFunction<ByteBuffer> allocator,
                                ClientTls tls, boolean allocation) throws IOException {
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

        if (tls == null) {
            return choose(transport, name, allocator, fixed, noZeroes, allocation);
        }
        if (!fixed) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR, "the server does not speak fixed newstyle"
                    + " negotiation, so it cannot start TLS; refusing to continue in plain text");
        }
        Transport secured = startTls(transport, allocator, tls);
        try {
            return choose(secured, name, allocator, true, noZeroes, allocation);
        } catch (SSLException e) {
            // TLS 1.3: a server that refuses our certificate says so after our side of the handshake ended.
            throw new DeviceException(DeviceException.Kind.IO_ERROR, TlsFailure.seenByClient(e, tls.hostname(),
                    tls.caFile()), e);
        } catch (ProtocolViolation | DeviceException e) {
            throw e;
        } catch (EOFException e) {
            // QEMU checks its tls-authz list after the handshake and closes without an alert.
            throw new DeviceException(DeviceException.Kind.IO_ERROR, "the server ended the TLS session without"
                    + " answering: it may not accept this client's certificate (not on its tls-authz list?)", e);
        } catch (IOException e) {
            // Our option may have met a socket the server already closed after its alert: read the alert.
            SSLException alert = pendingAlert(secured);
            if (alert == null) {
                throw e;
            }
            throw new DeviceException(DeviceException.Kind.IO_ERROR, TlsFailure.seenByClient(alert, tls.hostname(),
                    tls.caFile()), alert);
        }
    }

    /** After a failed write to a server that hung up: the alert it sent before, if any. */
    private static SSLException pendingAlert(Transport secured) {
        try {
            secured.read(ByteBuffer.allocate(1));
            return null;
        } catch (SSLException e) {
            return e;
        } catch (IOException e) {
            return null;
        }
    }

    private static Negotiated choose(Transport transport, String name,
                                     java.util.function.IntFunction<ByteBuffer> allocator, boolean fixed,
                                     boolean noZeroes, boolean allocation) throws IOException {
        boolean structured = false;
        long context = -1;
        if (fixed && allocation) {
            structured = structuredReplies(transport, allocator);
            if (structured) {
                context = allocationContext(transport, name, allocator);
            }
        }
        if (fixed) {
            Negotiated viaGo = go(transport, name, allocator);
            if (viaGo != null) {
                return viaGo.with(structured, context);
            }
        }
        return exportName(transport, name, noZeroes).with(structured, context);
    }

    /** NBD_OPT_STRUCTURED_REPLY: true if acknowledged, false if refused with an error. */
    private static boolean structuredReplies(Transport transport, java.util.function.IntFunction<ByteBuffer> allocator)
            throws IOException {
        sendOption(transport, OPT_STRUCTURED_REPLY, new byte[0]);
        OptionAnswer answer = answer(transport, OPT_STRUCTURED_REPLY, allocator);
        if (answer.type() == REP_ACK && !answer.data().hasRemaining()) {
            return true;
        }
        if (answer.isError()) {
            return false;
        }
        throw new ProtocolViolation("unexpected " + replyTypeName(answer.type()) + " to NBD_OPT_STRUCTURED_REPLY");
    }

    /** NBD_OPT_SET_META_CONTEXT for base:allocation: the context's id, or -1 if the server did not select it. */
    private static long allocationContext(Transport transport, String name,
                                          java.util.function.IntFunction<ByteBuffer> allocator) throws IOException {
        MetaContextRequest request = new MetaContextRequest(name, List.of(BASE_ALLOCATION));
        ByteBuffer data = ByteBuffer.allocate(request.encodedSize());
        request.encode(data);
        sendOption(transport, OPT_SET_META_CONTEXT, data.array());
        long context = -1;
        for (int i = 0; i < MAX_REPLIES; i++) {
            OptionAnswer answer = answer(transport, OPT_SET_META_CONTEXT, allocator);
            if (answer.isError()) {
                return -1; // used without block status
            }
            switch (answer.type()) {
                case REP_ACK -> {
                    return context;
                }
                case REP_META_CONTEXT -> {
                    ByteBuffer d = answer.data();
                    if (d.remaining() < 4) {
                        throw new ProtocolViolation("NBD_REP_META_CONTEXT of " + d.remaining() + " bytes");
                    }
                    long id = Integer.toUnsignedLong(d.getInt());
                    String contextName = decodeString(d, d.remaining(), "meta context name");
                    if (!contextName.equals(BASE_ALLOCATION) || context >= 0) {
                        throw new ProtocolViolation("the server selected meta context '" + contextName + "' (asked for "
                                + BASE_ALLOCATION + " once)");
                    }
                    context = id;
                }
                default -> throw new ProtocolViolation("unexpected " + replyTypeName(answer.type())
                        + " to NBD_OPT_SET_META_CONTEXT");
            }
        }
        throw new ProtocolViolation("more than " + MAX_REPLIES + " replies to NBD_OPT_SET_META_CONTEXT");
    }

    private record OptionAnswer(int type, ByteBuffer data) {
        boolean isError() {
            return (type & REP_ERROR_BIT) != 0;
        }
    }

    private static void sendOption(Transport transport, int option, byte[] data) throws IOException {
        ByteBuffer out = ByteBuffer.allocate(OPTION_HEADER_SIZE + data.length);
        new OptionRequest(option, data.length).encode(out);
        FrameIo.writeFully(transport, out.put(data).flip());
    }

    /** One option reply to {@code option}, its data read only after its length was checked. */
    private static OptionAnswer answer(Transport transport, int option,
                                       java.util.function.IntFunction<ByteBuffer> allocator) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(OPTION_REPLY_HEADER_SIZE);
        readFully(transport, header);
        OptionReply reply = OptionReply.decode(header.flip());
        if (reply.option() != option) {
            throw new ProtocolViolation("reply to option " + reply.option() + " while waiting for option " + option);
        }
        if (reply.length() > MAX_OPTION_REPLY_DATA) {
            throw new ProtocolViolation("option reply of " + reply.length() + " bytes, more than " + MAX_OPTION_REPLY_DATA);
        }
        ByteBuffer data = allocator.apply((int) reply.length());
        readFully(transport, data);
        return new OptionAnswer(reply.type(), data.flip());
    }

    /**
     * Sends NBD_OPT_STARTTLS and runs the TLS handshake on its acknowledgement. Any other answer
     * ends the session: the client wanted TLS and will not go on without it.
     */
    private static Transport startTls(Transport transport, java.util.function.IntFunction<ByteBuffer> allocator,
                                      ClientTls tls) throws IOException {
        ByteBuffer out = ByteBuffer.allocate(OPTION_HEADER_SIZE);
        new OptionRequest(OPT_STARTTLS, 0).encode(out);
        FrameIo.writeFully(transport, out.flip());
        ByteBuffer header = ByteBuffer.allocate(OPTION_REPLY_HEADER_SIZE);
        readFully(transport, header);
        OptionReply reply = OptionReply.decode(header.flip());
        if (reply.option() != OPT_STARTTLS) {
            throw new ProtocolViolation("reply to option " + reply.option() + " while waiting for NBD_OPT_STARTTLS");
        }
        if (reply.length() > MAX_OPTION_REPLY_DATA) {
            throw new ProtocolViolation("option reply of " + reply.length() + " bytes, more than " + MAX_OPTION_REPLY_DATA);
        }
        ByteBuffer data = allocator.apply((int) reply.length());
        readFully(transport, data);
        data.flip();
        if (reply.type() != REP_ACK) {
            if (!reply.isError()) {
                throw new ProtocolViolation("unexpected " + replyTypeName(reply.type()) + " to NBD_OPT_STARTTLS");
            }
            abort(transport);
            String message = message(data);
            throw new DeviceException(DeviceException.Kind.IO_ERROR, "the server does not offer TLS: it answered"
                    + " NBD_OPT_STARTTLS with " + replyTypeName(reply.type()) + (message.isEmpty() ? "" : " (" + message
                    + ")") + "; refusing to continue in plain text");
        }
        if (data.hasRemaining()) {
            throw new ProtocolViolation("NBD_OPT_STARTTLS acknowledged with " + data.remaining() + " bytes of data");
        }
        try {
            return TlsTransport.handshake(transport, tls.newEngine());
        } catch (SSLException e) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR, TlsFailure.seenByClient(e, tls.hostname(),
                    tls.caFile()), e);
        }
    }

    /** NBD_OPT_ABORT, the soft way out of a negotiation; the server may close without answering. */
    private static void abort(Transport transport) {
        try {
            ByteBuffer out = ByteBuffer.allocate(OPTION_HEADER_SIZE);
            new OptionRequest(OPT_ABORT, 0).encode(out);
            FrameIo.writeFully(transport, out.flip());
        } catch (IOException e) {
            // leaving anyway
        }
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
                if (reply.type() == REP_ERR_TLS_REQD) {
                    throw new DeviceException(DeviceException.Kind.IO_ERROR, "the server requires TLS for export '"
                            + name + "': connect with nbds:// and TLS credentials");
                }
                throw new DeviceException(DeviceException.Kind.IO_ERROR, "the server refused export '" + name + "': "
                        + replyTypeName(reply.type()) + (message.isEmpty() ? "" : " (" + message + ")"));
            }
            switch (reply.type()) {
                case REP_ACK -> {
                    if (size < 0) {
                        throw new ProtocolViolation("NBD_OPT_GO acknowledged without the export's size");
                    }
                    return new Negotiated(transport, size, flags, min, preferred, max);
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
        return new Negotiated(transport, size, Short.toUnsignedInt(reply.getShort()), 1, 4096, 0);
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
