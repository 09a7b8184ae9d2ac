package dev.handoff.bench.compare;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.ByteArrayOutputStream;
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
import java.util.function.Predicate;

/**
 * A QMP client on a unix socket, the same for QEMU's monitor and Handoff's control socket:
 * greeting, {@code qmp_capabilities}, then commands one at a time. A reader thread splits the
 * stream into JSON values and files each as a reply or as an event, stamped with the local
 * {@link System#nanoTime()} of its arrival.
 *
 * <p>The socket channel is read and written directly: the {@code Channels} stream adapters would
 * serialize a blocked read with a write.
 */
final class Qmp implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** An event and when it arrived here. */
    record Event(String name, JsonNode data, JsonNode timestamp, long arrivedNanos) {
        /** QEMU's event timestamp in seconds (wall clock of the sender). */
        double sentSeconds() {
            return timestamp.path("seconds").asLong() + timestamp.path("microseconds").asLong() / 1e6;
        }
    }

    private final SocketChannel channel;
    private final BlockingQueue<JsonNode> replies = new LinkedBlockingQueue<>();
    private final List<Event> events = new ArrayList<>(); // guarded by itself
    private final Thread reader;
    private volatile IOException failure;

    private Qmp(SocketChannel channel) {
        this.channel = channel;
        this.reader = new Thread(this::readLoop, "qmp-reader");
        reader.setDaemon(true);
        reader.start();
    }

    /** Connects (retrying until the socket accepts, up to {@code timeout}) and negotiates capabilities. */
    static Qmp connect(Path socket, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            try {
                ch.connect(UnixDomainSocketAddress.of(socket));
                Qmp q = new Qmp(ch);
                q.awaitReply(timeout); // the greeting
                q.execute("qmp_capabilities", null);
                return q;
            } catch (IOException e) {
                ch.close();
                if (System.nanoTime() - deadline > 0) {
                    throw new IOException("cannot connect to QMP at " + socket + ": " + e.getMessage(), e);
                }
                Thread.sleep(20);
            }
        }
    }

    /** Runs a command; returns its "return" value or throws with its "error". */
    JsonNode execute(String command, ObjectNode arguments) throws IOException, InterruptedException {
        ObjectNode request = JSON.createObjectNode();
        request.put("execute", command);
        if (arguments != null) {
            request.set("arguments", arguments);
        }
        ByteBuffer bytes = ByteBuffer.wrap((JSON.writeValueAsString(request) + "\n").getBytes(StandardCharsets.UTF_8));
        while (bytes.hasRemaining()) {
            channel.write(bytes);
        }
        JsonNode reply = awaitReply(Duration.ofSeconds(60));
        if (reply.has("error")) {
            throw new IOException(command + " failed: " + reply.get("error"));
        }
        return reply.get("return");
    }

    static ObjectNode args() {
        return JSON.createObjectNode();
    }

    /** The first event called {@code name} (already arrived, or arriving within {@code timeout}). */
    Event awaitEvent(String name, Duration timeout) throws IOException, InterruptedException {
        Event e = firstEvent(name, ev -> ev.name().equals(name), timeout);
        if (e == null) {
            throw new IOException("no " + name + " event within " + timeout.toSeconds() + " s; events: " + names());
        }
        return e;
    }

    /** The first event called {@code name} arriving within {@code timeout}, or null if none did. */
    Event pollEvent(String name, Duration timeout) throws IOException, InterruptedException {
        return firstEvent(name, ev -> ev.name().equals(name), timeout);
    }

    /** The first JOB_STATUS_CHANGE to {@code status}. */
    Event awaitStatus(String status, Duration timeout) throws IOException, InterruptedException {
        Event e = firstEvent("JOB_STATUS_CHANGE to " + status, ev -> ev.name().equals("JOB_STATUS_CHANGE")
                && status.equals(ev.data().path("status").asText()), timeout);
        if (e == null) {
            throw new IOException("no JOB_STATUS_CHANGE to " + status + " within " + timeout.toSeconds() + " s; events: "
                    + names());
        }
        return e;
    }

    /**
     * The one wait of every event query: the first event that {@code matches}, already arrived or
     * arriving within {@code timeout}; null when the time is up. A lost connection throws, naming
     * {@code what} was awaited. The reader thread adds events and notifies under the same monitor.
     */
    private Event firstEvent(String what, Predicate<Event> matches, Duration timeout)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (events) {
            while (true) {
                for (Event e : events) {
                    if (matches.test(e)) {
                        return e;
                    }
                }
                if (failure != null) {
                    throw new IOException("QMP connection lost while waiting for " + what, failure);
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return null;
                }
                TimeUnit.NANOSECONDS.timedWait(events, left);
            }
        }
    }

    private List<String> names() {
        List<String> n = new ArrayList<>();
        synchronized (events) {
            for (Event e : events) {
                n.add(e.name() + (e.data().has("status") ? ":" + e.data().get("status").asText() : ""));
            }
        }
        return n;
    }

    private JsonNode awaitReply(Duration timeout) throws IOException, InterruptedException {
        JsonNode r = replies.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
        if (r == null) {
            throw new IOException("no QMP reply within " + timeout.toSeconds() + " s"
                    + (failure != null ? ": " + failure.getMessage() : ""));
        }
        return r;
    }

    private void readLoop() {
        ByteBuffer buf = ByteBuffer.allocate(64 << 10);
        ByteArrayOutputStream value = new ByteArrayOutputStream();
        int depth = 0;
        boolean inString = false;
        boolean escaped = false;
        try {
            while (channel.read(buf) >= 0) {
                long now = System.nanoTime();
                buf.flip();
                while (buf.hasRemaining()) {
                    byte b = buf.get();
                    if (depth == 0 && b != '{') {
                        continue; // whitespace between values
                    }
                    value.write(b);
                    if (inString) {
                        if (escaped) {
                            escaped = false;
                        } else if (b == '\\') {
                            escaped = true;
                        } else if (b == '"') {
                            inString = false;
                        }
                    } else if (b == '"') {
                        inString = true;
                    } else if (b == '{' || b == '[') {
                        depth++;
                    } else if (b == '}' || b == ']') {
                        if (--depth == 0) {
                            dispatch(JSON.readTree(value.toByteArray()), now);
                            value.reset();
                        }
                    }
                }
                buf.clear();
            }
            failure = new IOException("QMP peer closed the connection");
        } catch (IOException e) {
            failure = e;
        }
        synchronized (events) {
            events.notifyAll();
        }
    }

    private void dispatch(JsonNode message, long arrivedNanos) {
        if (message.has("event")) {
            synchronized (events) {
                events.add(new Event(message.get("event").asText(), message.path("data"), message.path("timestamp"),
                        arrivedNanos));
                events.notifyAll();
            }
        } else {
            replies.add(message);
        }
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }
}
