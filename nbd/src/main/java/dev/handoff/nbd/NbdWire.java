package dev.handoff.nbd;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * The NBD wire format: constants, and the fixed-size frames as records with pure decoders and
 * encoders. Every number is big-endian (network order), which is {@link ByteBuffer}'s default.
 *
 * <p>Decoders take a buffer holding exactly the bytes of one frame (or one option's data), check
 * every magic number and length, and throw {@link ProtocolViolation} for anything malformed. They
 * never allocate more than the frame they are given: a length read from the wire is returned to
 * the caller, which checks it against its limits before reading or allocating anything.
 *
 * <pre>
 * Greeting (server, 18 bytes, fixed newstyle)
 * +----------------------------+----------------------------+---------+
 * | "NBDMAGIC" u64             | "IHAVEOPT" u64             | hs flags|
 * +----------------------------+----------------------------+---------+
 *   0                            8                            16  u16
 * Client flags (client, 4 bytes): u32
 *
 * Option request (client, 16 bytes + data)
 * +----------------------------+-------------+-------------+--------------
 * | "IHAVEOPT" u64             | option u32  | length u32  | data...
 * +----------------------------+-------------+-------------+--------------
 *
 * Option reply (server, 20 bytes + data)
 * +----------------------------+-------------+-------------+-------------+-----------
 * | 0x0003e889045565a9 u64     | option u32  | type u32    | length u32  | data...
 * +----------------------------+-------------+-------------+-------------+-----------
 *
 * Request (client, 28 bytes, + length bytes of data for WRITE)
 * +-------------+--------+--------+------------------+------------------+-------------+
 * | 0x25609513  | flags  | type   | handle u64       | offset u64       | length u32  |
 * +-------------+--------+--------+------------------+------------------+-------------+
 *   0             4 u16    6 u16    8                  16                 24
 *
 * Simple reply (server, 16 bytes, + length bytes of data for a successful READ)
 * +-------------+-------------+------------------+
 * | 0x67446698  | error u32   | handle u64       |
 * +-------------+-------------+------------------+
 *
 * Structured reply chunk (server, 20 bytes + length bytes of payload; after NBD_OPT_STRUCTURED_REPLY)
 * +-------------+--------+--------+------------------+-------------+-----------
 * | 0x668e33ef  | flags  | type   | handle u64       | length u32  | payload...
 * +-------------+--------+--------+------------------+-------------+-----------
 *   0             4 u16    6 u16    8                  16            20
 *   NONE:         no payload (the answer to a command that returns nothing)
 *   OFFSET_DATA:  offset u64, then the data read there
 *   BLOCK_STATUS: context id u32, then (length u32, status flags u32) per extent
 *   ERROR:        error u32, message length u16, message (UTF-8)
 *
 * Meta context option data (NBD_OPT_LIST_META_CONTEXT, NBD_OPT_SET_META_CONTEXT)
 * +-------------+---------------+-------------+---------------------------------------+
 * | namelen u32 | export name   | count u32   | count x (length u32, query (UTF-8))   |
 * +-------------+---------------+-------------+---------------------------------------+
 * NBD_REP_META_CONTEXT data: context id u32, then the context's name (UTF-8).
 * </pre>
 */
final class NbdWire {
    private NbdWire() {
    }

    /* ---------------- Handshake ---------------- */

    /** "NBDMAGIC", first word of every greeting. */
    static final long NBD_MAGIC = 0x4e42444d41474943L;
    /** "IHAVEOPT": second word of a newstyle greeting, and the first word of every option. */
    static final long IHAVEOPT = 0x49484156454F5054L;
    /** Second word of an oldstyle greeting, which this code does not speak. */
    static final long OLDSTYLE_MAGIC = 0x00420281861253L;
    /** First word of every option reply. */
    static final long OPTION_REPLY_MAGIC = 0x0003e889045565a9L;

    static final int GREETING_SIZE = 18;
    static final int OPTION_HEADER_SIZE = 16;
    static final int OPTION_REPLY_HEADER_SIZE = 20;
    /** Size, flags and 124 zeroes: the answer to NBD_OPT_EXPORT_NAME. */
    static final int EXPORT_NAME_REPLY_ZEROES = 124;

    /** Handshake flags (server). */
    static final int FLAG_FIXED_NEWSTYLE = 1;
    static final int FLAG_NO_ZEROES = 1 << 1;
    /** Client flags. */
    static final int CLIENT_FIXED_NEWSTYLE = 1;
    static final int CLIENT_NO_ZEROES = 1 << 1;
    static final int KNOWN_CLIENT_FLAGS = CLIENT_FIXED_NEWSTYLE | CLIENT_NO_ZEROES;

    /** Options. */
    static final int OPT_EXPORT_NAME = 1;
    static final int OPT_ABORT = 2;
    static final int OPT_LIST = 3;
    static final int OPT_STARTTLS = 5;
    static final int OPT_INFO = 6;
    static final int OPT_GO = 7;
    static final int OPT_STRUCTURED_REPLY = 8;
    static final int OPT_LIST_META_CONTEXT = 9;
    static final int OPT_SET_META_CONTEXT = 10;
    static final int OPT_EXTENDED_HEADERS = 11;

    /** Option reply types; errors have bit 31 set. */
    static final int REP_ACK = 1;
    static final int REP_SERVER = 2;
    static final int REP_INFO = 3;
    static final int REP_META_CONTEXT = 4;
    static final int REP_ERROR_BIT = 0x8000_0000;
    static final int REP_ERR_UNSUP = REP_ERROR_BIT | 1;
    static final int REP_ERR_POLICY = REP_ERROR_BIT | 2;
    static final int REP_ERR_INVALID = REP_ERROR_BIT | 3;
    static final int REP_ERR_PLATFORM = REP_ERROR_BIT | 4;
    static final int REP_ERR_TLS_REQD = REP_ERROR_BIT | 5;
    static final int REP_ERR_UNKNOWN = REP_ERROR_BIT | 6;
    static final int REP_ERR_SHUTDOWN = REP_ERROR_BIT | 7;
    static final int REP_ERR_BLOCK_SIZE_REQD = REP_ERROR_BIT | 8;
    static final int REP_ERR_TOO_BIG = REP_ERROR_BIT | 9;

    /** Information types in NBD_OPT_INFO / NBD_OPT_GO and in NBD_REP_INFO replies. */
    static final int INFO_EXPORT = 0;
    static final int INFO_NAME = 1;
    static final int INFO_DESCRIPTION = 2;
    static final int INFO_BLOCK_SIZE = 3;

    /** Transmission flags. */
    static final int TFLAG_HAS_FLAGS = 1;
    static final int TFLAG_READ_ONLY = 1 << 1;
    static final int TFLAG_SEND_FLUSH = 1 << 2;
    static final int TFLAG_SEND_FUA = 1 << 3;
    static final int TFLAG_ROTATIONAL = 1 << 4;
    static final int TFLAG_SEND_TRIM = 1 << 5;
    static final int TFLAG_SEND_WRITE_ZEROES = 1 << 6;
    static final int TFLAG_SEND_DF = 1 << 7;
    static final int TFLAG_CAN_MULTI_CONN = 1 << 8;
    static final int TFLAG_SEND_CACHE = 1 << 10;
    static final int TFLAG_SEND_FAST_ZERO = 1 << 11;

    /** Strings (export names, messages) must not be longer than this, in UTF-8 bytes. */
    static final int MAX_STRING_BYTES = 4096;

    /* ---------------- Transmission ---------------- */

    static final int REQUEST_MAGIC = 0x25609513;
    static final int SIMPLE_REPLY_MAGIC = 0x67446698;
    static final int STRUCTURED_REPLY_MAGIC = 0x668e33ef;
    static final int REQUEST_SIZE = 28;
    static final int SIMPLE_REPLY_SIZE = 16;
    static final int STRUCTURED_REPLY_HEADER_SIZE = 20;

    /** Structured reply chunk flags and types. */
    static final int REPLY_FLAG_DONE = 1;
    static final int REPLY_TYPE_NONE = 0;
    static final int REPLY_TYPE_OFFSET_DATA = 1;
    static final int REPLY_TYPE_OFFSET_HOLE = 2;
    static final int REPLY_TYPE_BLOCK_STATUS = 5;
    static final int REPLY_TYPE_ERROR = (1 << 15) + 1;
    static final int REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2;

    /** The one metadata context this code knows: allocation, as SEEK_DATA / SEEK_HOLE see it. */
    static final String BASE_ALLOCATION = "base:allocation";
    /** base:allocation's status flags. */
    static final int STATE_HOLE = 1;
    static final int STATE_ZERO = 1 << 1;

    static final int CMD_READ = 0;
    static final int CMD_WRITE = 1;
    static final int CMD_DISC = 2;
    static final int CMD_FLUSH = 3;
    static final int CMD_TRIM = 4;
    static final int CMD_CACHE = 5;
    static final int CMD_WRITE_ZEROES = 6;
    static final int CMD_BLOCK_STATUS = 7;

    static final int CMD_FLAG_FUA = 1;
    static final int CMD_FLAG_NO_HOLE = 1 << 1;
    static final int CMD_FLAG_DF = 1 << 2;
    static final int CMD_FLAG_REQ_ONE = 1 << 3;
    static final int CMD_FLAG_FAST_ZERO = 1 << 4;

    /** The protocol's error values (a fixed subset of Linux errno numbers), plus EROFS. */
    static final int EPERM = 1;
    static final int EIO = 5;
    static final int ENOMEM = 12;
    static final int EFBIG = 27;
    static final int EINVAL = 22;
    static final int ENOSPC = 28;
    static final int EROFS = 30;
    static final int EOVERFLOW = 75;
    static final int ENOTSUP = 95;
    static final int ESHUTDOWN = 108;
    static final int EDQUOT = 122;

    /** The largest READ or WRITE payload either side accepts unless configured otherwise: 32 MiB. */
    static final int DEFAULT_MAX_PAYLOAD = 32 << 20;
    /** The largest option data the server reads; an export name is at most 4 KiB. */
    static final int MAX_OPTION_DATA = 64 << 10;
    /** The largest option reply data the client reads. */
    static final int MAX_OPTION_REPLY_DATA = 64 << 10;

    /* ---------------- Frames ---------------- */

    /** A transmission request header; {@code offset} is unsigned 64-bit, {@code length} unsigned 32-bit. */
    record Request(int flags, int type, long handle, long offset, long length) {

        static Request decode(ByteBuffer frame) throws ProtocolViolation {
            expectSize(frame, REQUEST_SIZE, "request");
            int magic = frame.getInt();
            if (magic != REQUEST_MAGIC) {
                throw new ProtocolViolation("bad request magic 0x" + Integer.toHexString(magic));
            }
            int flags = Short.toUnsignedInt(frame.getShort());
            int type = Short.toUnsignedInt(frame.getShort());
            long handle = frame.getLong();
            long offset = frame.getLong();
            long length = Integer.toUnsignedLong(frame.getInt());
            return new Request(flags, type, handle, offset, length);
        }

        void encode(ByteBuffer out) {
            out.putInt(REQUEST_MAGIC).putShort((short) flags).putShort((short) type).putLong(handle)
                    .putLong(offset).putInt((int) length);
        }

        /** Whether {@code [offset, offset + length)} lies inside {@code size} bytes (unsigned offset). */
        boolean inside(long size) {
            return offset >= 0 && offset <= size && length <= size - offset;
        }
    }

    /** A simple reply header. */
    record SimpleReply(int error, long handle) {

        static SimpleReply decode(ByteBuffer frame) throws ProtocolViolation {
            expectSize(frame, SIMPLE_REPLY_SIZE, "reply");
            int magic = frame.getInt();
            if (magic == STRUCTURED_REPLY_MAGIC) {
                throw new ProtocolViolation("structured reply received, but structured replies were not negotiated");
            }
            if (magic != SIMPLE_REPLY_MAGIC) {
                throw new ProtocolViolation("bad reply magic 0x" + Integer.toHexString(magic));
            }
            return new SimpleReply(frame.getInt(), frame.getLong());
        }

        void encode(ByteBuffer out) {
            out.putInt(SIMPLE_REPLY_MAGIC).putInt(error).putLong(handle);
        }
    }

    /** A structured reply chunk's header; {@code length} (of the payload) is unsigned 32-bit. */
    record StructuredReplyHeader(int flags, int type, long handle, long length) {

        static StructuredReplyHeader decode(ByteBuffer frame) throws ProtocolViolation {
            expectSize(frame, STRUCTURED_REPLY_HEADER_SIZE, "structured reply header");
            int magic = frame.getInt();
            if (magic != STRUCTURED_REPLY_MAGIC) {
                throw new ProtocolViolation("bad structured reply magic 0x" + Integer.toHexString(magic));
            }
            int flags = Short.toUnsignedInt(frame.getShort());
            int type = Short.toUnsignedInt(frame.getShort());
            long handle = frame.getLong();
            return new StructuredReplyHeader(flags, type, handle, Integer.toUnsignedLong(frame.getInt()));
        }

        void encode(ByteBuffer out) {
            out.putInt(STRUCTURED_REPLY_MAGIC).putShort((short) flags).putShort((short) type).putLong(handle)
                    .putInt((int) length);
        }

        boolean done() {
            return (flags & REPLY_FLAG_DONE) != 0;
        }
    }

    /**
     * The data of NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: the export the contexts
     * are for, and the queries (each a context name, or a namespace such as {@code "base:"}).
     */
    record MetaContextRequest(String name, java.util.List<String> queries) {

        /** Decodes option data, which must be consumed exactly; every string is a protocol string. */
        static MetaContextRequest decode(ByteBuffer data) throws ProtocolViolation {
            if (data.remaining() < 8) {
                throw new ProtocolViolation("meta context request of " + data.remaining() + " bytes is too short");
            }
            long nameLength = Integer.toUnsignedLong(data.getInt());
            if (nameLength > data.remaining() - 4) {
                throw new ProtocolViolation("export name length " + nameLength + " exceeds the option data");
            }
            String name = decodeString(data, (int) nameLength, "export name");
            long count = Integer.toUnsignedLong(data.getInt());
            if (count > data.remaining() / 4) {
                throw new ProtocolViolation("meta context request announces " + count + " queries but carries "
                        + data.remaining() + " bytes");
            }
            java.util.List<String> queries = new java.util.ArrayList<>((int) count);
            for (long i = 0; i < count; i++) {
                if (data.remaining() < 4) {
                    throw new ProtocolViolation("meta context query " + i + " is cut off");
                }
                long length = Integer.toUnsignedLong(data.getInt());
                if (length > data.remaining()) {
                    throw new ProtocolViolation("meta context query of " + length + " bytes exceeds the option data");
                }
                queries.add(decodeString(data, (int) length, "meta context query"));
            }
            if (data.hasRemaining()) {
                throw new ProtocolViolation(data.remaining() + " bytes after the last meta context query");
            }
            return new MetaContextRequest(name, java.util.List.copyOf(queries));
        }

        int encodedSize() {
            int size = 4 + utf8(name).length + 4;
            for (String q : queries) {
                size += 4 + utf8(q).length;
            }
            return size;
        }

        void encode(ByteBuffer out) {
            byte[] n = utf8(name);
            out.putInt(n.length).put(n).putInt(queries.size());
            for (String q : queries) {
                byte[] b = utf8(q);
                out.putInt(b.length).put(b);
            }
        }
    }

    /** An option request header; {@code length} is unsigned 32-bit. */
    record OptionRequest(int option, long length) {

        static OptionRequest decode(ByteBuffer frame) throws ProtocolViolation {
            expectSize(frame, OPTION_HEADER_SIZE, "option header");
            long magic = frame.getLong();
            if (magic != IHAVEOPT) {
                throw new ProtocolViolation("bad option magic 0x" + Long.toHexString(magic));
            }
            return new OptionRequest(frame.getInt(), Integer.toUnsignedLong(frame.getInt()));
        }

        void encode(ByteBuffer out) {
            out.putLong(IHAVEOPT).putInt(option).putInt((int) length);
        }
    }

    /** An option reply header; {@code length} is unsigned 32-bit. */
    record OptionReply(int option, int type, long length) {

        static OptionReply decode(ByteBuffer frame) throws ProtocolViolation {
            expectSize(frame, OPTION_REPLY_HEADER_SIZE, "option reply header");
            long magic = frame.getLong();
            if (magic != OPTION_REPLY_MAGIC) {
                throw new ProtocolViolation("bad option reply magic 0x" + Long.toHexString(magic));
            }
            return new OptionReply(frame.getInt(), frame.getInt(), Integer.toUnsignedLong(frame.getInt()));
        }

        void encode(ByteBuffer out) {
            out.putLong(OPTION_REPLY_MAGIC).putInt(option).putInt(type).putInt((int) length);
        }

        boolean isError() {
            return (type & REP_ERROR_BIT) != 0;
        }
    }

    /**
     * The data of NBD_OPT_INFO and NBD_OPT_GO: the export name and the information types asked for.
     *
     * <pre>
     * +-------------+---------------+-----------+-------------------+
     * | namelen u32 | name (UTF-8)  | count u16 | count x type u16  |
     * +-------------+---------------+-----------+-------------------+
     * </pre>
     */
    record InfoRequest(String name, int[] infos) {

        /** Decodes option data, which must be consumed exactly. */
        static InfoRequest decode(ByteBuffer data) throws ProtocolViolation {
            if (data.remaining() < 6) {
                throw new ProtocolViolation("info request of " + data.remaining() + " bytes is too short");
            }
            long nameLength = Integer.toUnsignedLong(data.getInt());
            if (nameLength > data.remaining() - 2) {
                throw new ProtocolViolation("export name length " + nameLength + " exceeds the option data");
            }
            String name = decodeString(data, (int) nameLength, "export name");
            int count = Short.toUnsignedInt(data.getShort());
            if (data.remaining() != 2L * count) {
                throw new ProtocolViolation("info request announces " + count + " types but carries "
                        + data.remaining() + " bytes");
            }
            int[] infos = new int[count];
            for (int i = 0; i < count; i++) {
                infos[i] = Short.toUnsignedInt(data.getShort());
            }
            return new InfoRequest(name, infos);
        }

        int encodedSize() {
            return 4 + utf8(name).length + 2 + 2 * infos.length;
        }

        void encode(ByteBuffer out) {
            byte[] n = utf8(name);
            out.putInt(n.length).put(n).putShort((short) infos.length);
            for (int info : infos) {
                out.putShort((short) info);
            }
        }

        boolean asks(int info) {
            for (int i : infos) {
                if (i == info) {
                    return true;
                }
            }
            return false;
        }
    }

    /**
     * Decodes {@code length} bytes of {@code data} as a protocol string: valid UTF-8, no NUL, at
     * most {@link #MAX_STRING_BYTES} bytes.
     */
    static String decodeString(ByteBuffer data, int length, String what) throws ProtocolViolation {
        if (length < 0 || length > MAX_STRING_BYTES) {
            throw new ProtocolViolation(what + " of " + Integer.toUnsignedString(length) + " bytes is longer than "
                    + MAX_STRING_BYTES);
        }
        if (length > data.remaining()) {
            throw new ProtocolViolation(what + " of " + length + " bytes exceeds the " + data.remaining()
                    + " bytes left");
        }
        ByteBuffer bytes = data.slice(data.position(), length);
        data.position(data.position() + length);
        CharBuffer chars;
        try {
            chars = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(bytes);
        } catch (CharacterCodingException e) {
            throw new ProtocolViolation(what + " is not valid UTF-8");
        }
        String s = chars.toString();
        if (s.indexOf('\0') >= 0) {
            throw new ProtocolViolation(what + " contains NUL");
        }
        return s;
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Whether {@code s} is acceptable as a protocol string (export name, description). */
    static boolean isValidString(String s) {
        return s.indexOf('\0') < 0 && utf8(s).length <= MAX_STRING_BYTES;
    }

    private static void expectSize(ByteBuffer frame, int size, String what) throws ProtocolViolation {
        if (frame.remaining() != size) {
            throw new ProtocolViolation(what + " of " + frame.remaining() + " bytes, expected " + size);
        }
    }

    /* ---------------- Names for messages ---------------- */

    static String commandName(int type) {
        return switch (type) {
            case CMD_READ -> "READ";
            case CMD_WRITE -> "WRITE";
            case CMD_DISC -> "DISC";
            case CMD_FLUSH -> "FLUSH";
            case CMD_TRIM -> "TRIM";
            case CMD_CACHE -> "CACHE";
            case CMD_WRITE_ZEROES -> "WRITE_ZEROES";
            case CMD_BLOCK_STATUS -> "BLOCK_STATUS";
            default -> "command " + type;
        };
    }

    static String errnoName(int error) {
        return switch (error) {
            case 0 -> "OK";
            case EPERM -> "EPERM";
            case EIO -> "EIO";
            case ENOMEM -> "ENOMEM";
            case EFBIG -> "EFBIG";
            case EINVAL -> "EINVAL";
            case ENOSPC -> "ENOSPC";
            case EROFS -> "EROFS";
            case EOVERFLOW -> "EOVERFLOW";
            case ENOTSUP -> "ENOTSUP";
            case ESHUTDOWN -> "ESHUTDOWN";
            case EDQUOT -> "EDQUOT";
            default -> "error " + Integer.toUnsignedString(error);
        };
    }

    static String replyTypeName(int type) {
        return switch (type) {
            case REP_ACK -> "NBD_REP_ACK";
            case REP_SERVER -> "NBD_REP_SERVER";
            case REP_INFO -> "NBD_REP_INFO";
            case REP_META_CONTEXT -> "NBD_REP_META_CONTEXT";
            case REP_ERR_UNSUP -> "NBD_REP_ERR_UNSUP";
            case REP_ERR_POLICY -> "NBD_REP_ERR_POLICY";
            case REP_ERR_INVALID -> "NBD_REP_ERR_INVALID";
            case REP_ERR_PLATFORM -> "NBD_REP_ERR_PLATFORM";
            case REP_ERR_TLS_REQD -> "NBD_REP_ERR_TLS_REQD";
            case REP_ERR_UNKNOWN -> "NBD_REP_ERR_UNKNOWN";
            case REP_ERR_SHUTDOWN -> "NBD_REP_ERR_SHUTDOWN";
            case REP_ERR_BLOCK_SIZE_REQD -> "NBD_REP_ERR_BLOCK_SIZE_REQD";
            case REP_ERR_TOO_BIG -> "NBD_REP_ERR_TOO_BIG";
            default -> "reply type 0x" + Integer.toHexString(type);
        };
    }
}
