package dev.handoff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Set;
import java.util.TreeSet;

/**
 * {@code serve}'s control socket: QEMU's job commands ({@link JobControl}), the block nodes'
 * ({@link BlockNodes}), the mirrors' ({@link ServeMirrors}), the ownership extensions
 * ({@link HandoffControl}), {@code query-block-exports} and {@code quit}.
 *
 * <p>The socket is bound before the image is opened (so that a socket in use fails the serve
 * before anything changes), so until {@link #serving} hands it the mirrors and the ownership
 * commands, everything but the queries is refused with "try again".
 *
 * <p>Access modes (CONTRIBUTING, "One accessor convention"): {@code mirrors}, {@code handoff} and
 * {@code server} are each written once by the starting thread ({@code sv}) and read by the
 * socket's ({@code lv}), pairing with that store: what the reader sees through the reference was
 * built before it. A release store and acquire loads would do; volatile is stronger than needed,
 * off every I/O path. {@link #serving} stores {@code handoff} before {@code mirrors}, and
 * {@link #execute} loads {@code mirrors} first, so a caller that sees the mirrors sees both.
 */
final class ServeControl implements QmpServer.Handler {
    private static final VarHandle MIRRORS;
    private static final VarHandle HANDOFF;
    private static final VarHandle SERVER;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            MIRRORS = l.findVarHandle(ServeControl.class, "mirrors", ServeMirrors.class);
            HANDOFF = l.findVarHandle(ServeControl.class, "handoff", HandoffControl.class);
            SERVER = l.findVarHandle(ServeControl.class, "server", QmpServer.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** What {@code quit} and {@code query-block-exports} need of the serve around it. */
    interface Export {
        /** The reply to {@code query-block-exports}: the NBD export once it exists, as QEMU lists it. */
        ArrayNode exports();

        /** Ends the serve (after the reply is sent). */
        void quit();
    }

    private final Export export;
    private final JobControl jobControl;
    private final BlockNodes nodes;
    private final Set<String> own;
    /* Only through the accessors below ("Access modes"). */
    private volatile ServeMirrors mirrors;
    private volatile HandoffControl handoff;
    private volatile QmpServer server;

    ServeControl(Export export, JobTable jobs, BlockNodes nodes) {
        this.export = export;
        this.jobControl = new JobControl(jobs);
        this.nodes = nodes;
        Set<String> mine = new TreeSet<>(Set.of("query-block-exports", "query-named-block-nodes", "blockdev-add",
                "blockdev-del", "quit"));
        mine.addAll(ServeMirrors.COMMANDS);
        mine.addAll(HandoffControl.COMMANDS);
        this.own = Set.copyOf(mine);
    }

    /** The socket this handler answers on, for the SHUTDOWN event of {@code quit}. */
    void boundTo(QmpServer server) {
        svServer(server);
    }

    /** The serve is up: mirror and ownership commands are accepted from now on. */
    void serving(ServeMirrors mirrors, HandoffControl handoff) {
        svHandoff(handoff);
        svMirrors(mirrors); // last: a reader that sees it sees the handoff too
    }

    @Override
    public Set<String> commands() {
        Set<String> all = new TreeSet<>(own);
        all.addAll(jobControl.commands());
        return all;
    }

    @Override
    public JsonNode execute(String command, ObjectNode args) throws QmpException {
        ServeMirrors m = lvMirrors();
        HandoffControl h = lvHandoff();
        if (m == null && !command.startsWith("query-")) {
            throw QmpException.generic("the server is starting: try again once it serves");
        }
        if (!own.contains(command)) {
            return jobControl.execute(command, args);
        }
        if (ServeMirrors.COMMANDS.contains(command)) {
            return m.execute(command, args);
        }
        if (HandoffControl.COMMANDS.contains(command)) {
            return h.execute(command, args);
        }
        switch (command) {
            case "blockdev-add":
                nodes.add(args);
                return Json.object();
            case "blockdev-del":
                Args.allow(args, "node-name");
                nodes.delete(Args.string(args, "node-name"));
                return Json.object();
            case "query-named-block-nodes":
                Args.allow(args, "flat");
                return nodes.describe();
            case "query-block-exports":
                Args.allow(args);
                return export.exports();
            default: { // quit
                Args.allow(args);
                QmpServer s = lvServer();
                if (s != null) {
                    ObjectNode data = Json.object();
                    data.put("guest", false);
                    data.put("reason", "host-qmp-quit");
                    s.broadcast(QmpEvents.event("SHUTDOWN", data));
                }
                export.quit();
                return Json.object();
            }
        }
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private ServeMirrors lvMirrors() {
        return (ServeMirrors) MIRRORS.getVolatile(this); // pairs with svMirrors
    }

    private void svMirrors(ServeMirrors m) {
        MIRRORS.setVolatile(this, m); // once, after svHandoff; a release would do
    }

    private HandoffControl lvHandoff() {
        return (HandoffControl) HANDOFF.getVolatile(this); // after lvMirrors; pairs with svHandoff
    }

    private void svHandoff(HandoffControl h) {
        HANDOFF.setVolatile(this, h); // once; a release would do
    }

    private QmpServer lvServer() {
        return (QmpServer) SERVER.getVolatile(this); // pairs with svServer
    }

    private void svServer(QmpServer s) {
        SERVER.setVolatile(this, s); // once; a release would do
    }
}
