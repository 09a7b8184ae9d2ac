package dev.handoff.nbd;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Just enough QMP to drive qemu-storage-daemon from a test: QEMU sends one JSON object per line,
 * so commands are strings and replies and events are matched by substring. Every wait has a
 * deadline.
 */
final class Qmp implements AutoCloseable {
    private final SocketChannel channel;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final List<String> seen = new ArrayList<>();
    private final Thread reader;

    Qmp(Path socket) throws IOException, InterruptedException {
        channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        channel.connect(UnixDomainSocketAddress.of(socket));
        reader = new Thread(this::readLines, "qmp-reader");
        reader.setDaemon(true);
        reader.start();
        expect("\"QMP\"", QemuTools.TIMEOUT);
        execute("{\"execute\":\"qmp_capabilities\"}");
    }

    private void readLines() {
        ByteBuffer buffer = ByteBuffer.allocate(64 << 10);
        StringBuilder line = new StringBuilder();
        try {
            while (channel.read(buffer) >= 0) {
                buffer.flip();
                String chunk = StandardCharsets.UTF_8.decode(buffer).toString();
                buffer.clear();
                for (char c : chunk.toCharArray()) {
                    if (c == '\n') {
                        lines.add(line.toString());
                        line.setLength(0);
                    } else {
                        line.append(c);
                    }
                }
            }
        } catch (IOException e) {
            // closed
        }
        lines.add("<closed>");
    }

    /** Sends a command and returns its reply ("return" or "error"), keeping events seen meanwhile. */
    String execute(String command) throws IOException, InterruptedException {
        FrameIo.writeFully(channel, ByteBuffer.wrap((command + "\n").getBytes(StandardCharsets.UTF_8)));
        String reply = expectAny(QemuTools.TIMEOUT, "\"return\"", "\"error\"");
        if (reply.contains("\"error\"")) {
            fail("QMP " + command + " failed: " + reply);
        }
        return reply;
    }

    /** Waits for an event (or any line) containing {@code text}; events seen before count too. */
    String expect(String text, Duration timeout) throws InterruptedException {
        return expectAny(timeout, text);
    }

    private String expectAny(Duration timeout, String... texts) throws InterruptedException {
        for (String line : seen) {
            for (String t : texts) {
                if (line.contains(t) && !t.equals("\"return\"") && !t.equals("\"error\"")) {
                    seen.remove(line);
                    return line;
                }
            }
        }
        long end = System.nanoTime() + timeout.toNanos();
        while (true) {
            long left = end - System.nanoTime();
            String line = left <= 0 ? null : lines.poll(left, TimeUnit.NANOSECONDS);
            if (line == null) {
                fail("QMP: nothing containing " + String.join(" or ", texts) + " within " + timeout + "; seen " + seen);
            }
            if (line.equals("<closed>")) {
                fail("QMP connection closed while waiting for " + String.join(" or ", texts) + "; seen " + seen);
            }
            for (String t : texts) {
                if (line.contains(t)) {
                    return line;
                }
            }
            seen.add(line);
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
