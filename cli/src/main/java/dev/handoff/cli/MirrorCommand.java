package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorEvent;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.SyncMode;
import java.io.PrintStream;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeoutException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code handoff mirror SOURCE TARGET}: copies a raw image to a target with a mirror job, holding
 * the source with QEMU's write locks meanwhile, and completes when READY (or waits, or cancels
 * into a consistent copy without pivot).
 *
 * <p>Order of work, so that bad input changes nothing: check options, the control socket path,
 * the source and the target (looking only); then lock the source, open or create and lock the
 * target, bind the control socket (each undone if a later step fails); then run.
 *
 * <p>Access modes (CONTRIBUTING, "One accessor convention"): three fields cross threads, each
 * written once ({@code sv}) and read with a volatile load ({@code lv}) that pairs with it.
 * {@code bitmap}: by the main thread when opened; read by the ending, on the main thread or the
 * shutdown hook's. {@code running}: by the main thread once the job is launched; read by
 * {@link #onSessionLost} on the coordinator's thread. {@code sessionLost}: by that callback; read
 * by the ending. The callback stores {@code sessionLost} before it loads {@code running}: a job
 * launched after that load is not cancelled by it, and the ending, which loads
 * {@code sessionLost}, reports the target as not consistent either way. Release stores and
 * acquire loads would do; nothing is on an I/O path.
 */
@Command(name = "mirror", sortOptions = false, usageHelpWidth = 100,
        description = {"Mirror the raw image SOURCE (a file or a block device) to TARGET (a file, created if absent,"
                + " a block device, or an NBD export; an existing target must have the source's size). The source is"
                + " held with QEMU-compatible locks (or, with --coordinator, ACTIVE through ZooKeeper) while the job"
                + " runs and is never written. By default the job completes as soon as it is READY."},
        exitCodeListHeading = "%nExit codes:%n", exitCodeList = {
            " 0:COMPLETED, or cancelled once READY: TARGET is a consistent copy of SOURCE",
            " 1:FAILED: an I/O error under the report policy, or the coordinator (ZooKeeper) cannot be reached;"
                + " TARGET is not consistent",
            " 2:usage error",
            " 3:bad image (missing source, size mismatch, target is the source, not writable), the coordinator"
                + " PATH belongs to another image, or a --bitmap that is damaged, stale or of other images",
            " 4:source, target or --bitmap locked by another process (QEMU or Handoff), or held by another holder",
            " 5:CANCELLED before READY (block-job-cancel); TARGET is not consistent",
            " 6:the coordinator session holding SOURCE was lost mid-command; TARGET is not consistent",
            "130:interrupted (Ctrl-C); the message says whether TARGET is consistent",
            "143:terminated (SIGTERM); the message says whether TARGET is consistent"})
final class MirrorCommand implements Callable<Integer> {
    private static final VarHandle BITMAP;
    private static final VarHandle SESSION_LOST;
    private static final VarHandle RUNNING;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            BITMAP = l.findVarHandle(MirrorCommand.class, "bitmap", ResumeBitmap.class);
            SESSION_LOST = l.findVarHandle(MirrorCommand.class, "sessionLost", String.class);
            RUNNING = l.findVarHandle(MirrorCommand.class, "running", MirrorJob.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @Parameters(index = "0", paramLabel = "SOURCE", description = "Raw image file or block device to copy.")
    Path source;

    @Parameters(index = "1", paramLabel = "TARGET", description = "Raw image file, block device or NBD export"
            + " (nbd+unix:///NAME?socket=PATH, nbd://HOST:PORT/NAME; over TLS nbds://HOST:PORT/NAME or"
            + " nbds+unix:///NAME?socket=PATH) to write.")
    String target;

    @Option(names = "--tls-creds", paramLabel = "DIR", description = "Client credentials for an nbds:// TARGET, laid out"
            + " as QEMU's tls-creds-x509: ca-cert.pem (the CA the server's certificate must chain to; its host name is"
            + " checked too), and client-cert.pem with client-key.pem if the server asks for a client certificate.")
    Path tlsCreds;

    @Option(names = "--socket-mode", paramLabel = "MODE", defaultValue = "0600", description = "Permissions of the"
            + " --control socket, in octal (default: ${DEFAULT-VALUE}, owner only).")
    String socketMode;

    @Option(names = "--wait", description = "Stay READY (keeping the target in sync) until told over --control"
            + " (block-job-complete or block-job-cancel), or interrupted.")
    boolean waitInReady;

    @Option(names = "--cancel-when-ready", description = "Cancel once READY: the target is a consistent copy and no"
            + " pivot happens (QEMU's soft cancel).")
    boolean cancelWhenReady;

    @Option(names = "--control", paramLabel = "SOCKET", description = "Listen on this unix socket for QMP commands"
            + " (query-block-jobs, block-job-complete/cancel/pause/resume/set-speed/change, ...) and send QMP events.")
    Path control;

    @Option(names = "--format", paramLabel = "FORMAT", converter = ImageFormat.Converter.class,
            description = "raw: take SOURCE and an existing TARGET as raw even if their first bytes look like another"
                    + " format's header (qcow2, vmdk, vhdx, vdi, vpc, qed, LUKS, ...), which is refused otherwise.")
    ImageFormat format;

    @Option(names = "--direct", description = "Open SOURCE and TARGET with direct I/O (O_DIRECT), bypassing the page"
            + " cache: for block devices and large images whose copy should not evict the host's cache. The"
            + " granularity and the image size must be multiples of the file system's block size.")
    boolean direct;

    @Option(names = "--json", description = "Print the job's QMP events as JSON lines on stdout (messages go to stderr).")
    boolean json;

    @Option(names = "--progress", paramLabel = "MODE", defaultValue = "auto", converter = ProgressView.ModeConverter.class,
            description = "auto, bar, lines or none (default: bar on a terminal, a line a second otherwise; none with --json).")
    ProgressView.Mode progress;

    @Option(names = "--job-id", paramLabel = "ID", defaultValue = "mirror0",
            description = "The job's QMP id (\"device\") (default: ${DEFAULT-VALUE}).")
    String jobId;

    @Mixin
    JobOptions jobOptions;

    @Mixin
    CoordinatorOptions coordinator;

    @Mixin
    BitmapOptions bitmapOptions;

    private volatile ResumeBitmap bitmap; // --bitmap's, once opened; through the accessors

    @Mixin
    JfrOption jfr;

    private volatile String sessionLost; // why the coordinator session was lost, if it was; the same
    private volatile MirrorJob running;  // the same

    private final Object exitLock = new Object();
    private boolean finished;     // guarded by exitLock: the main thread owns the ending
    private boolean interrupted;  // guarded by exitLock: the shutdown hook owns the ending

    @Override
    public Integer call() throws Exception {
        if (waitInReady && cancelWhenReady) {
            throw new CliException(ExitCodes.USAGE, "--wait and --cancel-when-ready exclude each other");
        }
        jobOptions.validate();
        bitmapOptions.validate();
        if (jobOptions.sync == SyncMode.NONE) {
            throw new CliException(ExitCodes.USAGE, "--sync none copies only writes made while the job runs, and"
                    + " `handoff mirror` has no guest writing: it would copy nothing");
        }
        jobOptions.requireResumable(control != null, "only a control socket can resume it: add --control SOCKET"
                + " (then send block-job-resume), or use ignore (retry the failed chunk) or report (fail)");
        JobLauncher launcher = JobLauncher.of(jobOptions, jobId);
        var controlMode = TlsOptions.socketMode(socketMode, "--socket-mode");
        if (control != null) {
            QmpServer.check(control);
        }
        coordinator.validate();
        SourceImage src = SourceImage.check(source, format);
        MirrorTarget tgt = MirrorTarget.resolve(target, tlsCreds, "--tls-creds");
        tgt.check(src, format);
        if (direct) {
            if (coordinator.present()) {
                throw new CliException(ExitCodes.USAGE, "--direct and --coordinator exclude each other: the"
                        + " coordinator opens the source through ZooKeeper's ownership, without O_DIRECT");
            }
            checkDirect(src, tgt, launcher.options().granularity());
        }

        PrintStream human = json ? System.err : System.out;
        jfr.start();
        if (coordinator.present()) {
            src.openOwned(coordinator, "mirror-" + ProcessHandle.current().pid(), this::onSessionLost);
        } else {
            src.openAndLock(direct);
        }
        BlockDevice targetDevice;
        JobRun run;
        QmpServer server = null;
        try {
            targetDevice = tgt.open(src.size());
        } catch (CliException e) {
            src.close();
            throw e;
        }
        if (bitmapOptions.present()) {
            try {
                svBitmap(ResumeBitmap.open(bitmapOptions.file, bitmapOptions.restart, src.path(), src.size(),
                        tgt instanceof FileTarget f ? f.path() : null, tgt.display(), src.size(),
                        launcher.options().granularity(), true));
            } catch (CliException e) {
                tgt.abandon();
                src.close();
                throw e;
            }
        }
        try {
            run = launcher.launch(src.device(), targetDevice, tgt.readsAsZeroes(), lvBitmap());
            svRunning(run.job());
            if (control != null) {
                JobTable table = new JobTable();
                table.add(run);
                server = QmpServer.bind(control, controlMode, new JobControl(table), "handoff " + Main.version());
            }
        } catch (CliException | QmpException | RuntimeException e) {
            if (lvBitmap() != null) {
                lvBitmap().close();
            }
            tgt.abandon();
            src.close();
            throw e instanceof QmpException q ? new CliException(ExitCodes.FAILED, q.getMessage()) : e;
        }
        MirrorJob job = run.job();
        JobOptions.Injection injection = launcher.injection();

        long t0 = System.nanoTime();
        ProgressView.Mode mode = json && progress == ProgressView.Mode.AUTO ? ProgressView.Mode.NONE : progress;
        ProgressView view = new ProgressView(job::progress, human, mode, t0);
        QmpServer qmpServer = server;
        if (qmpServer != null) {
            run.addSink((e, qmp) -> qmp.forEach(qmpServer::broadcast));
        }
        if (json) {
            run.addSink((e, qmp) -> {
                for (var event : qmp) {
                    System.out.println(Json.line(event));
                }
                System.out.flush();
            });
        }
        run.addSink((e, qmp) -> {
            String line = EventLines.describe(e, false);
            if (line != null) {
                view.println(view.elapsed() + " " + line);
            }
        });
        run.addSink((e, qmp) -> onEventAutoAction(run, e));

        human.println("mirror " + src.path() + " -> " + tgt.display() + " (" + Sizes.format(src.size())
                + (tgt.created() ? ", target created" : "") + "): granularity " + Sizes.format(job.options().granularity())
                + ", " + Choices.name(job.options().copyMode()) + (job.options().speed() > 0
                        ? ", speed " + Sizes.format(job.options().speed()) + "/s" : "")
                + (injection != null ? ", injecting " + injection : "")
                + (qmpServer != null ? ", control " + control : ""));
        if (bitmap != null) {
            human.println(bitmap.describe(src.size()));
        }
        if (waitInReady && qmpServer == null) {
            human.println("--wait without --control: staying READY until interrupted (Ctrl-C leaves a consistent copy)");
        }

        Thread hook = new Thread(() -> onInterrupt(run, view, tgt, targetDevice, src, qmpServer, human),
                "handoff-interrupt");
        Runtime.getRuntime().addShutdownHook(hook);
        view.start();
        run.start();

        JobState end = job.conclusion().join();
        run.awaitDelivered(Duration.ofSeconds(10));
        synchronized (exitLock) {
            if (interrupted) {
                // The shutdown hook reports and cleans up; the JVM exits when it is done.
                Thread.sleep(Long.MAX_VALUE);
            }
            finished = true;
        }
        view.close();
        if (qmpServer != null) {
            qmpServer.close();
        }
        // A forced cancel after READY abandons the job without its final flush; the copy itself
        // was complete (no one writes the source here), so make it durable and say so.
        boolean consistentAfterCancel = lvSessionLost() == null && end == JobState.CANCELLED && job.progress().ready()
                && flushed(targetDevice);
        String bitmapLine = finishBitmap(lvSessionLost() == null && (end == JobState.COMPLETED || consistentAfterCancel));
        tgt.close();
        src.close();
        jfr.finish();
        double seconds = (System.nanoTime() - t0) / 1e9;
        String took = String.format(Locale.ROOT, "%.2f s", seconds);
        String lost = lvSessionLost();
        if (lost != null) {
            System.err.println("handoff mirror: ZooKeeper session lost mid-command: " + lost + "; the job was cancelled"
                    + " after " + took + " (another holder may write " + src.path() + "): " + tgt.display()
                    + " is NOT consistent (left as is)");
            return ExitCodes.FENCED;
        }
        if (bitmapLine != null) {
            (end == JobState.COMPLETED || consistentAfterCancel ? human : System.err).println(bitmapLine);
        }
        switch (end) {
            case COMPLETED:
                human.println("done in " + took + ": " + tgt.display() + " is a consistent copy of " + src.path());
                return ExitCodes.OK;
            case CANCELLED:
                if (consistentAfterCancel) {
                    human.println("cancelled after " + took + ", once READY: " + tgt.display() + " is a consistent copy"
                            + " of " + src.path() + " (nothing wrote the source after READY; the target was flushed)");
                    return ExitCodes.OK;
                }
                System.err.println("handoff mirror: cancelled after " + took + " before the copy was consistent: "
                        + tgt.display() + " is NOT consistent (left as is)");
                return ExitCodes.CANCELLED;
            default:
                System.err.println("handoff mirror: the job failed: " + job.failureReason() + "; " + tgt.display()
                        + " is NOT consistent (left as is)");
                return ExitCodes.FAILED;
        }
    }

    /** The source's coordinator session is gone: another holder may write it, so the copy cannot be trusted. */
    private void onSessionLost(String why) {
        svSessionLost(why); // then loads running (class comment)
        MirrorJob job = lvRunning();
        if (job != null) {
            try {
                job.cancel(true);
            } catch (IllegalStateException concluded) {
                // it ended first: the report says the session was lost all the same
            }
        }
    }

    /**
     * Direct I/O moves whole blocks of the file system: every copy (granularity-aligned, up to the
     * image's end) must be a multiple of its block size, on both sides.
     */
    private static void checkDirect(SourceImage src, MirrorTarget tgt, int granularity) throws CliException {
        if (!(tgt instanceof FileTarget file)) {
            throw new CliException(ExitCodes.USAGE, "--direct applies to files and block devices, not to an NBD export");
        }
        file.direct(true);
        for (Path p : new Path[] {src.path(), file.exists() ? file.path() : file.path().toAbsolutePath().getParent()}) {
            long block;
            try {
                block = java.nio.file.Files.getFileStore(p).getBlockSize();
            } catch (java.io.IOException | UnsupportedOperationException e) {
                throw new CliException(ExitCodes.BAD_IMAGE, "--direct: cannot learn the block size of " + p + ": "
                        + e.getMessage());
            }
            if (granularity % block != 0 || src.size() % block != 0) {
                throw new CliException(ExitCodes.USAGE, "--direct needs the granularity (" + Sizes.format(granularity)
                        + ") and the image size (" + src.size() + " bytes) to be multiples of the block size of "
                        + p + " (" + block + " bytes)");
            }
        }
    }

    /** Ends the bitmap's use (removed if the copy is complete, else kept to resume); its line, or null. */
    private String finishBitmap(boolean complete) {
        ResumeBitmap b = lvBitmap();
        return b != null ? b.finish(complete) : null;
    }

    /** Flushes the target; false (with a line on stderr) if that fails. */
    private static boolean flushed(BlockDevice target) {
        try {
            target.flush();
            return true;
        } catch (DeviceException e) {
            System.err.println("handoff mirror: flushing the target failed: " + e.getMessage());
            return false;
        }
    }

    /** Completes (or soft-cancels) each time the job becomes READY, unless --wait. */
    private void onEventAutoAction(JobRun run, MirrorEvent e) {
        if (waitInReady || !(e instanceof MirrorEvent.StateChanged s) || s.to() != JobState.READY) {
            return;
        }
        MirrorJob job = run.job();
        try {
            if (cancelWhenReady) {
                run.qmp().noteCancel(false);
                job.cancel();
            } else {
                job.complete();
            }
        } catch (IllegalStateException raced) {
            // A control client acted first (paused, cancelled, completed): its command stands.
        }
    }

    /** Ctrl-C or SIGTERM: stop the job cleanly and say what the target holds. */
    private void onInterrupt(JobRun run, ProgressView view, MirrorTarget tgt, BlockDevice targetDevice, SourceImage src,
            QmpServer server, PrintStream human) {
        synchronized (exitLock) {
            if (finished) {
                return;
            }
            interrupted = true;
        }
        MirrorJob job = run.job();
        JobState state = job.state();
        String how;
        if (!state.isConcluded()) {
            boolean graceful = false;
            if (run.qmp().completable()) {
                run.qmp().noteCancel(false);
                try {
                    job.cancel(); // READY: the graceful cancel leaves a consistent copy at once
                    graceful = true;
                } catch (IllegalStateException raced) {
                    // concluded, or cannot drain from here: force below
                }
            }
            if (!graceful || !await(job, Duration.ofSeconds(5))) {
                run.qmp().noteCancel(true);
                try {
                    job.cancel(true);
                } catch (IllegalStateException raced) {
                    // concluded meanwhile
                }
                await(job, Duration.ofSeconds(10));
            }
            how = "interrupted";
        } else {
            how = "interrupted after the job ended";
        }
        try {
            run.startDispatcher();
            run.awaitDelivered(Duration.ofSeconds(2));
        } catch (InterruptedException ignored) {
            // report what we have
        }
        view.close();
        if (server != null) {
            server.close();
        }
        var p = job.progress();
        JobState end = job.state();
        String copied = Sizes.format(p.offset()) + " of " + Sizes.format(src.size()) + " copied";
        // After READY a forced cancel leaves the copy complete too (no one writes the source here);
        // it only skips the final flush, made here.
        boolean consistent = end == JobState.COMPLETED || (end == JobState.CANCELLED && p.ready() && flushed(targetDevice));
        String bitmapLine = finishBitmap(consistent);
        tgt.close();
        src.close();
        if (consistent) {
            System.err.println("handoff mirror: " + how + ": the job had reached READY, so " + tgt.display()
                    + " is a consistent copy of " + src.path() + "; " + src.path() + " untouched");
        } else {
            System.err.println("handoff mirror: " + how + " (" + copied + "): " + src.path() + " untouched; "
                    + tgt.display() + " is NOT consistent (left as is)");
        }
        if (bitmapLine != null) {
            System.err.println("handoff mirror: " + bitmapLine);
        }
        human.flush();
        System.err.flush();
    }

    private static boolean await(MirrorJob job, Duration timeout) {
        try {
            job.awaitConclusion(timeout);
            return true;
        } catch (TimeoutException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private ResumeBitmap lvBitmap() {
        return (ResumeBitmap) BITMAP.getVolatile(this); // pairs with svBitmap
    }

    private void svBitmap(ResumeBitmap b) {
        BITMAP.setVolatile(this, b); // the main thread, once; a release would do
    }

    private String lvSessionLost() {
        return (String) SESSION_LOST.getVolatile(this); // pairs with svSessionLost
    }

    private void svSessionLost(String why) {
        SESSION_LOST.setVolatile(this, why); // the coordinator's thread; a release would do
    }

    private MirrorJob lvRunning() {
        return (MirrorJob) RUNNING.getVolatile(this); // the coordinator's thread; pairs with svRunning
    }

    private void svRunning(MirrorJob job) {
        RUNNING.setVolatile(this, job); // the main thread, once; a release would do
    }
}
