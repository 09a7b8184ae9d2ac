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
 *       unknown option: ERR_UNSUP. STRUCTURED_REPLY: ACK the first time, ERR_INVALID with data or
 *       again. LIST/SET_META_CONTEXT: ERR_INVALID before structured replies or when malformed,
 *       ERR_UNKNOWN for an unknown export; else base:allocation (id 0 in LIST, 1 in SET) for the
 *       queries that name it, then ACK; a SET replaces the selection, a failed one clears it.</li>
 *   <li>transmission: a bad request magic, or a WRITE claiming more than 32 MiB: hang up.
 *       Unknown flags or commands: EINVAL. READ over the maximum payload or outside the export:
 *       EINVAL. WRITE on a read-only export: EPERM; over the maximum payload: EINVAL; outside:
 *       ENOSPC. TRIM: EPERM / EINVAL. WRITE_ZEROES: EPERM / ENOSPC, with FAST_ZERO and NO_HOLE
 *       ENOTSUP, with FAST_ZERO alone success or ENOTSUP (which one depends on the device's map).
 *       FLUSH with a range: EINVAL. CACHE outside: EINVAL. BLOCK_STATUS without base:allocation
 *       selected for the export, empty or outside: EINVAL. DF on READ only with structured
 *       replies, REQ_ONE on BLOCK_STATUS only. DISC: stop reading.</li>
 *   <li>replies: simple, or with structured replies one chunk marked done per request: ERROR for
 *       an error, OFFSET_DATA at the request's offset for a READ's data, BLOCK_STATUS (context 1,
 *       at least one extent, none empty, no more than asked) for a block status, NONE otherwise.</li>
 * </ul>
 * The session then ends either in order (end of input between frames, or DISC: every reply
 * arrives) or abruptly (a hang-up or a truncated frame: the replies that arrive are a subset, and
 * the last one may be cut short by the hang-up).
 */
final class ServerSessionModel {
    private static final long DISCARDABLE = DEFAULT_MAX_PAYLOAD;

    private enum OptionOutcome { LIST, INFO, GO, EXPORT_NAME, ABORT, ACK, META, ERR_INVALID, ERR_UNKNOWN, ERR_UNSUP,
        ERR_POLICY }

    /** {@code contextId}: for META, the id of the one NBD_REP_META_CONTEXT expected, or -1 for none. */
    private record ExpectedOption(int option, OptionOutcome outcome, int contextId) {
        ExpectedOption(int option, OptionOutcome outcome) {
            this(option, outcome, -1);
        }
    }

    /** {@code error}: the one expected, or {@link #ZERO_OR_ENOTSUP}. */
    private record ExpectedReply(int type, int flags, int error, long offset, long length) {
    }

    private static final int ZERO_OR_ENOTSUP = -1;

    private final SplittableRandom random;
    private final boolean readOnly;
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final List<ExpectedOption> options = new ArrayList<>();
    private final Map<Long, ExpectedReply> replies = new HashMap<>();
    private final BitSet writable = new BitSet();
    private boolean noZeroes;
    /** Generation state: structured replies negotiated; base:allocation selected for "disk"; in transmission. */
    private boolean structured;
    private boolean selected;
    private boolean allocation;
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
        if (fixed && random.nextInt(100) < 45) {
            // As libnbd and QEMU begin: structured replies, then (mostly) base:allocation.
            count++;
            option(OPT_STRUCTURED_REPLY, new byte[0]);
            options.add(new ExpectedOption(OPT_STRUCTURED_REPLY, OptionOutcome.ACK));
            structured = true;
            if (random.nextInt(100) < 75) {
                count++;
                option(OPT_SET_META_CONTEXT, RawPeer.metaContextRequest("disk", BASE_ALLOCATION));
                options.add(new ExpectedOption(OPT_SET_META_CONTEXT, OptionOutcome.META,
                        ServerConnection.BASE_ALLOCATION_ID));
                selected = true;
            }
        }
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
        allocation = structured && selected;
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
        int kind = p < 15 ? 0 : p < 20 ? 1 : p < 35 ? 2 : p < 45 ? 3 : p < 55 ? 4 : p < 63 ? 5 : p < 80 ? 10
                : p < 84 ? 6 : p < 88 ? 7 : p < 92 ? 8 : 9;
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
                int[] unknown = {OPT_STARTTLS, OPT_EXTENDED_HEADERS, 4, 0, 0x7000_0000 | random.nextInt(1000)};
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
            case 10 -> structuredOrMetaContext();
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

    private void structuredOrMetaContext() {
        switch (random.nextInt(8)) {
            case 0, 1 -> {
                option(OPT_STRUCTURED_REPLY, new byte[0]);
                options.add(new ExpectedOption(OPT_STRUCTURED_REPLY, structured ? OptionOutcome.ERR_INVALID
                        : OptionOutcome.ACK));
                structured = true;
            }
            case 2 -> {
                option(OPT_STRUCTURED_REPLY, randomBytes(1 + random.nextInt(8)));
                options.add(new ExpectedOption(OPT_STRUCTURED_REPLY, OptionOutcome.ERR_INVALID));
            }
            case 3 -> {
                int opt = random.nextBoolean() ? OPT_LIST_META_CONTEXT : OPT_SET_META_CONTEXT;
                String[][] choices = {{}, {"base:"}, {BASE_ALLOCATION}, {"x-a:b", BASE_ALLOCATION, BASE_ALLOCATION},
                        {"qemu:dirty-bitmap:x"}};
                String[] queries = choices[random.nextInt(choices.length)];
                option(opt, RawPeer.metaContextRequest("disk", queries));
                boolean named = java.util.Arrays.asList(queries).contains(BASE_ALLOCATION);
                if (opt == OPT_SET_META_CONTEXT) {
                    selected = structured && named;
                    options.add(new ExpectedOption(opt, structured ? OptionOutcome.META : OptionOutcome.ERR_INVALID,
                            named ? ServerConnection.BASE_ALLOCATION_ID : -1));
                } else {
                    boolean listed = queries.length == 0 || named || java.util.Arrays.asList(queries).contains("base:");
                    options.add(new ExpectedOption(opt, structured ? OptionOutcome.META : OptionOutcome.ERR_INVALID,
                            listed ? 0 : -1));
                }
            }
            case 4 -> {
                int opt = random.nextBoolean() ? OPT_LIST_META_CONTEXT : OPT_SET_META_CONTEXT;
                option(opt, RawPeer.metaContextRequest("nope", BASE_ALLOCATION));
                options.add(new ExpectedOption(opt, structured ? OptionOutcome.ERR_UNKNOWN : OptionOutcome.ERR_INVALID));
                if (opt == OPT_SET_META_CONTEXT) {
                    selected = false;
                }
            }
            default -> {
                int opt = random.nextBoolean() ? OPT_LIST_META_CONTEXT : OPT_SET_META_CONTEXT;
                option(opt, malformedMetaContext());
                options.add(new ExpectedOption(opt, OptionOutcome.ERR_INVALID));
                if (opt == OPT_SET_META_CONTEXT) {
                    selected = false;
                }
            }
        }
    }

    private byte[] malformedMetaContext() {
        return switch (random.nextInt(6)) {
            case 0 -> randomBytes(random.nextInt(8));                                                  // too short
            case 1 -> ByteBuffer.allocate(8).putInt(5 + random.nextInt(1000)).putInt(0).array();         // name past
            case 2 -> ByteBuffer.allocate(12).putInt(0).putInt(2 + random.nextInt(1000)).putInt(0).array(); // count
            case 3 -> ByteBuffer.allocate(12).putInt(0).putInt(1).putInt(1 + random.nextInt(100)).array(); // query past
            case 4 -> ByteBuffer.allocate(14).putInt(0).putInt(1).putInt(2).put(new byte[] {(byte) 0xFF, 0}).array();
            default -> ByteBuffer.allocate(10).putInt(0).putInt(0).put(new byte[] {1, 2}).array();       // trailing
        };
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
                CMD_FLUSH, CMD_TRIM, CMD_WRITE_ZEROES, CMD_WRITE_ZEROES, CMD_CACHE, CMD_BLOCK_STATUS, CMD_BLOCK_STATUS,
                9 + random.nextInt(100)});
        int r = random.nextInt(100);
        int flags = r < 75 ? (random.nextInt(4) == 0 ? CMD_FLAG_FUA : 0)
                : r < 85 ? pick(new int[] {CMD_FLAG_DF, CMD_FLAG_REQ_ONE, CMD_FLAG_FAST_ZERO,
                        CMD_FLAG_FAST_ZERO | CMD_FLAG_NO_HOLE})
                : r < 92 ? CMD_FLAG_NO_HOLE : random.nextInt(1 << 16);
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
        replies.put(handle, new ExpectedReply(type, flags, error, offset, length));
        if (type == CMD_WRITE && error == 0) {
            writable.set((int) offset, (int) (offset + length));
        }
    }

    /** The error the protocol calls for (see the class comment). */
    private int expectedError(int type, int flags, long offset, long length) {
        int allowed = CMD_FLAG_FUA | switch (type) {
            case CMD_WRITE_ZEROES -> CMD_FLAG_NO_HOLE | CMD_FLAG_FAST_ZERO;
            case CMD_READ -> structured ? CMD_FLAG_DF : 0;
            case CMD_BLOCK_STATUS -> CMD_FLAG_REQ_ONE;
            default -> 0;
        };
        if ((flags & ~allowed) != 0) {
            return EINVAL;
        }
        int fastZero = CMD_FLAG_FAST_ZERO | CMD_FLAG_NO_HOLE;
        boolean inside = offset >= 0 && offset <= ServerSession.DEVICE_SIZE
                && length <= ServerSession.DEVICE_SIZE - offset;
        return switch (type) {
            case CMD_READ -> length > ServerSession.MAX_PAYLOAD || !inside ? EINVAL : 0;
            case CMD_WRITE -> readOnly ? EPERM : length > ServerSession.MAX_PAYLOAD ? EINVAL : !inside ? ENOSPC : 0;
            case CMD_FLUSH -> offset != 0 || length != 0 ? EINVAL : 0;
            case CMD_TRIM -> readOnly ? EPERM : !inside ? EINVAL : 0;
            case CMD_WRITE_ZEROES -> readOnly ? EPERM : !inside ? ENOSPC
                    : (flags & fastZero) == fastZero ? ENOTSUP
                    : (flags & CMD_FLAG_FAST_ZERO) != 0 && length > 0 ? ZERO_OR_ENOTSUP : 0;
            case CMD_CACHE -> !inside ? EINVAL : 0;
            case CMD_BLOCK_STATUS -> !allocation || length == 0 || !inside ? EINVAL : 0;
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
        if (structured) {
            checkChunks(out, seen, failures);
        }
        while (!structured && out.hasRemaining()) {
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
            if (!errorMatches(error, expected)) {
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

    private static boolean errorMatches(int error, ExpectedReply expected) {
        return expected.error() == ZERO_OR_ENOTSUP ? error == 0 || error == ENOTSUP : error == expected.error();
    }

    /** The transmission replies after structured replies were negotiated: one chunk, marked done, per request. */
    private void checkChunks(ByteBuffer out, Set<Long> seen, List<String> failures) {
        while (out.hasRemaining()) {
            if (out.remaining() < STRUCTURED_REPLY_HEADER_SIZE) {
                if (!abrupt) {
                    failures.add(out.remaining() + " stray bytes at the end of the output");
                }
                return;
            }
            StructuredReplyHeader h;
            try {
                h = StructuredReplyHeader.decode(out.slice(out.position(), STRUCTURED_REPLY_HEADER_SIZE));
            } catch (ProtocolViolation e) {
                failures.add(e.getMessage());
                return;
            }
            out.position(out.position() + STRUCTURED_REPLY_HEADER_SIZE);
            ExpectedReply expected = replies.get(h.handle());
            if (expected == null) {
                failures.add("chunk for handle " + h.handle() + ", which was not a request the server should answer");
                return;
            }
            String what = "handle " + h.handle() + " (" + commandName(expected.type()) + ")";
            if (!seen.add(h.handle())) {
                failures.add("second reply for " + what);
            }
            if (h.flags() != REPLY_FLAG_DONE) {
                failures.add(what + ": chunk flags " + h.flags() + ", expected one chunk marked done");
            }
            if (out.remaining() < h.length()) {
                if (!abrupt) {
                    failures.add(what + ": chunk of " + h.length() + " bytes truncated");
                }
                return;
            }
            ByteBuffer payload = out.slice(out.position(), (int) h.length());
            out.position(out.position() + (int) h.length());
            int error = h.type() == REPLY_TYPE_ERROR && h.length() == 6 ? payload.getInt() : 0;
            if (!errorMatches(error, expected)) {
                failures.add(what + ": error " + errnoName(error) + ", expected " + errnoName(expected.error()));
                continue;
            }
            int wantType = error != 0 ? REPLY_TYPE_ERROR
                    : expected.type() == CMD_READ && expected.length() > 0 ? REPLY_TYPE_OFFSET_DATA
                    : expected.type() == CMD_BLOCK_STATUS ? REPLY_TYPE_BLOCK_STATUS : REPLY_TYPE_NONE;
            if (h.type() != wantType) {
                failures.add(what + ": chunk type " + h.type() + ", expected " + wantType);
                continue;
            }
            String problem = switch (wantType) {
                case REPLY_TYPE_ERROR -> h.length() == 6 ? null : "error chunk of " + h.length() + " bytes";
                case REPLY_TYPE_OFFSET_DATA -> h.length() != 8 + expected.length() ? "data chunk of " + h.length()
                        + " bytes" : payload.getLong() != expected.offset() ? "data at the wrong offset" : null;
                case REPLY_TYPE_BLOCK_STATUS -> blockStatusProblem(payload, expected);
                default -> h.length() == 0 ? null : "NONE chunk with " + h.length() + " bytes";
            };
            if (problem != null) {
                failures.add(what + ": " + problem);
            }
        }
    }

    private static String blockStatusProblem(ByteBuffer payload, ExpectedReply expected) {
        if (payload.remaining() < 12 || (payload.remaining() - 4) % 8 != 0) {
            return "block status payload of " + payload.remaining() + " bytes";
        }
        if (payload.getInt() != ServerConnection.BASE_ALLOCATION_ID) {
            return "block status for another context";
        }
        long sum = 0;
        int extents = 0;
        while (payload.hasRemaining()) {
            long length = Integer.toUnsignedLong(payload.getInt());
            int status = payload.getInt();
            if (length == 0 || (status & ~(STATE_HOLE | STATE_ZERO)) != 0) {
                return "extent of " + length + " bytes with status " + status;
            }
            sum += length;
            extents++;
        }
        if (sum > expected.length()) {
            return "extents cover " + sum + " bytes, " + expected.length() + " asked";
        }
        if ((expected.flags() & CMD_FLAG_REQ_ONE) != 0 && extents != 1) {
            return extents + " extents for REQ_ONE";
        }
        return null;
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
                case ABORT, ACK -> {
                    return type == REP_ACK ? null : "got " + replyTypeName(type);
                }
                case META -> {
                    if (type == REP_META_CONTEXT) {
                        if (servers++ > 0 || expected.contextId() < 0 || length < 4
                                || data.getInt() != expected.contextId()
                                || !StandardCharsets.UTF_8.decode(data).toString().equals(BASE_ALLOCATION)) {
                            return "unexpected meta context reply";
                        }
                        continue;
                    }
                    return type == REP_ACK && (servers == 1) == (expected.contextId() >= 0) ? null
                            : servers + " contexts, then " + replyTypeName(type);
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
