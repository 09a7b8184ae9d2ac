package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;

import dev.handoff.device.DeviceException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import javax.net.ssl.SSLEngine;

/**
 * The hostile-peer harnesses for the TLS handshake path, both sides.
 *
 * <p>Server: raw client bytes against a connection that requires TLS ({@link ServerSession} with
 * a {@link ServerTls}). Whatever the bytes, besides ServerSession's properties: nothing reaches
 * the device; before the upgrade every option reply is {@code NBD_REP_ERR_TLS_REQD}, except an
 * {@code NBD_REP_ACK} to ABORT (the end) or to STARTTLS (the upgrade) and {@code NBD_REP_ERR_INVALID}
 * to a STARTTLS with data; no other byte is sent in plain text (no export list, size or flags);
 * after the STARTTLS acknowledgement the server sends only TLS records. {@link #generate} makes
 * sessions together with the exact replies they must get.
 *
 * <p>Client: hostile server bytes against a client that requires TLS: it never sends an option
 * but STARTTLS (and ABORT, to leave) in plain text, always fails (nobody can finish a handshake
 * without the CA's key) with a {@link DeviceException} within its deadline, and allocates
 * nothing a server claimed.
 */
final class TlsSessions {
    private static final Duration CLIENT_DEADLINE = Duration.ofSeconds(2);
    private static ServerTls serverTls;
    private static ClientTls clientTls;
    private static byte[] clientHello;

    private TlsSessions() {
    }

    static synchronized ServerTls serverTls() {
        if (serverTls == null) {
            try {
                serverTls = new ServerTls(TlsCredentials.server(TestPki.get().server()), null);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return serverTls;
    }

    static synchronized ClientTls clientTls() {
        if (clientTls == null) {
            try {
                clientTls = new ClientTls(TlsCredentials.client(TestPki.get().clientA()), "localhost");
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return clientTls;
    }

    /** A real ClientHello record (what a JSSE client sends first), made once per JVM. */
    static synchronized byte[] clientHello() {
        if (clientHello == null) {
            try {
                SSLEngine engine = clientTls().newEngine();
                engine.beginHandshake();
                ByteBuffer out = ByteBuffer.allocate(engine.getSession().getPacketBufferSize());
                engine.wrap(ByteBuffer.allocate(0), out);
                clientHello = Arrays.copyOf(out.array(), out.position());
            } catch (javax.net.ssl.SSLException e) {
                throw new IllegalStateException(e);
            }
        }
        return clientHello.clone();
    }

    /* ---------------- Server ---------------- */

    /** What the server must answer before the upgrade, in order; {@code upgraded}: it acknowledged STARTTLS. */
    record Expected(List<int[]> replies, boolean upgraded) {
    }

    /** Runs {@code input} against a TLS-requiring connection; the failures of every property, and of {@code expected} if given. */
    static List<String> runServer(byte[] input, Expected expected) {
        ServerSession session = new ServerSession(false, serverTls());
        List<String> failures = new ArrayList<>(session.run(input));
        if (session.device.reads.get() + session.device.writes.get() + session.device.flushes.get() > 0) {
            failures.add("the device was used before TLS (reads " + session.device.reads.get() + ", writes "
                    + session.device.writes.get() + ")");
        }
        failures.addAll(checkPlainText(session.output, expected));
        return failures;
    }

    /** The server's output after its greeting: the rules of FORCEDTLS, then TLS records only. */
    static List<String> checkPlainText(byte[] output, Expected expected) {
        List<String> failures = new ArrayList<>();
        ByteBuffer out = ByteBuffer.wrap(output);
        out.position(Math.min(output.length, GREETING_SIZE));
        int index = 0;
        boolean upgraded = false;
        while (out.hasRemaining()) {
            if (out.remaining() < OPTION_REPLY_HEADER_SIZE || out.getLong(out.position()) != OPTION_REPLY_MAGIC) {
                failures.add(out.remaining() + " bytes in plain text that are not an option reply");
                return failures;
            }
            out.getLong();
            int option = out.getInt();
            int type = out.getInt();
            long length = Integer.toUnsignedLong(out.getInt());
            if (length > out.remaining()) {
                failures.add("option reply claims " + length + " bytes, " + out.remaining() + " follow");
                return failures;
            }
            out.position(out.position() + (int) length);
            String rule = allowedBeforeTls(option, type, length);
            if (rule != null) {
                failures.add(rule);
            }
            if (expected != null) {
                if (index >= expected.replies().size()) {
                    failures.add("unexpected reply " + replyTypeName(type) + " to option " + option);
                } else if (expected.replies().get(index)[0] != option || expected.replies().get(index)[1] != type) {
                    failures.add("reply " + index + ": " + replyTypeName(type) + " to option " + option + ", expected "
                            + replyTypeName(expected.replies().get(index)[1]) + " to " + expected.replies().get(index)[0]);
                }
            }
            index++;
            if (option == OPT_STARTTLS && type == REP_ACK) {
                upgraded = true;
                break;
            }
        }
        if (expected != null && index < expected.replies().size()) {
            failures.add("only " + index + " of " + expected.replies().size() + " expected replies");
        }
        if (expected != null && expected.upgraded() != upgraded) {
            failures.add(upgraded ? "upgraded to TLS unexpectedly" : "STARTTLS was not acknowledged");
        }
        if (upgraded) {
            failures.addAll(checkTlsRecords(out));
        }
        return failures;
    }

    private static String allowedBeforeTls(int option, int type, long length) {
        boolean ok = switch (option) {
            case OPT_STARTTLS -> type == REP_ACK && length == 0 || type == REP_ERR_INVALID;
            case OPT_ABORT -> type == REP_ACK;
            case OPT_EXPORT_NAME -> false; // must hang up instead
            default -> type == REP_ERR_TLS_REQD;
        };
        return ok ? null : "before TLS, option " + option + " was answered " + replyTypeName(type);
    }

    /** Records of type 20-23 with a TLS version and a length the protocol allows, to the end. */
    private static List<String> checkTlsRecords(ByteBuffer out) {
        List<String> failures = new ArrayList<>();
        while (out.hasRemaining()) {
            if (out.remaining() < 5) {
                failures.add("a TLS record header cut short after the upgrade");
                break;
            }
            int type = out.get() & 0xff;
            int major = out.get() & 0xff;
            out.get();
            int length = Short.toUnsignedInt(out.getShort());
            if (type < 20 || type > 23 || major != 3 || length > (1 << 14) + 2048 || length > out.remaining()) {
                failures.add("not a TLS record after the upgrade (type " + type + ", version " + major + ", length "
                        + length + ")");
                break;
            }
            out.position(out.position() + length);
        }
        return failures;
    }

    /** A generated hostile client session for a TLS-requiring server, with the replies it must get. */
    record Generated(byte[] input, Expected expected) {
    }

    static Generated generate(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        ByteArrayOutputStream in = new ByteArrayOutputStream();
        List<int[]> replies = new ArrayList<>();
        int flagChoice = random.nextInt(20);
        int flags = flagChoice == 0 ? 0 : flagChoice == 1 ? 0x10 : flagChoice == 2 ? CLIENT_FIXED_NEWSTYLE
                : CLIENT_FIXED_NEWSTYLE | CLIENT_NO_ZEROES;
        in.writeBytes(ByteBuffer.allocate(4).putInt(flags).array());
        boolean fixed = (flags & CLIENT_FIXED_NEWSTYLE) != 0 && flags != 0x10;
        boolean ended = flags == 0x10; // unknown flags: the server hangs up
        int options = random.nextInt(7);
        for (int i = 0; i < options && !ended; i++) {
            int kind = random.nextInt(10);
            if (!fixed) {
                // Only EXPORT_NAME exists without fixed newstyle, and a TLS server cannot serve it.
                in.writeBytes(option(OPT_EXPORT_NAME, "disk".getBytes()));
                ended = true;
                break;
            }
            int refused; // an option the server must refuse with NBD_REP_ERR_TLS_REQD
            byte[] data = new byte[0];
            switch (kind) {
                case 0 -> refused = OPT_LIST;
                case 1 -> {
                    refused = OPT_GO;
                    data = RawPeer.infoRequest("disk", INFO_BLOCK_SIZE);
                }
                case 2 -> {
                    refused = OPT_INFO;
                    data = RawPeer.infoRequest("disk");
                }
                case 3 -> {
                    refused = new int[] {OPT_STRUCTURED_REPLY, OPT_SET_META_CONTEXT, OPT_EXTENDED_HEADERS,
                            0x7000_0000 | random.nextInt(99)}[random.nextInt(4)];
                    data = bytes(random, random.nextInt(40));
                }
                case 4 -> {
                    in.writeBytes(option(OPT_STARTTLS, bytes(random, 1 + random.nextInt(40))));
                    replies.add(new int[] {OPT_STARTTLS, REP_ERR_INVALID});
                    continue;
                }
                case 5 -> {
                    in.writeBytes(option(OPT_EXPORT_NAME, "disk".getBytes()));
                    ended = true;
                    continue;
                }
                case 6 -> {
                    in.writeBytes(option(OPT_ABORT, new byte[0]));
                    replies.add(new int[] {OPT_ABORT, REP_ACK});
                    ended = true;
                    continue;
                }
                case 7 -> {
                    byte[] bad = option(OPT_GO, new byte[0]);
                    bad[random.nextInt(8)] ^= 1; // a bad option magic: hang up
                    in.writeBytes(bad);
                    ended = true;
                    continue;
                }
                default -> {
                    refused = OPT_GO;
                    data = RawPeer.infoRequest("disk");
                }
            }
            in.writeBytes(option(refused, data));
            replies.add(new int[] {refused, REP_ERR_TLS_REQD});
        }
        boolean upgraded = false;
        if (!ended && fixed && random.nextInt(10) < 7) {
            in.writeBytes(option(OPT_STARTTLS, new byte[0]));
            replies.add(new int[] {OPT_STARTTLS, REP_ACK});
            upgraded = true;
            in.writeBytes(tail(random));
        } else if (!ended) {
            in.writeBytes(bytes(random, random.nextInt(12))); // a cut frame, or nothing
        }
        return new Generated(in.toByteArray(), new Expected(replies, upgraded));
    }

    /** What follows the acknowledged STARTTLS: nothing, noise, plain text, or a ClientHello whole or damaged. */
    private static byte[] tail(SplittableRandom random) {
        byte[] hello = clientHello();
        return switch (random.nextInt(6)) {
            case 0 -> new byte[0];
            case 1 -> bytes(random, 1 + random.nextInt(600));
            case 2 -> option(OPT_GO, RawPeer.infoRequest("disk"));
            case 3 -> hello;
            case 4 -> Arrays.copyOf(hello, random.nextInt(hello.length));
            default -> {
                for (int i = 1 + random.nextInt(4); i > 0; i--) {
                    hello[random.nextInt(hello.length)] ^= (byte) (1 << random.nextInt(8));
                }
                yield hello;
            }
        };
    }

    static byte[] option(int option, byte[] data) {
        return NbdServerRobustnessTest.optionFrame(option, data);
    }

    private static byte[] bytes(SplittableRandom random, int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }

    /* ---------------- Client ---------------- */

    /** Runs a client that requires TLS against the server bytes {@code segments}; what went wrong. */
    static List<String> runClient(List<byte[]> segments) {
        List<String> failures = new ArrayList<>();
        AllocationGuard guard = new AllocationGuard(MAX_OPTION_REPLY_DATA);
        ScriptedTransport transport = new ScriptedTransport(segments);
        NbdDevice.Options options = NbdDevice.Options.defaults().withConnectTimeout(CLIENT_DEADLINE);
        ClientTls tls = clientTls(); // the first call makes the certificates: not part of the client's time
        long t0 = System.nanoTime();
        try {
            NbdDevice device = NbdDevice.open(transport, "scripted", "disk", options, guard, tls);
            device.close();
            failures.add("the client finished a TLS handshake with a server that has no key");
        } catch (DeviceException e) {
            // the only acceptable end
        } catch (Throwable e) {
            failures.add("open threw " + e);
        }
        long took = System.nanoTime() - t0;
        if (took > CLIENT_DEADLINE.plusSeconds(5).toNanos()) {
            failures.add("open took " + Duration.ofNanos(took));
        }
        failures.addAll(guard.violations());
        failures.addAll(checkClientOutput(transport.written()));
        return failures;
    }

    /** Flags, STARTTLS, then only ABORT or TLS records: no other option in plain text. */
    static List<String> checkClientOutput(byte[] written) {
        List<String> failures = new ArrayList<>();
        ByteBuffer out = ByteBuffer.wrap(written);
        if (out.remaining() < 4) {
            return failures; // no greeting to answer
        }
        out.getInt();
        if (out.remaining() < OPTION_HEADER_SIZE) {
            return failures;
        }
        OptionRequest first;
        try {
            first = OptionRequest.decode(out.slice(out.position(), OPTION_HEADER_SIZE));
        } catch (ProtocolViolation e) {
            failures.add("the client's first option is malformed");
            return failures;
        }
        out.position(out.position() + OPTION_HEADER_SIZE);
        if (first.option() != OPT_STARTTLS || first.length() != 0) {
            failures.add("the client's first option was " + first.option() + ", not STARTTLS");
            return failures;
        }
        if (out.remaining() >= 8 && out.getLong(out.position()) == IHAVEOPT) {
            int next = out.remaining() >= 12 ? out.getInt(out.position() + 8) : -1;
            if (next != OPT_ABORT || out.remaining() != OPTION_HEADER_SIZE) {
                failures.add("after STARTTLS the client sent option " + next + " in plain text");
            }
        } else if (out.hasRemaining() && (out.get(out.position()) & 0xff) != 22) {
            failures.add("after STARTTLS the client sent neither ABORT nor a TLS handshake record");
        }
        return failures;
    }

    /** Hostile server streams: a greeting and a STARTTLS answer, valid or not, then noise or nothing. */
    static List<byte[]> clientSegments(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        ByteBuffer s = ByteBuffer.allocate(GREETING_SIZE + OPTION_REPLY_HEADER_SIZE + 64);
        s.putLong(NBD_MAGIC).putLong(IHAVEOPT).putShort((short) (random.nextInt(8) == 0 ? 0
                : FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES));
        int option = random.nextInt(6) == 0 ? OPT_GO : OPT_STARTTLS;
        int type = new int[] {REP_ACK, REP_ACK, REP_ACK, REP_ERR_UNSUP, REP_ERR_POLICY, REP_INFO,
                REP_ERR_TLS_REQD}[random.nextInt(7)];
        int length = random.nextInt(5) == 0 ? random.nextInt() : random.nextInt(3) == 0 ? random.nextInt(40) : 0;
        new OptionReply(option, type, length).encode(s);
        byte[] head = Arrays.copyOf(s.array(), s.position());
        if (random.nextInt(6) == 0) {
            head[random.nextInt(head.length)] ^= (byte) (1 << random.nextInt(8));
        }
        byte[] rest = switch (random.nextInt(4)) {
            case 0 -> new byte[0];
            case 1 -> bytes(random, random.nextInt(64));
            case 2 -> clientHello(); // a handshake record, but not a server's
            default -> concat(new byte[] {22, 3, 3, 0, 40}, bytes(random, random.nextInt(60)));
        };
        return List.of(concat(head, rest));
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
