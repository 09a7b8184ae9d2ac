package dev.handoff.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.WriteGate;
import dev.handoff.nbd.NbdAddress;
import dev.handoff.nbd.NbdExport;
import dev.handoff.nbd.NbdServer;
import dev.handoff.nbd.NbdUri;
import dev.handoff.nbd.TlsCredentials;
import dev.handoff.ownership.ImageFencedException;
import dev.handoff.ownership.ImageInactiveException;
import dev.handoff.ownership.OwnedImage;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeoutException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code handoff serve IMAGE --nbd ADDRESS}: exports a raw image over NBD, held ACTIVE (QEMU's
 * write locks and an ownership record), and mirrors it to targets while clients write, driven over
 * a QMP control socket: the shape of qemu-storage-daemon with an NBD export and mirror jobs, so
 * that the same scripts drive both.
 *
 * <p>This class is the serve's lifecycle: options, the order of start-up, the run, the stop. The
 * control socket is {@link ServeControl}: QEMU's job commands ({@link JobControl}), block nodes
 * ({@link BlockNodes}), mirror jobs on the image ({@link ServeMirrors}, also behind
 * {@code --mirror-to}), the ownership commands {@code x-handoff-prepare}, {@code x-handoff-accept},
 * {@code x-handoff-abort} and {@code x-query-ownership} ({@link HandoffControl}),
 * {@code query-block-exports} and {@code quit} (stops serving and exits 0: an ACTIVE image is
 * flushed and released, an INACTIVE or read-only one closed without writing anything). Clients
 * write through a {@link dev.handoff.device.WriteGate}, which moves them onto a job's guest device
 * and refuses their writes for a handoff.
 *
 * A mirror job never completes on its own: it stays READY, keeping the target in sync, until
 * {@code block-job-complete} (pivot: clients then write to the target) or {@code block-job-cancel}
 * (no pivot: the target is a consistent copy, clients stay on IMAGE; what a migration does).
 *
 * <p>Order of work, so that a serve that fails changes no ownership state: check the options and
 * the image; listen on the NBD address (no export yet) and the control socket; open the image
 * INACTIVE (which writes nothing) and the mirror target; then activate, the one step that writes
 * the ownership record, and only then export the image. A failure before the activation undoes
 * the steps before it; {@code --read-only} never activates (no write lock, no epoch, no record).
 *
 * <p>Who may connect: with {@code --tls-creds} every NBD client must start TLS and present a
 * certificate signed by the CA (and, with {@code --tls-authz}, named on the allow-list); without
 * it, TCP is served on loopback only unless {@code --insecure}. The unix sockets (NBD and
 * control) are created owner-only unless {@code --socket-mode} says otherwise. Each refused client
 * gets one line on stderr, and the others are served on.
 *
 * <p>Access modes (CONTRIBUTING, "One accessor convention"): the fields that cross threads are
 * read and written through accessors named by mode. {@code stopped}: {@code casStopped} by
 * {@link #stop} (the main thread or the shutdown hook: one of them stops), {@code lvStopped} by the
 * control socket's listing. {@code serving}: {@code svServing} by the main thread once the export
 * is up; {@code lvServing} by the listing and by {@link #stop}. {@code bitmap}: {@code svBitmap} by
 * the main thread while it starts (and clears it on failure); {@code lpBitmap} there;
 * {@code lvBitmap} by {@link #stop}, on either thread. {@code sessionLost}: {@code svSessionLost}
 * by the coordinator's callback, before it releases the main thread's {@code quit};
 * {@code lvSessionLost} by the ending. Each load pairs with its field's stores. Release stores and
 * acquire loads would do for all but {@code stopped}, whose CAS picks the one thread that stops;
 * nothing here is on an I/O path.
 */
@Command(name = "serve", sortOptions = false, usageHelpWidth = 100,
        description = {"Export the raw image IMAGE over NBD, held ACTIVE with QEMU-compatible locks and an ownership"
                + " record (or, with --coordinator, a lock and record in a ZooKeeper ensemble); with --mirror-to, or"
                + " blockdev-mirror / drive-mirror over --control, mirror it to a target"
                + " while clients write (the job stays READY until block-job-complete or block-job-cancel). Runs until"
                + " `quit` over --control, Ctrl-C or SIGTERM."},
        exitCodeListHeading = "%nExit codes:%n", exitCodeList = {
            " 0:stopped by quit",
            " 1:the coordinator (ZooKeeper) cannot be reached",
            " 2:usage error",
            " 3:bad image or target (missing, not raw, size mismatch, not writable, unreachable export), a socket"
                    + " path in a missing directory, the coordinator PATH belongs to another image, or a --bitmap that"
                    + " is damaged, stale or of other images",
            " 4:image or --bitmap locked by another process (QEMU or Handoff), or an address in use",
            " 6:fenced: a newer owner took the image over, or the coordinator session was lost",
            "130:interrupted (Ctrl-C)",
            "143:terminated (SIGTERM)"})
final class ServeCommand implements Callable<Integer> {
    private static final VarHandle BITMAP;
    private static final VarHandle STOPPED;
    private static final VarHandle SERVING;
    private static final VarHandle SESSION_LOST;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            BITMAP = l.findVarHandle(ServeCommand.class, "bitmap", ResumeBitmap.class);
            STOPPED = l.findVarHandle(ServeCommand.class, "stopped", boolean.class);
            SERVING = l.findVarHandle(ServeCommand.class, "serving", boolean.class);
            SESSION_LOST = l.findVarHandle(ServeCommand.class, "sessionLost", String.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @Parameters(index = "0", paramLabel = "IMAGE", description = "Raw image file or block device to export.")
    Path image;

    @Option(names = "--nbd", required = true, paramLabel = "ADDRESS",
            description = "Where to listen: unix:PATH, or tcp:[HOST:]PORT (HOST defaults to 127.0.0.1; another"
                    + " address than loopback needs --tls-creds or --insecure).")
    String nbd;

    @Option(names = "--tls-creds", paramLabel = "DIR", description = "Require TLS of every NBD client (NBD_OPT_STARTTLS"
            + " before anything else), with the server credentials in DIR laid out as QEMU's tls-creds-x509:"
            + " ca-cert.pem, server-cert.pem, server-key.pem. Clients must present a certificate signed by that CA.")
    Path tlsCreds;

    @Option(names = "--tls-authz", paramLabel = "FILE", description = "Let in only the clients whose certificate"
            + " subject is listed in FILE, one distinguished name per line as `openssl x509 -noout -subject -nameopt"
            + " RFC2253` prints it (e.g. CN=host-b,O=Example); # starts a comment. Needs --tls-creds.")
    Path tlsAuthz;

    @Option(names = "--insecure", description = "Serve --nbd tcp: on an address other than loopback without TLS:"
            + " anyone who can reach it reads and writes IMAGE. Only for networks trusted as a whole.")
    boolean insecure;

    @Option(names = "--socket-mode", paramLabel = "MODE", defaultValue = "0600", description = "Permissions of the"
            + " unix sockets created (--nbd unix:, --control), in octal (default: ${DEFAULT-VALUE}, owner only).")
    String socketMode;

    @Option(names = "--export-name", paramLabel = "NAME", defaultValue = "disk",
            description = "The export's name, as in nbd+unix:///NAME?socket=PATH (default: ${DEFAULT-VALUE}). Clients"
                    + " that ask for the default export (the empty name: nbd://HOST:PORT, nbd+unix:///?socket=PATH)"
                    + " get it too.")
    String exportName;

    @Option(names = "--max-connections", paramLabel = "N", defaultValue = "16",
            description = "NBD clients served at once (default: ${DEFAULT-VALUE}); one more is refused in its handshake"
                    + " with an NBD error saying so (and a line on stderr).")
    int maxConnections;

    @Option(names = "--inline-requests", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Serve a client's READ or WRITE of at most 128 KiB on its connection's reader thread,"
            + " without waking a worker, when the reader had to wait for it, no later request of the client has"
            + " arrived yet and none is in flight: a guest with one request at a time gets more IOPS and lower"
            + " latency, and a client that sends several at once keeps the workers' concurrency. On by default;"
            + " --no-inline-requests serves every request on a worker.")
    boolean inlineRequests;

    @Option(names = "--node-name", paramLabel = "NAME", description = "The image's node name, the \"device\" of"
            + " blockdev-mirror and drive-mirror (default: the export's name).")
    String nodeName;

    @Option(names = "--read-only", description = "Serve IMAGE read-only: clients' writes get EPERM, and the image is"
            + " held as QEMU holds an image it only reads (no write lock, no ownership record, no epoch), so QEMU"
            + " may open it meanwhile.")
    boolean readOnly;

    @Option(names = "--format", paramLabel = "FORMAT", converter = ImageFormat.Converter.class,
            description = "raw: serve IMAGE as raw even if its first bytes look like another format's header.")
    ImageFormat format;

    @Option(names = "--mirror-to", paramLabel = "TARGET", description = "Mirror IMAGE to TARGET while serving: a raw"
            + " image file (created if absent), a block device, or an NBD export (nbd+unix:///NAME?socket=PATH,"
            + " nbd://HOST:PORT/NAME; over TLS nbds://HOST:PORT/NAME or nbds+unix:///NAME?socket=PATH, with"
            + " --mirror-tls-creds). The same as drive-mirror over --control.")
    String mirrorTo;

    @Option(names = "--mirror-tls-creds", paramLabel = "DIR", description = "Client credentials for a TLS mirror target"
            + " (nbds://, nbds+unix://; of --mirror-to or of drive-mirror over --control): ca-cert.pem (the CA the target's certificate must chain to), and client-cert.pem"
            + " with client-key.pem (this server's identity, if the target asks for one).")
    Path mirrorTlsCreds;

    @Option(names = "--control", paramLabel = "SOCKET", description = "Listen on this unix socket for QMP commands"
            + " (the job commands, blockdev-add, blockdev-mirror, drive-mirror, query-block-exports,"
            + " x-handoff-prepare, x-handoff-accept, x-handoff-abort, x-query-ownership, quit) and send QMP events.")
    Path control;

    @Option(names = "--owner", paramLabel = "ID", description = "This holder's id in the ownership record and in"
            + " handoff tokens (default: serve-PID).")
    String owner;

    @Option(names = "--record", paramLabel = "FILE", description = "Where the ownership record is (default:"
            + " IMAGE.owner beside the image). Required for a block device, which has no directory of its own:"
            + " a file every host that may own the device sees.")
    Path record;

    @Option(names = "--inactive", description = "Open IMAGE INACTIVE (shared storage: the destination of a handoff):"
            + " clients may read, writes get EPERM until x-handoff-accept activates it with the source's token.")
    boolean inactive;

    @Option(names = "--job-id", paramLabel = "ID", defaultValue = "mirror0",
            description = "The --mirror-to job's QMP id (\"device\") (default: ${DEFAULT-VALUE}).")
    String jobId;

    @Mixin
    JobOptions jobOptions;

    @Mixin
    CoordinatorOptions coordinator;

    @Mixin
    BitmapOptions bitmapOptions;

    private volatile ResumeBitmap bitmap; // --mirror-to's --bitmap, once opened; through the accessors

    @Mixin
    JfrOption jfr;

    private final CountDownLatch quit = new CountDownLatch(1);
    /* Only through the accessors ("Access modes"). */
    private volatile boolean stopped;
    private volatile boolean serving;
    private volatile String sessionLost; // why the coordinator session was lost, if it was

    private OwnedImage owned;          // the image, unless read-only
    private ReadOnlyImage readOnlyImage;
    private MirrorTarget target;       // --mirror-to's
    private JobRun mirrorToRun;
    private WriteGate gate;
    private ServeMirrors mirrors;
    private ServeControl controlHandler;
    private NbdServer server;
    private QmpServer qmpServer;
    private NbdUri uri;
    private BlockNodes nodes;
    private final JobTable jobs = new JobTable();
    private java.util.Set<PosixFilePermission> socketPermissions;

    @Override
    public Integer call() throws Exception {
        String ownerId = owner != null ? owner : "serve-" + ProcessHandle.current().pid();
        String node = nodeName != null ? nodeName : exportName;
        NbdAddress address;
        try {
            address = NbdAddress.parse(nbd);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "invalid value for option '--nbd': " + e.getMessage());
        }
        if (readOnly && (inactive || mirrorTo != null)) {
            throw new CliException(ExitCodes.USAGE, "--read-only excludes " + (inactive ? "--inactive" : "--mirror-to")
                    + ": a read-only serve takes no write lock and no part in the ownership protocol, so nothing"
                    + " keeps other writers from changing the image under " + (inactive ? "a handoff" : "a mirror job"));
        }
        if (tlsAuthz != null && tlsCreds == null) {
            throw new CliException(ExitCodes.USAGE, "--tls-authz needs --tls-creds: clients are named by their"
                    + " certificates");
        }
        if (mirrorTlsCreds != null) {
            if (!NbdUri.isTlsUri(mirrorTo) && control == null) {
                throw new CliException(ExitCodes.USAGE, "--mirror-tls-creds is for a TLS mirror target (nbds:// or"
                        + " nbds+unix://): of --mirror-to, or of drive-mirror over --control");
            }
            TlsOptions.client(mirrorTlsCreds, "--mirror-tls-creds"); // bad credentials fail now, not at drive-mirror
        }
        NbdServer.Builder listener = listener(address);
        if (inactive && mirrorTo != null) {
            throw new CliException(ExitCodes.USAGE, "--inactive and --mirror-to exclude each other: an INACTIVE image"
                    + " takes no writes, so its clients could not write while the job runs");
        }
        try {
            NbdExport.of(exportName, new dev.handoff.device.MemoryDevice(0)); // checks the name only
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "invalid value for option '--export-name': " + e.getMessage());
        }
        if (!BlockNodes.wellFormed(node)) {
            throw new CliException(ExitCodes.USAGE, "invalid node name '" + node + "': a letter, then letters, digits,"
                    + " '-', '.' or '_' (set it with --node-name)");
        }
        bitmapOptions.validate();
        if (bitmapOptions.present() && mirrorTo == null) {
            throw new CliException(ExitCodes.USAGE, "--bitmap is the --mirror-to job's: give --mirror-to TARGET");
        }
        JobLauncher launcher = null;
        if (mirrorTo != null) {
            jobOptions.validate();
            jobOptions.requireResumable(control != null, "only a control socket can resume it: add --control SOCKET"
                    + " (then send block-job-resume), or use ignore (retry the failed chunk) or report (fail)");
            launcher = JobLauncher.of(jobOptions, jobId);
        }
        if (control != null) {
            QmpServer.check(control);
        }
        coordinator.validate();
        if (coordinator.present() && (readOnly || record != null)) {
            throw new CliException(ExitCodes.USAGE, "--coordinator keeps the ownership record in ZooKeeper: it excludes "
                    + (readOnly ? "--read-only, which takes no part in the ownership protocol" : "--record"));
        }
        checkSocketDirectory(address);
        SourceImage checked = SourceImage.check(image, format);
        if (!readOnly && record == null && !coordinator.present() && Devices.isBlockDevice(image)) {
            throw new CliException(ExitCodes.USAGE, image + " is a block device: give --record FILE for its ownership"
                    + " record (on storage every host that may own the device sees), or serve it --read-only");
        }
        if (mirrorTo != null) {
            target = MirrorTarget.resolve(mirrorTo, tlsCredsFor(mirrorTo), "--mirror-tls-creds");
            target.check(checked);
        }
        nodes = new BlockNodes(node);
        jfr.start();

        try {
            try {
                server = listener.start();
            } catch (IOException e) {
                throw new CliException(ExitCodes.BUSY, "cannot listen on " + address + ": " + e.getMessage());
            }
            uri = server.requiresTls() ? server.uri(exportName).withTls() : server.uri(exportName);
            ServeControl handler = null;
            if (control != null) {
                handler = new ServeControl(new ExportView(node), jobs, nodes);
                qmpServer = QmpServer.bind(control, socketPermissions, handler, "handoff " + Main.version());
                handler.boundTo(qmpServer);
            }
            BlockDevice exported;
            if (readOnly) {
                readOnlyImage = ReadOnlyImage.open(image);
                exported = readOnlyImage.device();
            } else {
                owned = open(ownerId);
                exported = owned;
            }
            gate = new WriteGate(exported);
            mirrors = new ServeMirrors(image, node, owned, gate, jobs, nodes, qmpServer, mirrorTlsCreds);
            if (handler != null) {
                controlHandler = handler;
            }
            if (target != null) {
                BlockDevice targetDevice = target.open(checked.size());
                if (bitmapOptions.present()) {
                    svBitmap(ResumeBitmap.open(bitmapOptions.file, bitmapOptions.restart, image, checked.size(),
                            target instanceof FileTarget f ? f.path() : null, target.display(), checked.size(),
                            launcher.options().granularity(), jobOptions.sync != dev.handoff.mirror.SyncMode.NONE));
                }
                mirrorToRun = mirrors.prepare(launcher, targetDevice, target.readsAsZeroes(), null, target.display(),
                        lpBitmap());
            }
            if (!readOnly && !inactive) {
                activate();
            }
        } catch (CliException | QmpException | RuntimeException e) {
            if (lpBitmap() != null) {
                lpBitmap().close();
                svBitmap(null);
            }
            if (target != null) {
                target.abandon();
            }
            stop(false);
            throw e instanceof QmpException q ? new CliException(ExitCodes.FAILED, q.getMessage()) : e;
        }
        server.addExport(new NbdExport(exportName, gate, readOnly, "handoff serve " + image));

        System.out.println("serving " + image + " (" + Sizes.format(gate.size()) + ") as " + uri + ": "
                + (readOnly ? "read-only (no ownership)" : owned.state() + ", owner " + ownerId + ", epoch " + owned.epoch())
                + (mirrorTo != null ? ", mirroring to " + target.display() : "")
                + (lpBitmap() != null ? "; " + lpBitmap().describe(gate.size()) : "")
                + (coordinator.present() ? ", coordinator " + coordinator.coordinator : "")
                + (control != null ? ", control " + control : ""));
        System.out.flush();
        svServing();
        if (control != null && mirrorTo == null && !readOnly) {
            MirrorWarmUp.startInBackground(); // the first blockdev-mirror then finds its classes ready
        }
        if (controlHandler != null) {
            controlHandler.serving(mirrors, new HandoffControl(image, owned, gate, jobs));
        }
        Thread hook = new Thread(() -> stop(true), "handoff-serve-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        if (mirrorToRun != null) {
            mirrorToRun.start();
        }
        quit.await();
        Thread.sleep(100); // lets the reply to `quit` reach the client
        stop(false);
        jfr.finish();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the hook runs or has run: it finds the work done
        }
        String lost = lvSessionLost();
        if (lost != null) {
            throw new CliException(ExitCodes.FENCED, "ZooKeeper session lost mid-command: " + lost + "; " + image
                    + " is fenced here and no longer served (nothing more was acknowledged; the next activation takes"
                    + " over with a newer epoch)");
        }
        return ExitCodes.OK;
    }

    /** The client credentials for a mirror target: --mirror-tls-creds for a TLS URI, none otherwise. */
    private Path tlsCredsFor(String targetSpec) {
        return NbdUri.isTlsUri(targetSpec) ? mirrorTlsCreds : null;
    }

    /**
     * The NBD server's configuration, checked before anything is opened: credentials, allow-list,
     * socket mode, and no plain-text TCP beyond loopback unless --insecure.
     */
    private NbdServer.Builder listener(NbdAddress address) throws CliException {
        socketPermissions = TlsOptions.socketMode(socketMode, "--socket-mode");
        if (maxConnections < 1) {
            throw new CliException(ExitCodes.USAGE, "invalid value for option '--max-connections': " + maxConnections
                    + " (at least 1)");
        }
        NbdServer.Builder builder = NbdServer.builder().listen(address).unixSocketMode(socketPermissions)
                .maxConnections(maxConnections)
                .inlineRequests(inlineRequests)
                .onRefused(why -> {
                    System.err.println("handoff serve: nbd client " + why);
                    System.err.flush();
                });
        if (tlsCreds != null) {
            TlsCredentials credentials = TlsOptions.server(tlsCreds, "--tls-creds");
            builder.tls(credentials);
            if (tlsAuthz != null) {
                builder.tlsAuthz(TlsOptions.allowList(tlsAuthz, "--tls-authz"));
            }
        }
        if (insecure) {
            builder.insecure();
        }
        try {
            return builder.check();
        } catch (IllegalStateException | IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, e.getMessage() + "; give --tls-creds DIR to require TLS of every"
                    + " client, or --insecure if every host that can reach it is trusted");
        }
    }

    /** A unix socket in a directory that does not exist is a bad path (exit 3), refused before anything is bound. */
    private static void checkSocketDirectory(NbdAddress address) throws CliException {
        if (address instanceof NbdAddress.Unix unix) {
            Path parent = unix.path().toAbsolutePath().getParent();
            if (parent == null || !Files.isDirectory(parent)) {
                throw new CliException(ExitCodes.BAD_IMAGE, "cannot listen on " + address + ": no such directory "
                        + parent);
            }
        }
    }

    /** Opens the image INACTIVE: reads the ownership record, writes nothing. */
    private OwnedImage open(String ownerId) throws CliException {
        if (coordinator.present()) {
            return coordinator.open(image, ownerId, OwnedImage.State.INACTIVE, why -> {
                svSessionLost(why);
                quit.countDown();
            });
        }
        try {
            return record != null ? OwnedImage.openFile(image, record, ownerId, OwnedImage.State.INACTIVE)
                    : OwnedImage.openFile(image, ownerId, OwnedImage.State.INACTIVE);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "invalid value for option '--owner': " + e.getMessage());
        } catch (DeviceException e) {
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot open " + image + ": " + e.getMessage());
        }
    }

    /** The one step that changes ownership state: the lock, a new epoch, the record marked in use. */
    private void activate() throws CliException {
        try {
            owned.activate();
        } catch (DeviceException e) {
            throw activationFailure(e);
        }
    }

    /** The exit code and one line for a failed activation (QEMU or another holder has it, fenced, ...). */
    private CliException activationFailure(DeviceException e) {
        if (coordinator.present()) {
            return CoordinatorOptions.failure(image, e);
        }
        if (e instanceof ImageFencedException) {
            return new CliException(ExitCodes.FENCED, "cannot activate " + image + ": " + e.getMessage());
        }
        if (e instanceof ImageInactiveException) {
            return new CliException(ExitCodes.BUSY, "image is in use: " + e.getMessage());
        }
        return new CliException(ExitCodes.BAD_IMAGE, "cannot activate " + image + ": " + e.getMessage());
    }

    /**
     * Stops serving: NBD clients' in-flight requests finish, running jobs are cancelled (forced,
     * as on any exit of qemu-storage-daemon), then the targets and the image are closed. Once.
     */
    private void stop(boolean signalled) {
        if (!casStopped(false, true)) {
            return;
        }
        if (server != null) {
            server.close();
        }
        for (JobRun run : jobs.listed()) {
            if (!run.job().state().isConcluded()) {
                try {
                    run.qmp().noteCancel(true);
                    run.job().cancel(true);
                    run.job().awaitConclusion(Duration.ofSeconds(30));
                } catch (IllegalStateException | TimeoutException raced) {
                    // concluded meanwhile, or stuck: closing below
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            try {
                run.startDispatcher();
                run.awaitDelivered(Duration.ofSeconds(2));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (qmpServer != null) {
            qmpServer.close();
        }
        ResumeBitmap b = lvBitmap();
        if (b != null) {
            b.finish(false); // the job's last event did it, unless it never came
        }
        if (target != null) {
            target.close();
        }
        if (nodes != null) {
            nodes.close();
        }
        String state = "";
        if (owned != null) {
            state = owned.state().toString();
            try {
                owned.close();
            } catch (DeviceException e) {
                if (lvSessionLost() == null) { // else the one line that says so is the error
                    System.err.println("handoff serve: closing " + image + " failed: " + e.getMessage());
                }
            }
        }
        if (readOnlyImage != null) {
            state = "read-only";
            readOnlyImage.close();
        }
        if (lvServing() && lvSessionLost() == null) {
            System.out.println((signalled ? "interrupted" : "stopped") + ": " + image + " closed " + state);
            System.out.flush();
        }
    }

    /** What the control socket sees of the export: its listing, and quit. */
    private final class ExportView implements ServeControl.Export {
        private final String node;

        ExportView(String node) {
            this.node = node;
        }

        @Override
        public ArrayNode exports() {
            ArrayNode list = Json.array();
            if (lvServing()) {
                ObjectNode export = list.addObject();
                export.put("type", "nbd");
                export.put("id", exportName);
                export.put("node-name", node);
                export.put("shutting-down", lvStopped());
                export.put("x-uri", uri.toString());
                export.put("x-connections", server.connectionCount());
            }
            return list;
        }

        @Override
        public void quit() {
            quit.countDown();
        }
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private ResumeBitmap lvBitmap() {
        return (ResumeBitmap) BITMAP.getVolatile(this); // stop, either thread; pairs with svBitmap
    }

    private ResumeBitmap lpBitmap() {
        return (ResumeBitmap) BITMAP.get(this); // the main thread, the only writer
    }

    private void svBitmap(ResumeBitmap b) {
        BITMAP.setVolatile(this, b); // the main thread while it starts; a release would do
    }

    private boolean lvStopped() {
        return (boolean) STOPPED.getVolatile(this); // pairs with casStopped
    }

    private boolean casStopped(boolean expected, boolean next) {
        return STOPPED.compareAndSet(this, expected, next); // one thread stops
    }

    private boolean lvServing() {
        return (boolean) SERVING.getVolatile(this); // pairs with svServing
    }

    private void svServing() {
        SERVING.setVolatile(this, true); // the main thread, once; a release would do
    }

    private String lvSessionLost() {
        return (String) SESSION_LOST.getVolatile(this); // pairs with svSessionLost
    }

    private void svSessionLost(String why) {
        SESSION_LOST.setVolatile(this, why); // the coordinator's thread; a release would do
    }
}
