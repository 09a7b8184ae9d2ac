package dev.handoff.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.nbd.UnixSockets;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A QMP-shaped server on a unix socket: QEMU's wire protocol (greeting, capabilities negotiation,
 * {@code {"execute": ..., "arguments": ..., "id": ...}} commands, {@code return}/{@code error}
 * replies, asynchronous events), so that clients written for QEMU's monitor connect unchanged.
 *
 * <p>Each client gets a thread that reads a stream of JSON values (one command per value; newlines
 * optional, as in QEMU) and answers in order. A syntax error gets an error reply and the session
 * goes on, as in QEMU: {@link QmpStreamer} finds where the next message starts. Events go only to clients that have negotiated
 * capabilities, as in QEMU. Writes to a client are whole lines under the session's lock, so a
 * reply and an event never interleave. Reads and writes use the channel directly: the
 * {@code Channels} stream adapters serialize reads and writes on one lock, which would hold
 * events back while the reader waits.
 *
 * <p>Access modes (CONTRIBUTING, "One accessor convention"): {@code closed} is stored by
 * {@link #close} ({@code svClosed}) and loaded by the accept loop ({@code lvClosed}). The two are
 * a store-load pair: the loop publishes a session in {@code sessions}, then loads {@code closed};
 * close stores {@code closed}, then reads {@code sessions}; all volatile (the list's add and
 * iteration are), so a session accepted while the server closes is closed by one of them. A
 * session's {@code negotiated} is stored by its own thread ({@code svNegotiated}), read there
 * plain ({@code lpNegotiated}) and by {@link #broadcast} on any thread ({@code lvNegotiated},
 * pairing with the store; an acquire load would do).
 */
final class QmpServer implements AutoCloseable {
    private static final VarHandle CLOSED;

    static {
        try {
            CLOSED = MethodHandles.lookup().findVarHandle(QmpServer.class, "closed", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }


    /** Executes the commands of one server; called from session threads, possibly at once. */
    interface Handler {
        /** Runs {@code command}; returns the value of "return" (an empty object for none). */
        JsonNode execute(String command, ObjectNode arguments) throws QmpException;

        /** The command names it knows, for query-commands. */
        Set<String> commands();
    }

    private final Path path;
    private final ServerSocketChannel server;
    private final Handler handler;
    private final String packageName;
    private final List<Session> sessions = new CopyOnWriteArrayList<>();
    private volatile boolean closed; // through the accessors ("Access modes")
    /** How long {@link #close()} lets commands in progress finish their replies. */
    private static final long DRAIN_MILLIS = 2_000;

    private QmpServer(Path path, ServerSocketChannel server, Handler handler, String packageName) {
        this.path = path;
        this.server = server;
        this.handler = handler;
        this.packageName = packageName;
    }

    /**
     * Checks that a server could listen at {@code path}: absent, or a socket no one listens on (left
     * over by a process that died). Changes nothing.
     */
    static void check(Path path) throws CliException {
        if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            Path parent = path.toAbsolutePath().getParent();
            if (parent == null || !Files.isDirectory(parent)) {
                throw new CliException(ExitCodes.USAGE, "control socket " + path + ": no such directory " + parent);
            }
            return;
        }
        if (!isSocket(path)) {
            throw new CliException(ExitCodes.USAGE, "control socket " + path + " exists and is not a socket");
        }
        boolean listening;
        try {
            SocketChannel.open(UnixDomainSocketAddress.of(path)).close();
            listening = true;
        } catch (IOException stale) {
            listening = false; // nobody listens: bind() replaces it
        }
        if (listening) {
            throw new CliException(ExitCodes.BUSY, "control socket " + path + " is in use by another process");
        }
    }

    /** Listens at {@code path} (replacing a stale socket there), owner only, and starts accepting clients. */
    static QmpServer bind(Path path, Handler handler, String packageName) throws CliException {
        return bind(path, UnixSockets.OWNER_ONLY, handler, packageName);
    }

    /**
     * Listens at {@code path} (replacing a stale socket there) with permissions {@code mode}, and
     * starts accepting clients. Whoever may connect may stop the job: the default is the owner only.
     */
    static QmpServer bind(Path path, Set<PosixFilePermission> mode, Handler handler, String packageName)
            throws CliException {
        check(path);
        ServerSocketChannel server;
        try {
            if (Files.exists(path, LinkOption.NOFOLLOW_LINKS) && isSocket(path)) {
                Files.delete(path);
            }
            server = UnixSockets.bind(path, mode);
        } catch (IOException | RuntimeException e) {
            throw new CliException(ExitCodes.USAGE, "cannot listen on control socket " + path + ": " + e.getMessage());
        }
        QmpServer qmp = new QmpServer(path, server, handler, packageName);
        Thread acceptor = new Thread(qmp::acceptLoop, "qmp-accept");
        acceptor.setDaemon(true);
        acceptor.start();
        return qmp;
    }

    Path path() {
        return path;
    }

    /** Sends {@code event} to every client that has negotiated capabilities. */
    void broadcast(ObjectNode event) {
        String line = Json.line(event);
        for (Session s : sessions) {
            if (s.lvNegotiated()) {
                s.send(line);
            }
        }
    }

    /**
     * Stops listening, disconnects every client and removes the socket file. A command already
     * being executed still gets its reply: each session stops reading first, finishes the command
     * in hand (waiting at most {@link #DRAIN_MILLIS} in all), and only then is disconnected. Without
     * this, a {@code block-job-cancel} that ends the job could lose its reply to the shutdown its own
     * effect triggers.
     */
    @Override
    public void close() {
        svClosed(); // then reads the sessions: the store-load pair with acceptLoop
        try {
            server.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        for (Session s : sessions) {
            s.stopReading();
        }
        long deadline = System.nanoTime() + DRAIN_MILLIS * 1_000_000L;
        for (Session s : sessions) {
            s.awaitDrained(deadline);
        }
        for (Session s : sessions) {
            s.close();
        }
        try {
            Files.deleteIfExists(path);
        } catch (IOException ignored) {
            // a stale socket is replaced by the next bind
        }
    }

    private void acceptLoop() {
        while (!lvClosed()) {
            SocketChannel client;
            try {
                client = server.accept();
            } catch (IOException e) {
                return; // closed
            }
            Session s = new Session(client);
            Thread t = new Thread(s::run, "qmp-session");
            t.setDaemon(true);
            s.thread = t;
            sessions.add(s);
            t.start();
            if (lvClosed()) {
                s.close(); // accepted while close() ran: it may not have seen this session
            }
        }
    }

    private static boolean isSocket(Path path) {
        try {
            int mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            return (mode & 0170000) == 0140000;
        } catch (IOException | UnsupportedOperationException e) {
            return false;
        }
    }

    /** One client connection. */
    private final class Session {
        private final SocketChannel channel;
        private final Object writeLock = new Object();
        private static final VarHandle NEGOTIATED;

        static {
            try {
                NEGOTIATED = MethodHandles.lookup().findVarHandle(Session.class, "negotiated", boolean.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        private volatile boolean negotiated; // through the accessors below ("Access modes")
        /** The thread running {@link #run}; set before the session is published to {@link #sessions}. */
        Thread thread;

        Session(SocketChannel channel) {
            this.channel = channel;
        }

        boolean lvNegotiated() {
            return (boolean) NEGOTIATED.getVolatile(this); // broadcast, any thread; pairs with svNegotiated
        }

        private boolean lpNegotiated() {
            return (boolean) NEGOTIATED.get(this); // the session's own thread, the only writer
        }

        private void svNegotiated() {
            NEGOTIATED.setVolatile(this, true); // the session's thread; a release would do
        }

        void run() {
            try {
                send(Json.line(greeting()));
                QmpStreamer streamer = new QmpStreamer(new QmpStreamer.Sink() {
                    @Override
                    public void message(String json) {
                        JsonNode request;
                        try {
                            request = Json.lenient().readTree(json);
                        } catch (JsonProcessingException e) {
                            reply(null, QmpServer.Session.this.error(QmpException.GENERIC,
                                    "JSON parse error, " + e.getOriginalMessage()));
                            return;
                        }
                        handle(request);
                    }

                    @Override
                    public void error(String description) {
                        reply(null, QmpServer.Session.this.error(QmpException.GENERIC, description));
                    }
                });
                ByteBuffer in = ByteBuffer.allocate(8192);
                while (channel.read(in.clear()) >= 0) {
                    streamer.feed(in.array(), in.position());
                }
            } catch (ClosedChannelException e) {
                // server closing
            } catch (IOException e) {
                // client went away
            } finally {
                close();
            }
        }

        private void handle(JsonNode request) {
            if (!request.isObject()) {
                reply(null, error(QmpException.GENERIC, "QMP input must be a JSON object"));
                return;
            }
            JsonNode id = request.get("id");
            Iterator<String> names = request.fieldNames();
            while (names.hasNext()) {
                String n = names.next();
                if (!n.equals("execute") && !n.equals("arguments") && !n.equals("id")) {
                    reply(id, error(QmpException.GENERIC, "QMP input member '" + n + "' is unexpected"));
                    return;
                }
            }
            JsonNode execute = request.get("execute");
            if (execute == null) {
                reply(id, error(QmpException.GENERIC, "QMP input lacks member 'execute'"));
                return;
            }
            if (!execute.isTextual()) {
                reply(id, error(QmpException.GENERIC, "QMP input member 'execute' must be a string"));
                return;
            }
            JsonNode arguments = request.get("arguments");
            if (arguments != null && !arguments.isObject()) {
                reply(id, error(QmpException.GENERIC, "QMP input member 'arguments' must be an object"));
                return;
            }
            ObjectNode args = arguments != null ? (ObjectNode) arguments : Json.object();
            String command = execute.asText();
            ObjectNode response = Json.object();
            try {
                response.set("return", dispatch(command, args));
            } catch (QmpException e) {
                response = error(e.errorClass(), e.getMessage());
            } catch (RuntimeException e) {
                response = error(QmpException.GENERIC, "internal error: " + e);
            }
            reply(id, response);
        }

        private JsonNode dispatch(String command, ObjectNode args) throws QmpException {
            if (command.equals("qmp_capabilities")) {
                if (lpNegotiated()) {
                    throw new QmpException(QmpException.COMMAND_NOT_FOUND,
                            "Capabilities negotiation is already complete, command ignored");
                }
                JsonNode enable = args.get("enable");
                if (enable != null && enable.size() > 0) {
                    throw QmpException.generic("Capability '" + enable.get(0).asText() + "' is not available");
                }
                svNegotiated();
                return Json.object();
            }
            if (!lpNegotiated()) {
                throw new QmpException(QmpException.COMMAND_NOT_FOUND,
                        "Expecting capabilities negotiation with 'qmp_capabilities'");
            }
            switch (command) {
                case "query-version":
                    return greeting().get("QMP").get("version");
                case "query-commands": {
                    ArrayNode list = Json.array();
                    Set<String> all = new TreeSet<>(handler.commands());
                    all.add("qmp_capabilities");
                    all.add("query-version");
                    all.add("query-commands");
                    for (String c : all) {
                        list.addObject().put("name", c);
                    }
                    return list;
                }
                default:
                    if (!handler.commands().contains(command)) {
                        throw new QmpException(QmpException.COMMAND_NOT_FOUND, "The command " + command + " has not been found");
                    }
                    return handler.execute(command, args);
            }
        }

        private ObjectNode greeting() {
            ObjectNode g = Json.object();
            ObjectNode qmp = g.putObject("QMP");
            ObjectNode version = qmp.putObject("version");
            ObjectNode q = version.putObject("qemu");
            q.put("micro", 0);
            q.put("minor", 1);
            q.put("major", 0);
            version.put("package", packageName);
            qmp.putArray("capabilities");
            return g;
        }

        private ObjectNode error(String errorClass, String desc) {
            ObjectNode r = Json.object();
            ObjectNode e = r.putObject("error");
            e.put("class", errorClass);
            e.put("desc", desc);
            return r;
        }

        private void reply(JsonNode id, ObjectNode response) {
            if (id != null) {
                response.set("id", id);
            }
            send(Json.line(response));
        }

        void send(String line) {
            ByteBuffer bytes = ByteBuffer.wrap((line + "\r\n").getBytes(StandardCharsets.UTF_8));
            synchronized (writeLock) {
                try {
                    while (bytes.hasRemaining()) {
                        channel.write(bytes);
                    }
                } catch (IOException e) {
                    close();
                }
            }
        }

        /** No further command is read: the reader sees end of stream after the command in hand. */
        void stopReading() {
            try {
                channel.shutdownInput();
            } catch (IOException ignored) {
                // closed already: nothing more will be read either
            }
        }

        /** Waits until the session's thread has sent its last reply, or until {@code deadline}. */
        void awaitDrained(long deadline) {
            if (thread == null || thread == Thread.currentThread()) {
                return; // closing from a command of this very session: its reply follows on return
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return;
            }
            try {
                thread.join(Math.max(1, left / 1_000_000L));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        void close() {
            sessions.remove(this);
            try {
                channel.close();
            } catch (IOException ignored) {
                // gone already
            }
        }
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private boolean lvClosed() {
        return (boolean) CLOSED.getVolatile(this); // pairs with svClosed
    }

    private void svClosed() {
        CLOSED.setVolatile(this, true); // one side of the store-load pair: volatile is needed
    }
}
