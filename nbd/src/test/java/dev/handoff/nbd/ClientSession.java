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
        List<String> failures = new ArrayList<>();
        AllocationGuard guard = new AllocationGuard(MAX_OPTION_REPLY_DATA);
        ScriptedTransport transport = new ScriptedTransport(segments);
        long t0 = System.nanoTime();
        NbdDevice device;
        try {
            device = NbdDevice.open(transport, "scripted", "disk", OPTIONS, guard);
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
