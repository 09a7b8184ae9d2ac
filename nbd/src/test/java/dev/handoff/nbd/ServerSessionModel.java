package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * A generated client session, valid and malformed frames mixed, together with what the protocol
 * says the server must answer to it: the model. {@link #check} compares a run's output with the
 * model, reply by reply, and the device with the writes the model allows.
 *
 * <p>The model restates the rules the server must follow (which errors for which requests, when
 * it must hang up), independently of the server's code:
 * <ul>
 *   <li>handshake: unknown client flags, a bad option magic, option data over 64 KiB, more than
 *       {@link ServerSession#MAX_OPTIONS} options, any option but EXPORT_NAME without fixed
 *       newstyle, EXPORT_NAME for an unknown export: hang up. Malformed INFO/GO data or LIST with
 *       data: ERR_INVALID; unknown export: ERR_UNKNOWN; STARTTLS (no TLS configured): ERR_POLICY;
 *       unknown option: ERR_UNSUP.</li>
 *   <li>transmission: a bad request magic, or a WRITE claiming more than 32 MiB: hang up.
 *       Unknown flags or commands: EINVAL. READ over the maximum payload or outside the export:
 *       EINVAL. WRITE on a read-only export: EPERM; over the maximum payload: EINVAL; outside:
 *       ENOSPC. TRIM: EPERM / EINVAL. WRITE_ZEROES: EPERM / ENOSPC. FLUSH with a range: EINVAL.
 *       DISC: stop reading.</li>
 * </ul>
 * The session then ends either in order (end of input between frames, or DISC: every reply
 * arrives) or abruptly (a hang-up or a truncated frame: the replies that arrive are a subset, and
 * the last one may be cut short by the hang-up).
 */
final class ServerSessionModel {
    private static final long DISCARDABLE = DEFAULT_MAX_PAYLOAD;

    private enum OptionOutcome { LIST, INFO, GO, EXPORT_NAME, ABORT, ERR_INVALID, ERR_UNKNOWN, ERR_UNSUP, ERR_POLICY }

    private record ExpectedOption(int option, OptionOutcome outcome) {
    }

    private record ExpectedReply(int type, int error, long length) {
    }

    private final SplittableRandom random;
    private final boolean readOnly;
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final List<ExpectedOption> options = new ArrayList<>();
    private final Map<Long, ExpectedReply> replies = new HashMap<>();
    private final BitSet writable = new BitSet();
    private boolean noZeroes;
    private boolean abrupt;
    private boolean stopped;

    private ServerSessionModel(SplittableRandom random, boolean readOnly) {
        this.random = random;
        this.readOnly = readOnly;
    }

    static ServerSessionModel generate(long seed, boolean readOnly) {
        ServerSessionModel m = new ServerSessionModel(new SplittableRandom(seed), readOnly);
        m.generateHandshake();
        return m;
    }

    byte[] input() {
        return bytes.toByteArray();
    }

    /* ---------------- generation ---------------- */

    private void generateHandshake() {
        int flags;
        int p = random.nextInt(100);
        if (p < 80) {
            flags = CLIENT_FIXED_NEWSTYLE | CLIENT_NO_ZEROES;
        } else if (p < 87) {
            flags = CLIENT_FIXED_NEWSTYLE;
        } else if (p < 94) {
            flags = random.nextBoolean() ? 0 : CLIENT_NO_ZEROES;
        } else {
            flags = random.nextInt() | 4; // some unknown bit
        }
        put(ByteBuffer.allocate(4).putInt(flags).array());
        if ((flags & ~KNOWN_CLIENT_FLAGS) != 0) {
            hangUp();
            return;
        }
        boolean fixed = (flags & CLIENT_FIXED_NEWSTYLE) != 0;
        noZeroes = (flags & CLIENT_NO_ZEROES) != 0;
        int count = 0;
        int extra = random.nextInt(100) < 3 ? ServerSession.MAX_OPTIONS + 1 : random.nextInt(5);
        for (int i = 0; i < extra && !stopped; i++) {
            if (count >= ServerSession.MAX_OPTIONS) {
                option(OPT_LIST, new byte[0]);
                hangUp();
                return;
            }
            if (!fixed) {
                option(OPT_INFO, info("disk"));
                hangUp();
                return;
            }
            count++;
            negotiationOption();
        }
        if (stopped) {
            return;
        }
        if (count >= ServerSession.MAX_OPTIONS) {
            option(OPT_GO, info("disk"));
            hangUp();
            return;
        }
        int q = random.nextInt(100);
        if (q < 75 && fixed) {
            option(OPT_GO, info("disk"));
            options.add(new ExpectedOption(OPT_GO, OptionOutcome.GO));
        } else if (q < 90) {
            option(OPT_EXPORT_NAME, "disk".getBytes(StandardCharsets.UTF_8));
            options.add(new ExpectedOption(OPT_EXPORT_NAME, OptionOutcome.EXPORT_NAME));
        } else if (q < 95) {
            option(OPT_EXPORT_NAME, "nope".getBytes(StandardCharsets.UTF_8));
            hangUp();
            return;
        } else {
            return; // the client leaves between options: an orderly end
        }
        generateTransmission();
    }

    private void negotiationOption() {
        int p = random.nextInt(100);
        int kind = p < 15 ? 0 : p < 20 ? 1 : p < 35 ? 2 : p < 45 ? 3 : p < 55 ? 4 : p < 80 ? 5 : p < 84 ? 6
                : p < 88 ? 7 : p < 92 ? 8 : 9;
        switch (kind) {
            case 0 -> {
                option(OPT_LIST, new byte[0]);
                options.add(new ExpectedOption(OPT_LIST, OptionOutcome.LIST));
            }
            case 1 -> {
                option(OPT_LIST, new byte[] {1, 2});
                options.add(new ExpectedOption(OPT_LIST, OptionOutcome.ERR_INVALID));
            }
            case 2 -> {
                option(OPT_INFO, info("disk"));
                options.add(new ExpectedOption(OPT_INFO, OptionOutcome.INFO));
            }
            case 3 -> {
                int opt = random.nextBoolean() ? OPT_INFO : OPT_GO;
                option(opt, info("nope"));
                options.add(new ExpectedOption(opt, OptionOutcome.ERR_UNKNOWN));
            }
            case 4 -> {
                int opt = random.nextBoolean() ? OPT_INFO : OPT_GO;
                option(opt, malformedInfo());
                options.add(new ExpectedOption(opt, OptionOutcome.ERR_INVALID));
            }
            case 5 -> {
                int[] unknown = {OPT_STRUCTURED_REPLY, OPT_STARTTLS, OPT_SET_META_CONTEXT, OPT_EXTENDED_HEADERS,
                        4, 0, 0x7000_0000 | random.nextInt(1000)};
                int opt = unknown[random.nextInt(unknown.length)];
                option(opt, randomBytes(random.nextInt(64)));
                // A server without TLS knows STARTTLS and declines it by policy (NOTLS mode).
                options.add(new ExpectedOption(opt, opt == OPT_STARTTLS ? OptionOutcome.ERR_POLICY : OptionOutcome.ERR_UNSUP));
            }
            case 6 -> {
                option(OPT_ABORT, new byte[0]);
                options.add(new ExpectedOption(OPT_ABORT, OptionOutcome.ABORT));
                stopped = true; // the server acknowledges and ends in order
                if (random.nextBoolean()) {
                    put(randomBytes(random.nextInt(40))); // never read
                }
            }
            case 7 -> {
                ByteBuffer b = ByteBuffer.allocate(OPTION_HEADER_SIZE).putLong(IHAVEOPT ^ (1L << random.nextInt(64)))
                        .putInt(OPT_GO).putInt(0);
                put(b.array());
                hangUp();
            }
            case 8 -> {
                ByteBuffer b = ByteBuffer.allocate(OPTION_HEADER_SIZE).putLong(IHAVEOPT).putInt(OPT_GO)
                        .putInt(MAX_OPTION_DATA + 1 + random.nextInt(Integer.MAX_VALUE - MAX_OPTION_DATA));
                put(b.array());
                put(randomBytes(random.nextInt(100)));
                hangUp();
            }
            default -> {
                byte[] data = info("disk");
                ByteBuffer b = ByteBuffer.allocate(OPTION_HEADER_SIZE).putLong(IHAVEOPT).putInt(OPT_GO)
                        .putInt(data.length + 1 + random.nextInt(100));
                put(b.array());
                put(data); // and then the input ends: a truncated option
                hangUp();
            }
        }
    }

    private byte[] info(String name) {
        int n = random.nextInt(4);
        int[] infos = new int[n];
        for (int i = 0; i < n; i++) {
            infos[i] = random.nextInt(5);
        }
        InfoRequest r = new InfoRequest(name, infos);
        ByteBuffer b = ByteBuffer.allocate(r.encodedSize());
        r.encode(b);
        return b.array();
    }

    private byte[] malformedInfo() {
        return switch (random.nextInt(5)) {
            case 0 -> randomBytes(random.nextInt(6));                                      // too short
            case 1 -> ByteBuffer.allocate(10).putInt(7 + random.nextInt(1000)).array();    // name past the data
            case 2 -> ByteBuffer.allocate(10).putInt(4).put("disk".getBytes()).putShort((short) 3).array(); // count
            case 3 -> ByteBuffer.allocate(8).putInt(2).put(new byte[] {(byte) 0xFF, (byte) 0xFE}).array(); // UTF-8
            default -> ByteBuffer.allocate(4 + 4097 + 2).putInt(4097).array();             // name too long
        };
    }

    private void generateTransmission() {
        int n = random.nextInt(40);
        for (int i = 0; i < n && !stopped; i++) {
            request(1000 + i, i == n - 1);
        }
    }

    private void request(long handle, boolean last) {
        int p = random.nextInt(100);
        if (p < 3) {
            byte[] frame = requestFrame(0, CMD_READ, handle, 0, 512);
            ByteBuffer.wrap(frame).putInt(0, REQUEST_MAGIC ^ (1 << random.nextInt(32)));
            put(frame);
            hangUp();
            return;
        }
        if (p < 6) {
            put(requestFrame(0, CMD_DISC, handle, 0, 0));
            stopped = true;
            put(randomBytes(random.nextInt(100))); // never read
            return;
        }
        int type = pick(new int[] {CMD_READ, CMD_READ, CMD_READ, CMD_WRITE, CMD_WRITE, CMD_WRITE, CMD_WRITE,
                CMD_FLUSH, CMD_TRIM, CMD_WRITE_ZEROES, CMD_CACHE, CMD_BLOCK_STATUS, 9 + random.nextInt(100)});
        int flags = random.nextInt(100) < 85 ? (random.nextInt(4) == 0 ? CMD_FLAG_FUA : 0)
                : random.nextInt(100) < 50 ? CMD_FLAG_NO_HOLE : random.nextInt(1 << 16);
        long offset = offset();
        long length = type == CMD_FLUSH && random.nextInt(10) < 8 ? 0 : length(type);
        if (type == CMD_FLUSH && random.nextInt(10) < 8) {
            offset = 0;
        }
        byte[] frame = requestFrame(flags, type, handle, offset, length);
        boolean truncate = last && random.nextInt(100) < 15;
        if (type == CMD_WRITE) {
            if (length > DISCARDABLE) {
                put(frame);
                put(randomBytes(random.nextInt(1000)));
                hangUp();
                return;
            }
            byte[] payload = nonZeroBytes((int) length);
            if (truncate && length > 0) {
                put(frame);
                put(java.util.Arrays.copyOf(payload, random.nextInt(payload.length))); // strictly short
                truncated();
                return;
            }
            if (truncate) {
                put(java.util.Arrays.copyOf(frame, 1 + random.nextInt(REQUEST_SIZE - 1)));
                truncated();
                return;
            }
            put(frame);
            put(payload);
        } else if (truncate) {
            put(java.util.Arrays.copyOf(frame, 1 + random.nextInt(REQUEST_SIZE - 1)));
            truncated();
            return;
        } else {
            put(frame);
        }
        int error = expectedError(type, flags, offset, length);
        replies.put(handle, new ExpectedReply(type, error, length));
        if (type == CMD_WRITE && error == 0) {
            writable.set((int) offset, (int) (offset + length));
        }
    }

    /** The error the protocol calls for (see the class comment). */
    private int expectedError(int type, int flags, long offset, long length) {
        int allowed = CMD_FLAG_FUA | (type == CMD_WRITE_ZEROES ? CMD_FLAG_NO_HOLE : 0);
        if ((flags & ~allowed) != 0) {
            return EINVAL;
        }
        boolean inside = offset >= 0 && offset <= ServerSession.DEVICE_SIZE
                && length <= ServerSession.DEVICE_SIZE - offset;
        return switch (type) {
            case CMD_READ -> length > ServerSession.MAX_PAYLOAD || !inside ? EINVAL : 0;
            case CMD_WRITE -> readOnly ? EPERM : length > ServerSession.MAX_PAYLOAD ? EINVAL : !inside ? ENOSPC : 0;
            case CMD_FLUSH -> offset != 0 || length != 0 ? EINVAL : 0;
            case CMD_TRIM -> readOnly ? EPERM : !inside ? EINVAL : 0;
            case CMD_WRITE_ZEROES -> readOnly ? EPERM : !inside ? ENOSPC : 0;
            default -> EINVAL;
        };
    }

    private long offset() {
        long size = ServerSession.DEVICE_SIZE;
        return switch (random.nextInt(20)) {
            case 0 -> 0;
            case 1 -> size - random.nextInt(4096);
            case 2 -> size;
            case 3 -> size + random.nextInt(1 << 20);
            case 4 -> -1L - random.nextInt(1 << 16); // 2^64 - n
            case 5 -> Long.MAX_VALUE - random.nextInt(100);
            case 6 -> random.nextLong();
            default -> random.nextLong(size);
        };
    }

    private long length(int type) {
        boolean payload = type == CMD_WRITE;
        return switch (random.nextInt(12)) {
            case 0 -> 0;
            case 1 -> ServerSession.MAX_PAYLOAD;
            case 2 -> ServerSession.MAX_PAYLOAD + 1 + random.nextInt(4 * ServerSession.MAX_PAYLOAD);
            case 3 -> payload ? DISCARDABLE + 1 + random.nextInt(1 << 20) : Integer.toUnsignedLong(random.nextInt());
            case 4 -> 0xFFFF_FFFFL;
            case 5 -> 1 + random.nextInt(ServerSession.MAX_PAYLOAD);
            default -> 1 + random.nextInt(8192);
        };
    }

    private void option(int option, byte[] data) {
        ByteBuffer b = ByteBuffer.allocate(OPTION_HEADER_SIZE + data.length);
        new OptionRequest(option, data.length).encode(b);
        put(b.put(data).array());
    }

    private static byte[] requestFrame(int flags, int type, long handle, long offset, long length) {
        ByteBuffer b = ByteBuffer.allocate(REQUEST_SIZE);
        new Request(flags, type, handle, offset, length).encode(b);
        return b.array();
    }

    private void hangUp() {
        abrupt = true;
        stopped = true;
    }

    private void truncated() {
        abrupt = true;
        stopped = true;
    }

    private int pick(int[] choices) {
        return choices[random.nextInt(choices.length)];
    }

    private byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }

    private byte[] nonZeroBytes(int n) {
        byte[] b = randomBytes(n);
        for (int i = 0; i < n; i++) {
            if (b[i] == 0) {
                b[i] = 1;
            }
        }
        return b;
    }

    private void put(byte[] b) {
        bytes.write(b, 0, b.length);
    }

    /* ---------------- checking ---------------- */

    /** Compares a session's output and device with the model; returns the differences. */
    List<String> check(ServerSession session) {
        List<String> failures = new ArrayList<>();
        ByteBuffer out = ByteBuffer.wrap(session.output);
        if (out.remaining() < GREETING_SIZE) {
            failures.add("no greeting");
            return failures;
        }
        out.position(GREETING_SIZE);
        for (ExpectedOption expected : options) {
            String problem = checkOption(out, expected);
            if (problem != null) {
                failures.add("option " + expected + ": " + problem);
                return failures;
            }
        }
        Set<Long> seen = new HashSet<>();
        while (out.hasRemaining()) {
            if (out.remaining() < SIMPLE_REPLY_SIZE) {
                if (!abrupt) { // a hang-up may cut the reply being sent: only an orderly end owes whole frames
                    failures.add(out.remaining() + " stray bytes at the end of the output");
                }
                break;
            }
            int magic = out.getInt();
            int error = out.getInt();
            long handle = out.getLong();
            if (magic != SIMPLE_REPLY_MAGIC) {
                failures.add("reply magic 0x" + Integer.toHexString(magic));
                break;
            }
            ExpectedReply expected = replies.get(handle);
            if (expected == null) {
                failures.add("reply for handle " + handle + ", which was not a request the server should answer");
                break;
            }
            if (!seen.add(handle)) {
                failures.add("second reply for handle " + handle);
            }
            if (error != expected.error()) {
                failures.add("handle " + handle + " (" + commandName(expected.type()) + "): error "
                        + errnoName(error) + ", expected " + errnoName(expected.error()));
            }
            if (expected.type() == CMD_READ && error == 0) {
                if (out.remaining() < expected.length()) {
                    if (!abrupt) {
                        failures.add("READ " + handle + " truncated");
                    }
                    break;
                }
                out.position(out.position() + (int) expected.length());
            }
        }
        if (!abrupt && seen.size() != replies.size()) {
            Set<Long> missing = new HashSet<>(replies.keySet());
            missing.removeAll(seen);
            failures.add("orderly end but no reply for handles " + missing);
        }
        byte[] device = session.deviceBytes();
        for (int i = 0; i < device.length; i++) {
            if (device[i] != 0 && !writable.get(i)) {
                failures.add("byte " + i + " changed, but no accepted WRITE covers it");
                break;
            }
        }
        return failures;
    }

    private String checkOption(ByteBuffer out, ExpectedOption expected) {
        if (expected.outcome() == OptionOutcome.EXPORT_NAME) {
            int n = 10 + (noZeroes ? 0 : EXPORT_NAME_REPLY_ZEROES);
            if (out.remaining() < n) {
                return "export-name reply missing";
            }
            long size = out.getLong();
            out.position(out.position() + n - 8);
            return size == ServerSession.DEVICE_SIZE ? null : "export size " + size;
        }
        int infos = 0;
        int servers = 0;
        while (true) {
            if (out.remaining() < OPTION_REPLY_HEADER_SIZE) {
                return "reply missing";
            }
            long magic = out.getLong();
            int option = out.getInt();
            int type = out.getInt();
            long length = Integer.toUnsignedLong(out.getInt());
            if (magic != OPTION_REPLY_MAGIC || option != expected.option() || length > out.remaining()) {
                return "malformed reply header (magic 0x" + Long.toHexString(magic) + ", option " + option
                        + ", length " + length + ")";
            }
            ByteBuffer data = out.slice(out.position(), (int) length);
            out.position(out.position() + (int) length);
            switch (expected.outcome()) {
                case ERR_INVALID, ERR_UNKNOWN, ERR_UNSUP, ERR_POLICY -> {
                    int want = switch (expected.outcome()) {
                        case ERR_INVALID -> REP_ERR_INVALID;
                        case ERR_UNKNOWN -> REP_ERR_UNKNOWN;
                        case ERR_POLICY -> REP_ERR_POLICY;
                        default -> REP_ERR_UNSUP;
                    };
                    return type == want ? null : "got " + replyTypeName(type) + ", expected " + replyTypeName(want);
                }
                case ABORT -> {
                    return type == REP_ACK ? null : "got " + replyTypeName(type);
                }
                case LIST -> {
                    if (type == REP_SERVER) {
                        servers++;
                        continue;
                    }
                    return type == REP_ACK && servers == 1 ? null : "LIST gave " + servers + " exports, then "
                            + replyTypeName(type);
                }
                default -> { // INFO, GO
                    if (type == REP_INFO) {
                        if (infos++ == 0) {
                            if (length != 12 || data.getShort() != INFO_EXPORT
                                    || data.getLong() != ServerSession.DEVICE_SIZE) {
                                return "first NBD_REP_INFO is not the export's size";
                            }
                            int flags = Short.toUnsignedInt(data.getShort());
                            if (((flags & TFLAG_READ_ONLY) != 0) != readOnly) {
                                return "read-only flag " + flags;
                            }
                        }
                        continue;
                    }
                    return type == REP_ACK && infos >= 1 ? null : "info then " + replyTypeName(type);
                }
            }
        }
    }
}
