package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;

import dev.handoff.device.MemoryDevice;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Semaphore;

/**
 * Runs one server connection over an in-memory stream of client bytes, to its end, and checks the
 * properties every session must have whatever the bytes were:
 * <ul>
 *   <li>the connection ends (within a bound: no hang) and nothing escapes it (no crash);</li>
 *   <li>no request reaches the device outside the export, and no write reaches a read-only one;</li>
 *   <li>no buffer larger than the limits is ever allocated (the claimed sizes are never trusted);</li>
 *   <li>the server's output starts with the greeting and is a well-formed sequence of frames.</li>
 * </ul>
 * {@link ServerSessionModel} adds the exact expected replies for generated sessions.
 */
final class ServerSession {
    static final long DEVICE_SIZE = (1 << 20) + 517;   // unaligned tail on purpose
    static final int MAX_PAYLOAD = 64 << 10;           // small, so that oversized requests are easy to reach
    static final int MAX_OPTIONS = 16;
    static final Duration HANG = Duration.ofSeconds(20);

    final MemoryDevice memory = new MemoryDevice(DEVICE_SIZE);
    final GuardedDevice device;
    final AllocationGuard allocations = new AllocationGuard(Math.max(MAX_PAYLOAD, MAX_OPTION_DATA));
    final boolean readOnly;
    /** The TLS the server requires, or null. */
    final ServerTls tls;
    byte[] output;
    final List<String> failures = new ArrayList<>();

    ServerSession(boolean readOnly) {
        this(readOnly, null);
    }

    ServerSession(boolean readOnly, ServerTls tls) {
        this.readOnly = readOnly;
        this.tls = tls;
        this.device = new GuardedDevice(memory, readOnly);
    }

    static ServerLimits limits() {
        return new ServerLimits(4, 3, true, Duration.ofNanos(5_000), 8, 4L * MAX_PAYLOAD, 4L * MAX_PAYLOAD, MAX_PAYLOAD, MAX_OPTIONS,
                Duration.ofSeconds(30), Duration.ofSeconds(30), Duration.ofSeconds(5));
    }

    /** Runs the connection over {@code input}; returns the failures of the generic properties. */
    List<String> run(byte[] input) {
        MemoryTransport transport = new MemoryTransport(input);
        NbdExport export = new NbdExport("disk", device, readOnly, "fuzzed");
        ServerConnection.Host host = new ServerConnection.Host() {
            @Override
            public NbdExport export(String name) {
                return name.equals("disk") ? export : null;
            }

            @Override
            public List<NbdExport> exports() {
                return List.of(export);
            }

            @Override
            public void closed(ServerConnection connection) {
            }

            @Override
            public ServerTls tls() {
                return tls;
            }
        };
        ServerLimits limits = limits();
        ServerConnection connection = new ServerConnection(1, transport, host, limits,
                new Semaphore((int) limits.maxBytesInFlight()), allocations);
        Throwable[] escaped = new Throwable[1];
        Thread thread = new Thread(() -> {
            try {
                connection.run();
            } catch (Throwable e) {
                escaped[0] = e;
            }
        }, "fuzzed-session");
        thread.start();
        try {
            thread.join(HANG.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (thread.isAlive()) {
            failures.add("the session did not end within " + HANG);
            connection.closeNow("test");
        }
        if (escaped[0] != null) {
            failures.add("exception escaped the connection: " + escaped[0]);
        }
        output = transport.written();
        failures.addAll(device.violations());
        failures.addAll(allocations.violations());
        checkGreeting();
        return failures;
    }

    private void checkGreeting() {
        if (output.length < GREETING_SIZE) {
            failures.add("output of " + output.length + " bytes has no complete greeting");
            return;
        }
        ByteBuffer g = ByteBuffer.wrap(output, 0, GREETING_SIZE);
        if (g.getLong() != NBD_MAGIC || g.getLong() != IHAVEOPT
                || g.getShort() != (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)) {
            failures.add("bad greeting");
        }
    }

    /**
     * Checks that everything after the greeting parses as option replies followed, optionally, by
     * an export-name reply and simple replies. Without knowing the requests, a READ's data can not
     * be told from the next reply, so this only walks the option replies and checks every simple
     * reply magic it can find at a frame boundary; {@link ServerSessionModel} checks exactly.
     */
    void checkOptionRepliesWellFormed() {
        ByteBuffer out = ByteBuffer.wrap(output);
        out.position(Math.min(output.length, GREETING_SIZE));
        while (out.remaining() >= OPTION_REPLY_HEADER_SIZE) {
            long magic = out.getLong(out.position());
            if (magic != OPTION_REPLY_MAGIC) {
                return; // transmission (or an export-name reply) begins
            }
            out.getLong();
            out.getInt();
            int type = out.getInt();
            long length = Integer.toUnsignedLong(out.getInt());
            if (length > out.remaining()) {
                failures.add("option reply of type " + replyTypeName(type) + " claims " + length + " bytes, "
                        + out.remaining() + " follow");
                return;
            }
            out.position(out.position() + (int) length);
        }
    }

    byte[] deviceBytes() {
        try {
            return TestData.read(memory, 0, (int) DEVICE_SIZE);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
