package dev.handoff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** A minimal QMP client, as a QEMU management tool would be: commands, replies and events. */
final class QmpClient implements AutoCloseable {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final long TIMEOUT_SECONDS = 60;

    private final SocketChannel channel;
    private final BlockingQueue<JsonNode> replies = new LinkedBlockingQueue<>();
    private final BlockingQueue<JsonNode> events = new LinkedBlockingQueue<>();
    private final List<String> eventLog = new ArrayList<>();
    private final List<JsonNode> allEvents = new ArrayList<>(); // guarded by eventLog
    final JsonNode greeting;
    private int nextId;

    private QmpClient(SocketChannel channel) throws IOException, InterruptedException {
        this.channel = channel;
        BlockingQueue<JsonNode> first = new LinkedBlockingQueue<>();
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel),
                    StandardCharsets.UTF_8))) {
                boolean greeted = false;
                for (String line; (line = in.readLine()) != null; ) {
                    JsonNode n = MAPPER.readTree(line);
                    if (!greeted) {
                        greeted = true;
                        first.add(n);
                    } else if (n.has("event")) {
                        synchronized (eventLog) {
                            eventLog.add(describe(n));
                            allEvents.add(n);
                        }
                        events.add(n);
                    } else {
                        replies.add(n);
                    }
                }
            } catch (IOException ignored) {
                // closed
            }
        }, "qmp-client");
        reader.setDaemon(true);
        reader.start();
        greeting = first.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        if (greeting == null) {
            throw new AssertionError("no QMP greeting");
        }
    }

    /** Connects to any process's QMP socket (qemu-storage-daemon, say) once it is up. */
    static QmpClient connect(Path socket, Process server, java.util.function.Supplier<String> diagnostics)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
        while (true) {
            if (Files.exists(socket)) {
                try {
                    SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                    ch.connect(UnixDomainSocketAddress.of(socket));
                    return new QmpClient(ch);
                } catch (IOException notYet) {
                    // bound but not listening yet
                }
            }
            if (!server.isAlive() || System.nanoTime() > deadline) {
                throw new AssertionError("no QMP socket at " + socket + ": " + diagnostics.get());
            }
            Thread.sleep(50);
        }
    }

    /** Connects once the server has created its socket. */
    static QmpClient connect(Path socket, Cli.Running server) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
        while (true) {
            if (Files.exists(socket)) {
                try {
                    SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                    ch.connect(UnixDomainSocketAddress.of(socket));
                    return new QmpClient(ch);
                } catch (IOException notYet) {
                    // bound but not listening yet
                }
            }
            if (!server.process.isAlive()) {
                throw new AssertionError("the mirror exited before its control socket was up: " + server.waitFor());
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no control socket at " + socket);
            }
            Thread.sleep(50);
        }
    }

    /** Sends a command and returns the whole reply ({"return": ...} or {"error": ...}). */
    JsonNode execute(String command, String argumentsJson) throws IOException, InterruptedException {
        ObjectNode request = MAPPER.createObjectNode();
        request.put("execute", command);
        if (argumentsJson != null) {
            request.set("arguments", MAPPER.readTree(argumentsJson));
        }
        int id = ++nextId;
        request.put("id", id);
        sendRaw(MAPPER.writeValueAsString(request));
        JsonNode reply = replies.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        if (reply == null) {
            throw new AssertionError("no reply to " + command);
        }
        if (reply.path("id").asInt() != id) {
            throw new AssertionError("reply " + reply + " does not carry id " + id);
        }
        return reply;
    }

    JsonNode execute(String command) throws IOException, InterruptedException {
        return execute(command, null);
    }

    void sendRaw(String text) throws IOException {
        ByteBuffer b = ByteBuffer.wrap((text + "\n").getBytes(StandardCharsets.UTF_8));
        while (b.hasRemaining()) {
            channel.write(b);
        }
    }

    JsonNode nextReply() throws InterruptedException {
        JsonNode r = replies.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        if (r == null) {
            throw new AssertionError("no reply");
        }
        return r;
    }

    /** Waits for the next event named {@code name} (earlier events of other names are consumed). */
    JsonNode awaitEvent(String name) throws InterruptedException {
        while (true) {
            JsonNode e = events.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS);
            if (e == null) {
                throw new AssertionError("no " + name + " event; seen: " + eventLog());
            }
            if (e.path("event").asText().equals(name)) {
                return e;
            }
        }
    }

    /** Waits for JOB_STATUS_CHANGE to {@code status}. */
    JsonNode awaitStatus(String status) throws InterruptedException {
        while (true) {
            JsonNode e = awaitEvent("JOB_STATUS_CHANGE");
            if (e.path("data").path("status").asText().equals(status)) {
                return e;
            }
        }
    }

    /** Every event so far, as "NAME" or "JOB_STATUS_CHANGE:status". */
    List<String> eventLog() {
        synchronized (eventLog) {
            return new ArrayList<>(eventLog);
        }
    }

    /** Every event so far, as received. */
    List<JsonNode> allEvents() {
        synchronized (eventLog) {
            return new ArrayList<>(allEvents);
        }
    }

    static String describe(JsonNode event) {
        String name = event.path("event").asText();
        return name.equals("JOB_STATUS_CHANGE") ? name + ":" + event.path("data").path("status").asText() : name;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
