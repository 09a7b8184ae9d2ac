package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;

import dev.handoff.device.DeviceException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Runs the client against a scripted "server" stream (handshake, then one reply segment per
 * request) and checks what must hold whatever the server sends: every call ends within its
 * deadline with success or a {@link DeviceException}, nothing else is thrown, no allocation
 * exceeds the limits, and a read buffer is never written after its call returned.
 */
final class ClientSession {
    static final long SIZE = 1 << 20;
    /** The calls, in order; request handles are 1, 2, 3, ... */
    static final int CALLS = 4;
    private static final NbdDevice.Options OPTIONS = NbdDevice.Options.defaults()
            .withConnectTimeout(Duration.ofSeconds(2)).withRequestTimeout(Duration.ofMillis(250)).withMaxInFlight(2);

    private ClientSession() {
    }

    /** A well-formed exchange for the calls: handshake, then a correct reply to each request. */
    static List<byte[]> validSegments(SplittableRandom random) {
        List<byte[]> segments = new ArrayList<>();
        ByteBuffer hs = ByteBuffer.allocate(GREETING_SIZE + 2 * OPTION_REPLY_HEADER_SIZE + 12 + 14 + OPTION_REPLY_HEADER_SIZE);
        hs.putLong(NBD_MAGIC).putLong(IHAVEOPT).putShort((short) (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES));
        new OptionReply(OPT_GO, REP_INFO, 12).encode(hs);
        hs.putShort((short) INFO_EXPORT).putLong(SIZE).putShort((short) (TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH));
        new OptionReply(OPT_GO, REP_INFO, 14).encode(hs);
        hs.putShort((short) INFO_BLOCK_SIZE).putInt(1).putInt(4096).putInt(1 << 16);
        new OptionReply(OPT_GO, REP_ACK, 0).encode(hs);
        segments.add(hs.array());
        int[] readLengths = {4096, 0, 0, 8192};
        for (int i = 0; i < CALLS; i++) {
            int error = random.nextInt(4) == 0 ? new int[] {EIO, EPERM, ENOSPC, EINVAL, ESHUTDOWN}[random.nextInt(5)] : 0;
            int data = error == 0 ? readLengths[i] : 0;
            ByteBuffer r = ByteBuffer.allocate(SIMPLE_REPLY_SIZE + data);
            new SimpleReply(error, i + 1).encode(r);
            byte[] payload = new byte[data];
            random.nextBytes(payload);
            segments.add(r.put(payload).array());
        }
        return segments;
    }

    /**
     * A well-formed exchange with structured replies and base:allocation (context 7): the reads come
     * back in one to three data and hole chunks, the other requests as NONE chunks, errors as ERROR
     * chunks, and a fifth call, {@code nextData(0)}, gets a block status.
     */
    static List<byte[]> validStructuredSegments(SplittableRandom random) {
        List<byte[]> segments = new ArrayList<>();
        byte[] name = BASE_ALLOCATION.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        ByteBuffer hs = ByteBuffer.allocate(GREETING_SIZE + 6 * OPTION_REPLY_HEADER_SIZE + 4 + name.length + 12 + 14);
        hs.putLong(NBD_MAGIC).putLong(IHAVEOPT).putShort((short) (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES));
        new OptionReply(OPT_STRUCTURED_REPLY, REP_ACK, 0).encode(hs);
        new OptionReply(OPT_SET_META_CONTEXT, REP_META_CONTEXT, 4 + name.length).encode(hs);
        hs.putInt(7).put(name);
        new OptionReply(OPT_SET_META_CONTEXT, REP_ACK, 0).encode(hs);
        new OptionReply(OPT_GO, REP_INFO, 12).encode(hs);
        hs.putShort((short) INFO_EXPORT).putLong(SIZE).putShort((short) (TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH));
        new OptionReply(OPT_GO, REP_INFO, 14).encode(hs);
        hs.putShort((short) INFO_BLOCK_SIZE).putInt(1).putInt(4096).putInt(1 << 16);
        new OptionReply(OPT_GO, REP_ACK, 0).encode(hs);
        segments.add(hs.array());
        long[][] reads = {{0, 4096}, null, null, {8192, 8192}};
        for (int i = 0; i < CALLS + 1; i++) {
            long handle = i + 1;
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            if (random.nextInt(5) == 0) {
                int error = new int[] {EIO, EPERM, ENOSPC, EINVAL, ESHUTDOWN}[random.nextInt(5)];
                chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_ERROR, handle, ByteBuffer.allocate(6).putInt(error).array());
            } else if (i == CALLS) {
                chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, handle, ByteBuffer.allocate(20).putInt(7)
                        .putInt(4096).putInt(STATE_HOLE | STATE_ZERO).putInt((int) SIZE - 4096).putInt(0).array());
            } else if (reads[i] == null) {
                chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_NONE, handle, new byte[0]);
            } else {
                long at = reads[i][0];
                long end = at + reads[i][1];
                int pieces = 1 + random.nextInt(3);
                for (int k = 0; k < pieces; k++) {
                    long next = k == pieces - 1 ? end : at + 512 * (1 + random.nextInt((int) (end - at) / 512 / 2));
                    boolean last = next == end;
                    if (random.nextBoolean()) {
                        byte[] data = new byte[(int) (next - at)];
                        random.nextBytes(data);
                        chunk(out, last ? REPLY_FLAG_DONE : 0, REPLY_TYPE_OFFSET_DATA, handle,
                                ByteBuffer.allocate(8 + data.length).putLong(at).put(data).array());
                    } else {
                        chunk(out, last ? REPLY_FLAG_DONE : 0, REPLY_TYPE_OFFSET_HOLE, handle,
                                ByteBuffer.allocate(12).putLong(at).putInt((int) (next - at)).array());
                    }
                    at = next;
                    if (last) {
                        break;
                    }
                }
            }
            segments.add(out.toByteArray());
        }
        return segments;
    }

    private static void chunk(java.io.ByteArrayOutputStream out, int flags, int type, long handle, byte[] payload) {
        ByteBuffer b = ByteBuffer.allocate(STRUCTURED_REPLY_HEADER_SIZE + payload.length);
        new StructuredReplyHeader(flags, type, handle, payload.length).encode(b);
        out.writeBytes(b.put(payload).array());
    }

    /** Flips bits, truncates, drops, duplicates or corrupts length fields of a valid exchange. */
    static List<byte[]> mutate(List<byte[]> segments, SplittableRandom random) {
        List<byte[]> out = new ArrayList<>();
        for (byte[] s : segments) {
            out.add(s.clone());
        }
        int mutations = 1 + random.nextInt(3);
        for (int m = 0; m < mutations; m++) {
            int i = random.nextInt(out.size());
            byte[] s = out.get(i);
            switch (random.nextInt(6)) {
                case 0 -> {
                    if (s.length > 0) {
                        s[random.nextInt(s.length)] ^= (byte) (1 << random.nextInt(8));
                    }
                }
                case 1 -> out.set(i, Arrays.copyOf(s, s.length == 0 ? 0 : random.nextInt(s.length)));
                case 2 -> {
                    if (s.length >= 4) {
                        int at = random.nextInt(s.length - 3);
                        ByteBuffer.wrap(s).putInt(at, random.nextBoolean() ? -1 - random.nextInt(100) : random.nextInt());
                    }
                }
                case 3 -> {
                    byte[] extra = new byte[random.nextInt(64)];
                    random.nextBytes(extra);
                    out.set(i, concat(s, extra));
                }
                case 4 -> out.remove(i);
                default -> out.add(i, s.clone());
            }
            if (out.isEmpty()) {
                out.add(new byte[0]);
            }
        }
        return out;
    }

    /** Runs the calls over {@code segments}; returns what went wrong (empty if nothing). */
    static List<String> run(List<byte[]> segments) {
        return run(segments, false);
    }

    /** As above; {@code structured}: the client asks for the allocation map, and a fifth call asks it. */
    static List<String> run(List<byte[]> segments, boolean structured) {
        NbdDevice.Options options = structured ? OPTIONS.withAllocationMap(true) : OPTIONS;
        List<String> failures = new ArrayList<>();
        AllocationGuard guard = new AllocationGuard(MAX_OPTION_REPLY_DATA);
        ScriptedTransport transport = new ScriptedTransport(segments);
        long t0 = System.nanoTime();
        NbdDevice device;
        try {
            device = NbdDevice.open(transport, "scripted", "disk", options, guard);
        } catch (DeviceException e) {
            failures.addAll(guard.violations());
            checkTime(t0, OPTIONS.connectTimeout(), "open", failures);
            return failures;
        } catch (Throwable e) {
            failures.add("open threw " + e);
            failures.addAll(guard.violations());
            return failures;
        }
        try {
            byte[] first = new byte[4096];
            byte[] last = new byte[8192];
            call(failures, "read", () -> device.read(0, ByteBuffer.wrap(first)));
            byte[] firstAfter = first.clone();
            call(failures, "write", () -> device.write(4096, ByteBuffer.allocate(512)));
            call(failures, "flush", device::flush);
            call(failures, "read", () -> device.read(8192, ByteBuffer.wrap(last)));
            byte[] lastAfter = last.clone();
            if (structured) {
                call(failures, "nextData", () -> {
                    long d = device.nextData(0);
                    if (d < 0 || d > SIZE) {
                        throw new AssertionError("nextData(0) = " + d);
                    }
                });
            }
            device.close();
            if (!Arrays.equals(first, firstAfter) || !Arrays.equals(last, lastAfter)) {
                failures.add("a read buffer changed after its call returned");
            }
        } catch (Throwable e) {
            failures.add("unexpected " + e);
        } finally {
            transport.close();
            device.close();
        }
        failures.addAll(guard.violations());
        return failures;
    }

    private interface Call {
        void run() throws Exception;
    }

    private static void call(List<String> failures, String what, Call call) {
        long t0 = System.nanoTime();
        try {
            call.run();
        } catch (DeviceException e) {
            // the documented outcome for a broken server
        } catch (Throwable e) {
            failures.add(what + " threw " + e);
        }
        // A call may wait for a permit and then for its reply: two request timeouts, plus slack.
        checkTime(t0, OPTIONS.requestTimeout().multipliedBy(2), what, failures);
    }

    private static void checkTime(long t0, Duration bound, String what, List<String> failures) {
        long took = System.nanoTime() - t0;
        if (took > bound.toNanos() + TimeUnit.SECONDS.toNanos(5)) {
            failures.add(what + " took " + Duration.ofNanos(took) + ", bound " + bound);
        }
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
