package dev.handoff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.nbd.NbdAddress;
import dev.handoff.nbd.NbdExport;
import dev.handoff.nbd.NbdServer;
import dev.handoff.nbd.NbdUri;
import dev.handoff.ownership.HandoffToken;
import dev.handoff.ownership.ImageFencedException;
import dev.handoff.ownership.ImageInactiveException;
import dev.handoff.ownership.OwnedImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code handoff serve IMAGE --nbd ADDRESS}: exports a raw image over NBD, held ACTIVE (QEMU's
 * write locks and an ownership record), optionally mirroring it to a target while clients write,
 * driven over a QMP control socket: the shape of qemu-storage-daemon with an NBD export and a
 * mirror job, so that the same scripts drive both.
 *
 * <p>Control commands, besides the block-job commands of {@code handoff mirror}
 * ({@code query-block-jobs}, {@code block-job-complete}, {@code block-job-cancel}, ...):
 * <ul>
 *   <li>{@code query-block-exports}: the NBD export, as QEMU lists it (plus {@code x-uri});</li>
 *   <li>{@code x-handoff-prepare}: the source's half of a handoff once the job has concluded:
 *       waits for in-flight writes, refuses new ones (clients get {@code EPERM}), flushes, marks the
 *       ownership record clean, goes INACTIVE and releases the locks; returns the token
 *       {@code {"epoch": N, "owner": ID}};</li>
 *   <li>{@code x-handoff-accept {"epoch": N, "owner": ID}}: the destination's half, for an image
 *       on shared storage served with {@code --inactive}: activates with the source's token (the
 *       ownership lock, the epoch check), after which clients may write;</li>
 *   <li>{@code x-handoff-abort}: takes the image back after a failed migration (ACTIVE again,
 *       writes accepted again);</li>
 *   <li>{@code x-query-ownership}: {@code {"state", "epoch", "owner"}};</li>
 *   <li>{@code quit}: stops serving and exits 0 (an ACTIVE image is flushed and released, an
 *       INACTIVE one closed without writing anything).</li>
 * </ul>
 * The mirror job never completes on its own: it stays READY, keeping the target in sync, until
 * {@code block-job-complete} (pivot: clients then write to the target) or {@code block-job-cancel}
 * (no pivot: the target is a consistent copy, clients stay on IMAGE; what a migration does).
 */
@Command(name = "serve", sortOptions = false, usageHelpWidth = 100,
        description = {"Export the raw image IMAGE over NBD, held ACTIVE with QEMU-compatible locks and an ownership"
                + " record (or, with --coordinator, a lock and record in a ZooKeeper ensemble); with --mirror-to, mirror it to TARGET while clients write (the job stays READY until"
                + " block-job-complete or block-job-cancel over --control). Runs until `quit` over --control, or"
                + " Ctrl-C."},
        exitCodeListHeading = "%nExit codes:%n", exitCodeList = {
            " 0:stopped by quit",
            " 1:the coordinator (ZooKeeper) cannot be reached",
            " 2:usage error",
            " 3:bad image or target (missing, size mismatch, not writable, unreachable export), or the coordinator"
                + " PATH belongs to another image",
            " 4:image locked by another process (QEMU or Handoff), or the NBD address is in use",
            " 6:fenced: a newer owner took the image over, or the coordinator session was lost",
            "130:interrupted (Ctrl-C)"})
final class ServeCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "IMAGE", description = "Raw image file to export.")
    Path image;

    @Option(names = "--nbd", required = true, paramLabel = "ADDRESS",
            description = "Where to listen: unix:PATH, or tcp:[HOST:]PORT (HOST defaults to 127.0.0.1).")
    String nbd;

    @Option(names = "--export-name", paramLabel = "NAME", defaultValue = "disk",
            description = "The export's name, as in nbd+unix:///NAME?socket=PATH (default: ${DEFAULT-VALUE}).")
    String exportName;

    @Option(names = "--read-only", description = "Refuse writes from NBD clients (EPERM).")
    boolean readOnly;

    @Option(names = "--mirror-to", paramLabel = "TARGET", description = "Mirror IMAGE to TARGET while serving: a raw"
            + " image file (created if absent) or an NBD export (nbd+unix:///NAME?socket=PATH, nbd://HOST:PORT/NAME).")
    String mirrorTo;

    @Option(names = "--control", paramLabel = "SOCKET", description = "Listen on this unix socket for QMP commands"
            + " (the block-job commands, query-block-exports, x-handoff-prepare, x-handoff-accept, x-handoff-abort,"
            + " x-query-ownership, quit) and send QMP events.")
    Path control;

    @Option(names = "--owner", paramLabel = "ID", description = "This holder's id in the ownership record and in"
            + " handoff tokens (default: serve-PID).")
    String owner;

    @Option(names = "--inactive", description = "Open IMAGE INACTIVE (shared storage: the destination of a handoff):"
            + " clients may read, writes get EPERM until x-handoff-accept activates it with the source's token.")
    boolean inactive;

    @Option(names = "--job-id", paramLabel = "ID", defaultValue = "mirror0",
            description = "The mirror job's QMP id (\"device\") (default: ${DEFAULT-VALUE}).")
    String jobId;

    @Mixin
    JobOptions jobOptions;

    @Mixin
    CoordinatorOptions coordinator;

    private final CountDownLatch quit = new CountDownLatch(1);
    private final AtomicBoolean stopped = new AtomicBoolean();
    private volatile boolean serving;
    private volatile String sessionLost; // why the coordinator session was lost, if it was

    private OwnedImage owned;
    private MirrorTarget target;
    private MirrorJob job;
    private JobRun run;
    private WriteGate gate;
    private NbdServer server;
    private QmpServer qmpServer;
    private NbdUri uri;

    @Override
    public Integer call() throws Exception {
        String ownerId = owner != null ? owner : "serve-" + ProcessHandle.current().pid();
        NbdAddress address;
        try {
            address = NbdAddress.parse(nbd);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "invalid value for option '--nbd': " + e.getMessage());
        }
        if (jobId.isBlank()) {
            throw new CliException(ExitCodes.USAGE, "--job-id must not be empty");
        }
        if (inactive && mirrorTo != null) {
            throw new CliException(ExitCodes.USAGE, "--inactive and --mirror-to exclude each other: an INACTIVE image"
                    + " takes no writes, so its clients could not write while the job runs");
        }
        try {
            NbdExport.of(exportName, new dev.handoff.device.MemoryDevice(0)); // checks the name only
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "invalid value for option '--export-name': " + e.getMessage());
        }
        JobOptions.Injection injection = null;
        if (mirrorTo != null) {
            jobOptions.validate();
            injection = jobOptions.injection();
        }
        if (control != null) {
            QmpServer.check(control);
        }
        coordinator.validate();
        SourceImage checked = SourceImage.check(image);
        if (mirrorTo != null) {
            target = MirrorTarget.resolve(mirrorTo);
            target.check(checked);
        }

        try {
            owned = open(ownerId);
            BlockDevice exported = owned;
            if (target != null) {
                BlockDevice targetDevice = target.open(checked.size());
                BlockDevice jobTarget = injection != null ? injection.wrap(targetDevice).device() : targetDevice;
                job = MirrorJob.create(owned, jobTarget, jobOptions.toMirrorOptions(target.readsAsZeroes()));
                run = new JobRun(job, jobId);
                exported = job.guestDevice();
            }
            gate = new WriteGate(exported);
            try {
                server = NbdServer.builder().listen(address)
                        .export(new NbdExport(exportName, gate, readOnly, "handoff serve " + image)).start();
            } catch (IOException e) {
                throw new CliException(ExitCodes.BUSY, "cannot listen on " + address + ": " + e.getMessage());
            }
            uri = server.uri(exportName);
            if (control != null) {
                qmpServer = QmpServer.bind(control, new Control(), "handoff " + Main.version());
            }
        } catch (CliException | RuntimeException e) {
            stop(false);
            throw e;
        }

        if (run != null) {
            QmpServer q = qmpServer;
            if (q != null) {
                run.addSink((e, events) -> events.forEach(q::broadcast));
            }
            run.addSink((e, events) -> {
                String line = EventLines.describe(e);
                if (line != null) {
                    System.out.println(line);
                    System.out.flush();
                }
            });
        }
        System.out.println("serving " + image + " (" + Sizes.format(owned.size()) + ") as " + uri + ": "
                + owned.state() + ", owner " + ownerId + ", epoch " + owned.epoch() + (readOnly ? ", read-only" : "")
                + (target != null ? ", mirroring to " + target.display() : "")
                + (coordinator.present() ? ", coordinator " + coordinator.coordinator : "")
                + (control != null ? ", control " + control : ""));
        System.out.flush();
        serving = true;
        Thread hook = new Thread(() -> stop(true), "handoff-serve-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        if (run != null) {
            run.start();
        }
        quit.await();
        Thread.sleep(100); // lets the reply to `quit` reach the client
        stop(false);
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the hook runs or has run: it finds the work done
        }
        String lost = sessionLost;
        if (lost != null) {
            throw new CliException(ExitCodes.FENCED, "ZooKeeper session lost mid-command: " + lost + "; " + image
                    + " is fenced here and no longer served (nothing more was acknowledged; the next activation takes"
                    + " over with a newer epoch)");
        }
        return ExitCodes.OK;
    }

    private OwnedImage open(String ownerId) throws CliException {
        if (coordinator.present()) {
            return coordinator.open(image, ownerId, inactive ? OwnedImage.State.INACTIVE : OwnedImage.State.ACTIVE, why -> {
                sessionLost = why;
                quit.countDown();
            });
        }
        try {
            return OwnedImage.openFile(image, ownerId, inactive ? OwnedImage.State.INACTIVE : OwnedImage.State.ACTIVE);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "invalid value for option '--owner': " + e.getMessage());
        } catch (ImageFencedException e) {
            throw new CliException(ExitCodes.FENCED, "cannot activate " + image + ": " + e.getMessage());
        } catch (ImageInactiveException e) {
            throw new CliException(ExitCodes.BUSY, "image is in use: " + e.getMessage());
        } catch (DeviceException e) {
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot open " + image + ": " + e.getMessage());
        }
    }

    /**
     * Stops serving: NBD clients' in-flight requests finish, a running job is cancelled (forced,
     * as on any exit of qemu-storage-daemon), then the target and the image are closed. Once.
     */
    private void stop(boolean signalled) {
        if (!stopped.compareAndSet(false, true)) {
            return;
        }
        if (server != null) {
            server.close();
        }
        if (job != null && !job.state().isConcluded()) {
            try {
                run.qmp().noteCancel(true);
                job.cancel(true);
                job.awaitConclusion(Duration.ofSeconds(30));
            } catch (IllegalStateException | TimeoutException raced) {
                // concluded meanwhile, or stuck: closing below
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (run != null) {
            try {
                run.awaitDelivered(Duration.ofSeconds(2));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (qmpServer != null) {
            qmpServer.close();
        }
        if (target != null) {
            target.close();
        }
        String state = "";
        if (owned != null) {
            state = owned.state().toString();
            try {
                owned.close();
            } catch (DeviceException e) {
                if (sessionLost == null) { // else the one line that says so is the error
                    System.err.println("handoff serve: closing " + image + " failed: " + e.getMessage());
                }
            }
        }
        if (serving && sessionLost == null) {
            System.out.println((signalled ? "interrupted" : "stopped") + ": " + image + " closed " + state);
            System.out.flush();
        }
    }

    /** The control socket: the job's commands plus the export's, the handoff's and quit. */
    private final class Control implements QmpServer.Handler {
        private final JobControl jobControl = job != null ? new JobControl(job, run.qmp()) : null;
        private final Set<String> own = Set.of("query-block-exports", "x-handoff-prepare", "x-handoff-accept",
                "x-handoff-abort", "x-query-ownership", "quit");

        @Override
        public Set<String> commands() {
            Set<String> all = new TreeSet<>(own);
            if (jobControl != null) {
                all.addAll(jobControl.commands());
            }
            return all;
        }

        @Override
        public JsonNode execute(String command, ObjectNode args) throws QmpException {
            if (!own.contains(command)) {
                if (jobControl != null && jobControl.commands().contains(command)) {
                    return jobControl.execute(command, args);
                }
                throw new QmpException(QmpException.COMMAND_NOT_FOUND, "The command " + command + " has not been found");
            }
            if (command.equals("x-handoff-accept")) {
                return accept(args);
            }
            if (args.size() > 0) {
                throw QmpException.generic("Parameter '" + args.fieldNames().next() + "' is unexpected");
            }
            switch (command) {
                case "query-block-exports": {
                    ArrayNode list = Json.array();
                    ObjectNode export = list.addObject();
                    export.put("type", "nbd");
                    export.put("id", exportName);
                    export.put("node-name", image.getFileName().toString());
                    export.put("shutting-down", stopped.get());
                    export.put("x-uri", uri.toString());
                    export.put("x-connections", server.connectionCount());
                    return list;
                }
                case "x-handoff-prepare":
                    return prepare();
                case "x-handoff-abort":
                    try {
                        owned.abortHandoff();
                    } catch (DeviceException | IllegalStateException e) {
                        throw QmpException.generic("x-handoff-abort refused: " + e.getMessage());
                    }
                    gate.acceptWrites();
                    return ownership();
                case "x-query-ownership":
                    return ownership();
                default: // quit
                    if (qmpServer != null) {
                        ObjectNode data = Json.object();
                        data.put("guest", false);
                        data.put("reason", "host-qmp-quit");
                        qmpServer.broadcast(QmpEvents.event("SHUTDOWN", data));
                    }
                    quit.countDown();
                    return Json.object();
            }
        }

        private JsonNode prepare() throws QmpException {
            if (job != null && !job.state().isConcluded()) {
                throw QmpException.generic("Job '" + jobId + "' is " + job.state()
                        + ": complete or cancel it before handing the image over");
            }
            gate.refuseWrites(); // waits for in-flight client writes; new ones are refused from here on
            HandoffToken token;
            try {
                token = owned.prepareHandoff();
            } catch (DeviceException | IllegalStateException e) {
                if (owned.state() == OwnedImage.State.ACTIVE) {
                    gate.acceptWrites();
                }
                throw QmpException.generic("x-handoff-prepare failed: " + e.getMessage());
            }
            ObjectNode r = Json.object();
            r.put("epoch", token.epoch());
            r.put("owner", token.ownerId());
            System.out.println("handed over: " + image + " INACTIVE, token " + token.epoch() + ":" + token.ownerId());
            System.out.flush();
            return r;
        }

        /** The destination's half (shared storage): {"epoch": N, "owner": ID} from the source's prepare. */
        private JsonNode accept(ObjectNode args) throws QmpException {
            java.util.Iterator<String> names = args.fieldNames();
            while (names.hasNext()) {
                String n = names.next();
                if (!n.equals("epoch") && !n.equals("owner")) {
                    throw QmpException.generic("Parameter '" + n + "' is unexpected");
                }
            }
            JsonNode epoch = args.get("epoch");
            JsonNode from = args.get("owner");
            if (epoch == null || !epoch.canConvertToLong() || from == null || !from.isTextual()) {
                throw QmpException.generic("x-handoff-accept needs 'epoch' (integer) and 'owner' (string): the token"
                        + " x-handoff-prepare returned");
            }
            HandoffToken token;
            try {
                token = new HandoffToken(epoch.asLong(), from.asText());
            } catch (IllegalArgumentException e) {
                throw QmpException.generic("Invalid token: " + e.getMessage());
            }
            try {
                owned.acceptHandoff(token);
            } catch (DeviceException | IllegalStateException e) {
                throw QmpException.generic("x-handoff-accept refused: " + e.getMessage());
            }
            gate.acceptWrites();
            System.out.println("took over: " + image + " ACTIVE, epoch " + owned.epoch());
            System.out.flush();
            return ownership();
        }

        private ObjectNode ownership() {
            ObjectNode r = Json.object();
            r.put("state", owned.state().toString());
            r.put("epoch", owned.epoch());
            r.put("owner", owned.ownerId());
            return r;
        }
    }

    /**
     * What NBD clients write through: refuses writes (INACTIVE, so clients get EPERM) once closed
     * for a handoff. Writes hold the read lock from the check until the device returns; closing
     * takes the write lock, so it returns only when no write is in flight and none can start.
     */
    private static final class WriteGate implements BlockDevice {
        private final BlockDevice inner;
        private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
        private volatile boolean closed; // written under the write lock, read under the read lock

        WriteGate(BlockDevice inner) {
            this.inner = inner;
        }

        void refuseWrites() {
            lock.writeLock().lock();
            try {
                closed = true;
            } finally {
                lock.writeLock().unlock();
            }
        }

        void acceptWrites() {
            closed = false;
        }

        private interface Write {
            void run() throws DeviceException;
        }

        private void write(Write w) throws DeviceException {
            lock.readLock().lock();
            try {
                if (closed) {
                    throw new ImageInactiveException("the image was handed over: writes are refused here");
                }
                w.run();
            } finally {
                lock.readLock().unlock();
            }
        }

        @Override
        public long size() {
            return inner.size();
        }

        @Override
        public void read(long offset, ByteBuffer dst) throws DeviceException {
            inner.read(offset, dst);
        }

        @Override
        public void write(long offset, ByteBuffer src) throws DeviceException {
            write(() -> inner.write(offset, src));
        }

        @Override
        public void writeZeroes(long offset, long length) throws DeviceException {
            write(() -> inner.writeZeroes(offset, length));
        }

        @Override
        public void discard(long offset, long length) throws DeviceException {
            write(() -> inner.discard(offset, length));
        }

        @Override
        public void flush() throws DeviceException {
            write(inner::flush);
        }

        @Override
        public void close() {
            // the command closes the image and the target itself
        }

        @Override
        public String toString() {
            return "WriteGate[" + inner + "]";
        }
    }
}
