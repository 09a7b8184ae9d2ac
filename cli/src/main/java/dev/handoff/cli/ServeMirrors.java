package dev.handoff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.device.BlockDevice;
import dev.handoff.device.WriteGate;
import dev.handoff.mirror.MirrorEvent;
import dev.handoff.nbd.NbdUri;
import dev.handoff.ownership.OwnedImage;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;
import java.util.Set;

/**
 * Mirror jobs on {@code serve}'s image: {@code serve --mirror-to}, and on the control socket
 * {@code blockdev-mirror} (to a node made by {@code blockdev-add}) and {@code drive-mirror} (to a
 * file or an NBD export named by its path), one at a time, with QEMU's job options. Each job is
 * listed in the job table, wired to the control socket's events and to stdout, and the export's
 * {@link WriteGate} moves clients onto its guest device before it starts.
 *
 * <p>Called on the control socket's thread (and once from startup); the job table and the nodes
 * are thread-safe. {@code pivotedTo} is written by the job's event thread ({@link #svPivotedTo})
 * and read on the socket's ({@link #lvPivotedTo}, pairing with it; CONTRIBUTING, "One accessor
 * convention"). A release store and an acquire load would do: a string publishes nothing else.
 */
final class ServeMirrors {
    private static final VarHandle PIVOTED_TO;

    static {
        try {
            PIVOTED_TO = MethodHandles.lookup().findVarHandle(ServeMirrors.class, "pivotedTo", String.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    static final Set<String> COMMANDS = Set.of("blockdev-mirror", "drive-mirror");

    private final Path image;
    private final String node;
    private final OwnedImage owned; // null when served read-only
    private final WriteGate gate;
    private final JobTable jobs;
    private final BlockNodes nodes;
    private final QmpServer qmpServer; // null without --control
    private final Path mirrorTlsCreds; // --mirror-tls-creds, or null
    private volatile String pivotedTo; // where a completed job moved the export, or null; through the accessors

    ServeMirrors(Path image, String node, OwnedImage owned, WriteGate gate, JobTable jobs, BlockNodes nodes,
            QmpServer qmpServer, Path mirrorTlsCreds) {
        this.image = image;
        this.node = node;
        this.owned = owned;
        this.gate = gate;
        this.jobs = jobs;
        this.nodes = nodes;
        this.qmpServer = qmpServer;
        this.mirrorTlsCreds = mirrorTlsCreds;
    }

    /** The client credentials for a mirror target: --mirror-tls-creds for a TLS URI, none otherwise. */
    Path tlsCredsFor(String targetSpec) {
        return NbdUri.isTlsUri(targetSpec) ? mirrorTlsCreds : null;
    }

    JsonNode execute(String command, ObjectNode args) throws QmpException {
        return command.equals("blockdev-mirror") ? blockdevMirror(args) : driveMirror(args);
    }

    /**
     * A mirror job from the served image to {@code targetDevice}, in the job table and wired to the
     * control socket and stdout, not started yet; clients move onto its guest device once the writes
     * in flight are done. {@code targetNode} (null for {@code --mirror-to}) is released when the
     * job concludes; {@code targetName} names the target once the export pivoted to it.
     * {@code bitmap} is {@code --mirror-to}'s {@code --bitmap} (DESIGN §2.10), or null: the job
     * starts from its bits, and its end finishes it (removed after a completed copy, kept
     * otherwise), with the line that says so on stdout.
     */
    JobRun prepare(JobLauncher launcher, BlockDevice targetDevice, boolean zero, BlockNodes.Node targetNode,
            String targetName, ResumeBitmap bitmap) throws QmpException {
        JobRun run = launcher.launch(owned, targetDevice, zero, bitmap);
        jobs.add(run);
        if (bitmap != null) {
            // The job's end ends the bitmap's use: after it, nothing tracks writes to the image.
            run.addSink((e, events) -> {
                String line = null;
                if (e instanceof MirrorEvent.Completed) {
                    line = bitmap.finish(true);
                } else if (e instanceof MirrorEvent.Cancelled || e instanceof MirrorEvent.Failed) {
                    line = bitmap.finish(false);
                }
                if (line != null) {
                    System.out.println(run.jobId() + ": " + line);
                    System.out.flush();
                }
            });
        }
        // Bookkeeping first: a client that sees the job's last event may at once reuse its target.
        run.addSink((e, events) -> {
            if (e instanceof MirrorEvent.Completed c && c.pivoted()) {
                svPivotedTo(targetName);
            }
            if (targetNode != null && (e instanceof MirrorEvent.Completed || e instanceof MirrorEvent.Cancelled
                    || e instanceof MirrorEvent.Failed)) {
                nodes.release(targetNode, e instanceof MirrorEvent.Completed c && c.pivoted());
            }
        });
        QmpServer q = qmpServer;
        if (q != null) {
            run.addSink((e, events) -> events.forEach(q::broadcast));
        }
        run.addSink((e, events) -> {
            String line = EventLines.describe(e);
            if (line != null) {
                System.out.println(run.jobId() + ": " + line);
                System.out.flush();
            }
        });
        gate.route(run.job().guestDevice()); // waits for the client writes in flight (WriteGate)
        return run;
    }

    /** blockdev-mirror: a job from the served image to a node made by blockdev-add. */
    private JsonNode blockdevMirror(ObjectNode args) throws QmpException {
        Args.allow(args, concat(MirrorArgs.JOB_OPTIONS, "job-id", "device", "target", "replaces",
                "filter-node-name"));
        MirrorArgs parsed = MirrorArgs.parse(args);
        String device = Args.string(args, "device");
        String targetName = Args.string(args, "target");
        Args.optString(args, "filter-node-name"); // names QEMU's filter node; Handoff's filter has no name
        requireDevice(device);
        if (targetName.equals(node)) {
            throw QmpException.generic("Can't mirror node into itself");
        }
        BlockNodes.Node targetNode = nodes.get(targetName);
        String replaces = Args.optString(args, "replaces");
        if (replaces != null && !replaces.equals(node)) {
            throw QmpException.generic("Failed to find node with node-name='" + replaces + "'");
        }
        JobLauncher launcher = parsed.launcher(Args.optString(args, "job-id"), targetNode.device.size(), gate.size());
        start(launcher, targetNode, false);
        return Json.object();
    }

    /** drive-mirror: the same to a file (or NBD export) named by its path, opened for the job. */
    private JsonNode driveMirror(ObjectNode args) throws QmpException {
        Args.allow(args, concat(MirrorArgs.JOB_OPTIONS, "job-id", "device", "target", "format", "node-name",
                "replaces", "mode", "unmap"));
        MirrorArgs parsed = MirrorArgs.parse(args);
        String device = Args.string(args, "device");
        String targetSpec = Args.string(args, "target");
        String mode = args.has("mode") ? Args.string(args, "mode") : "absolute-paths";
        if (!mode.equals("absolute-paths") && !mode.equals("existing")) {
            throw QmpException.generic("Parameter 'mode' does not accept value '" + mode + "'");
        }
        if (!Args.optBool(args, "unmap", true)) {
            throw QmpException.generic("unmap=false is not supported: Handoff keeps the target as sparse as"
                    + " the source");
        }
        String fmt = Args.optString(args, "format");
        if (fmt != null && !fmt.equals("raw")) {
            throw QmpException.generic("Format '" + fmt + "' is not supported: Handoff writes raw images only");
        }
        String replaces = Args.optString(args, "replaces");
        requireDevice(device);
        if (replaces != null && !replaces.equals(node)) {
            throw QmpException.generic("Failed to find node with node-name='" + replaces + "'");
        }
        JobLauncher launcher = parsed.launcher(Args.optString(args, "job-id"), gate.size(), gate.size());
        MirrorTarget t;
        BlockDevice device0;
        try {
            t = MirrorTarget.resolve(targetSpec, tlsCredsFor(targetSpec), "--mirror-tls-creds");
            if (mode.equals("existing") && t instanceof FileTarget f && !f.exists()) {
                throw QmpException.generic("Could not open '" + targetSpec + "': No such file or directory");
            }
            t.check(SourceImage.ofSize(image, gate.size()), fmt != null ? ImageFormat.RAW : null);
            device0 = t.open(gate.size());
        } catch (CliException e) {
            throw QmpException.generic(e.getMessage());
        }
        BlockNodes.Node targetNode;
        try {
            targetNode = nodes.addImplicit(Args.optString(args, "node-name"), t, device0);
        } catch (QmpException e) {
            t.abandon();
            throw e;
        }
        try {
            start(launcher, targetNode, t.readsAsZeroes());
        } catch (QmpException | RuntimeException e) {
            nodes.release(targetNode, false);
            throw e;
        }
        return Json.object();
    }

    private void requireDevice(String device) throws QmpException {
        if (!device.equals(node)) {
            throw QmpException.generic("Cannot find device='" + device + "' nor node-name='" + device + "'");
        }
    }

    private void start(JobLauncher launcher, BlockNodes.Node targetNode, boolean zero) throws QmpException {
        if (owned == null) {
            throw QmpException.generic(image + " is served read-only: it holds no write lock, so other writers"
                    + " could change it behind a mirror job; serve it without --read-only to mirror it");
        }
        if (owned.state() != OwnedImage.State.ACTIVE) {
            throw QmpException.generic(image + " is INACTIVE: activate it (x-handoff-accept or x-handoff-abort)"
                    + " before mirroring it");
        }
        String pivoted = lvPivotedTo();
        if (pivoted != null) {
            throw QmpException.generic("the export was pivoted to '" + pivoted + "' by an earlier job: serve"
                    + " that image to mirror it again");
        }
        if (jobs.anyRunning()) {
            throw QmpException.generic("Node '" + node + "' is busy: block device is in use by block job: mirror");
        }
        nodes.use(targetNode, "job '" + launcher.jobId() + "'");
        JobRun run;
        try {
            run = prepare(launcher, targetNode.device, zero, targetNode, targetNode.name, null);
        } catch (QmpException | RuntimeException e) {
            nodes.release(targetNode, false);
            throw e;
        }
        run.start();
    }

    private static String[] concat(String[] a, String... b) {
        String[] all = new String[a.length + b.length];
        System.arraycopy(a, 0, all, 0, a.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private String lvPivotedTo() {
        return (String) PIVOTED_TO.getVolatile(this); // pairs with svPivotedTo
    }

    private void svPivotedTo(String name) {
        PIVOTED_TO.setVolatile(this, name); // the job's event thread; a release would do
    }
}
