package dev.handoff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorProgress;
import java.util.Map;
import java.util.Set;

/**
 * The job commands of QEMU's QMP for the mirror jobs of a {@link JobTable}, with QEMU's argument
 * names, error classes and messages:
 * <ul>
 *   <li>{@code query-block-jobs}, {@code query-jobs}</li>
 *   <li>{@code block-job-complete}, {@code block-job-cancel} ({@code force}), {@code block-job-pause},
 *       {@code block-job-resume}, {@code block-job-set-speed} ({@code speed}) — by {@code device}</li>
 *   <li>{@code block-job-finalize}, {@code block-job-dismiss}, {@code job-complete}, {@code job-cancel},
 *       {@code job-pause}, {@code job-resume}, {@code job-finalize}, {@code job-dismiss} — by {@code id}</li>
 *   <li>{@code block-job-change} ({@code id}, {@code type: "mirror"}, {@code copy-mode})</li>
 * </ul>
 * Each command is first checked against QEMU's verb table (which verbs each job status accepts);
 * a refused one gets QEMU's GenericError {@code "Job 'ID' in state 'STATUS' cannot accept command
 * verb 'VERB'"} and changes nothing. Then QEMU's own refusals: pausing a paused job, resuming one
 * that is not, a soft {@code block-job-cancel} of a paused job. {@code job-cancel} is QEMU's: always
 * forced. Threading: called from control sessions, possibly at once; the kernel serializes.
 */
final class JobControl implements QmpServer.Handler {
    private static final Set<String> COMMANDS = Set.of("query-block-jobs", "query-jobs", "block-job-complete",
            "block-job-cancel", "block-job-pause", "block-job-resume", "block-job-set-speed", "block-job-change",
            "block-job-finalize", "block-job-dismiss", "job-complete", "job-cancel", "job-pause", "job-resume",
            "job-finalize", "job-dismiss");

    /** QEMU's JobVerbTable: the statuses in which each verb is accepted. */
    private static final Set<String> LIVE = Set.of("created", "running", "paused", "ready", "standby");
    private static final Map<String, Set<String>> VERBS = Map.of(
            "cancel", Set.of("created", "running", "paused", "ready", "standby", "waiting", "pending", "aborting"),
            "pause", LIVE,
            "resume", LIVE,
            "set-speed", LIVE,
            "change", LIVE,
            "complete", Set.of("ready", "standby"),
            "finalize", Set.of("pending"),
            "dismiss", Set.of("concluded"));

    private final JobTable jobs;

    JobControl(JobTable jobs) {
        this.jobs = jobs;
    }

    @Override
    public Set<String> commands() {
        return COMMANDS;
    }

    @Override
    public JsonNode execute(String command, ObjectNode args) throws QmpException {
        switch (command) {
            case "query-block-jobs":
                Args.allow(args);
                return queryBlockJobs();
            case "query-jobs":
                Args.allow(args);
                return queryJobs();
            case "block-job-complete":
                Args.allow(args, "device");
                complete(jobs.byDevice(Args.string(args, "device")));
                return Json.object();
            case "job-complete":
                Args.allow(args, "id");
                complete(jobs.byId(Args.string(args, "id")));
                return Json.object();
            case "block-job-cancel": {
                Args.allow(args, "device", "force");
                JobRun run = jobs.byDevice(Args.string(args, "device"));
                boolean force = Args.optBool(args, "force", false);
                verb(run, "cancel");
                if (!force && isPaused(run)) {
                    throw QmpException.generic("The block job for device '" + run.jobId() + "' is currently paused");
                }
                cancel(run, force);
                return Json.object();
            }
            case "job-cancel": {
                Args.allow(args, "id");
                JobRun run = jobs.byId(Args.string(args, "id"));
                verb(run, "cancel");
                cancel(run, true); // QEMU's job-cancel is always forced, READY or not
                return Json.object();
            }
            case "block-job-pause":
                Args.allow(args, "device");
                pause(jobs.byDevice(Args.string(args, "device")));
                return Json.object();
            case "job-pause":
                Args.allow(args, "id");
                pause(jobs.byId(Args.string(args, "id")));
                return Json.object();
            case "block-job-resume":
                Args.allow(args, "device");
                resume(jobs.byDevice(Args.string(args, "device")));
                return Json.object();
            case "job-resume":
                Args.allow(args, "id");
                resume(jobs.byId(Args.string(args, "id")));
                return Json.object();
            case "block-job-set-speed": {
                Args.allow(args, "device", "speed");
                JobRun run = jobs.byDevice(Args.string(args, "device"));
                long speed = Args.integer(args, "speed");
                if (speed < 0) {
                    throw QmpException.generic("Parameter 'speed' expects a non-negative value");
                }
                verb(run, "set-speed");
                kernel(run, "set-speed", () -> run.job().setSpeed(speed));
                return Json.object();
            }
            case "block-job-change":
                Args.allow(args, "id", "type", "copy-mode");
                change(jobs.byId(Args.string(args, "id")), args);
                return Json.object();
            case "block-job-finalize":
            case "job-finalize": {
                Args.allow(args, "id");
                JobRun run = jobs.byId(Args.string(args, "id"));
                verb(run, "finalize");
                kernel(run, "finalize", run.job()::finalizeJob);
                return Json.object();
            }
            case "block-job-dismiss":
            case "job-dismiss": {
                Args.allow(args, "id");
                JobRun run = jobs.byId(Args.string(args, "id"));
                verb(run, "dismiss");
                if (!run.dismiss()) {
                    throw verbError(run, "dismiss");
                }
                return Json.object();
            }
            default:
                throw new QmpException(QmpException.COMMAND_NOT_FOUND, "The command " + command + " has not been found");
        }
    }

    private void complete(JobRun run) throws QmpException {
        verb(run, "complete");
        if (run.qmp().status().equals("standby") && run.completeRequested()) {
            return; // QEMU accepts a second complete while the first waits for resume
        }
        kernel(run, "complete", run.job()::complete);
        if (run.qmp().status().equals("standby")) {
            run.noteCompleteRequested();
        }
    }

    private void cancel(JobRun run, boolean force) throws QmpException {
        String status = run.qmp().status();
        if (!force && (status.equals("waiting") || status.equals("aborting"))) {
            return; // already finishing: QEMU ignores a soft cancel here
        }
        kernel(run, "cancel", () -> {
            run.qmp().noteCancel(force);
            run.job().cancel(force);
        });
    }

    private void pause(JobRun run) throws QmpException {
        verb(run, "pause");
        try {
            run.job().pause();
        } catch (IllegalStateException e) {
            if (isPaused(run) || run.qmp().status().equals("created")) {
                throw QmpException.generic("Job is already paused");
            }
            throw verbError(run, "pause");
        }
    }

    private void resume(JobRun run) throws QmpException {
        verb(run, "resume");
        try {
            run.job().resume();
        } catch (IllegalStateException e) {
            if (LIVE.contains(run.qmp().status())) {
                throw QmpException.generic("Can't resume a job that was not paused");
            }
            throw verbError(run, "resume");
        }
    }

    private void change(JobRun run, ObjectNode args) throws QmpException {
        String type = Args.string(args, "type");
        if (!type.equals("mirror")) {
            throw QmpException.generic("Parameter 'type' does not match the job's type 'mirror'");
        }
        verb(run, "change");
        JsonNode modeNode = args.get("copy-mode");
        if (modeNode == null) {
            return; // nothing to change
        }
        CopyMode mode = Args.choice(args, "copy-mode", CopyMode.class);
        CopyMode current = run.job().progress().copyMode();
        if (current == CopyMode.WRITE_BLOCKING && mode == CopyMode.BACKGROUND) {
            throw QmpException.generic("Change from copy mode 'write-blocking' to 'background' is not allowed");
        }
        kernel(run, "change", () -> run.job().setCopyMode(mode));
    }

    private static boolean isPaused(JobRun run) {
        String s = run.qmp().status();
        return s.equals("paused") || s.equals("standby");
    }

    private JsonNode queryBlockJobs() {
        ArrayNode list = Json.array();
        for (JobRun run : jobs.listed()) {
            MirrorJob job = run.job();
            QmpEvents qmp = run.qmp();
            MirrorProgress p = job.progress();
            String status = qmp.status();
            ObjectNode info = list.addObject();
            info.put("type", "mirror");
            info.put("device", qmp.jobId());
            info.put("len", p.length());
            info.put("offset", p.offset());
            info.put("busy", p.bytesInFlight() > 0);
            // QEMU counts a drained job as paused: PENDING shows "paused": true there too.
            info.put("paused", status.equals("paused") || status.equals("standby") || status.equals("pending"));
            info.put("speed", p.speed());
            info.put("io-status", qmp.ioStatus());
            info.put("ready", qmp.completable());
            info.put("status", status);
            info.put("auto-finalize", job.options().autoFinalize());
            info.put("auto-dismiss", qmp.autoDismiss());
            if (qmp.error() != null && status.equals("concluded")) {
                info.put("error", qmp.error());
            }
            // Handoff's additions.
            info.put("copy-mode", Choices.name(p.copyMode()));
            info.put("actively-synced", p.activelySynced());
            info.put("dirty-bytes", p.dirtyBytes());
            info.put("in-flight-bytes", p.bytesInFlight());
            info.put("errors", p.errorCount());
            MirrorJob.BitmapStatus bitmap = job.bitmapStatus();
            if (bitmap != null) {
                ObjectNode b = info.putObject("bitmap");
                if (run.bitmapFile() != null) {
                    b.put("file", run.bitmapFile().toString());
                }
                b.put("region-size", bitmap.regionSize());
                b.put("resumed-bytes", bitmap.resumeBytes());
                b.put("dirty-bytes", bitmap.bitBytes());
                b.put("syncs", bitmap.syncs());
            }
        }
        return list;
    }

    private JsonNode queryJobs() {
        ArrayNode list = Json.array();
        for (JobRun run : jobs.listed()) {
            MirrorProgress p = run.job().progress();
            QmpEvents qmp = run.qmp();
            ObjectNode info = list.addObject();
            info.put("id", qmp.jobId());
            info.put("type", "mirror");
            info.put("status", qmp.status());
            info.put("current-progress", p.offset());
            info.put("total-progress", p.length());
            if (qmp.error() != null) {
                info.put("error", qmp.error());
            }
        }
        return list;
    }

    /** QEMU's verb table: refuses {@code verb} in the job's current status. */
    private static void verb(JobRun run, String verb) throws QmpException {
        if (!VERBS.get(verb).contains(run.qmp().status())) {
            throw verbError(run, verb);
        }
    }

    private static QmpException verbError(JobRun run, String verb) {
        return QmpException.generic("Job '" + run.jobId() + "' in state '" + run.qmp().status()
                + "' cannot accept command verb '" + verb + "'");
    }

    /** Runs a kernel command; a refusal (the job moved on meanwhile) is the verb error of its new status. */
    private static void kernel(JobRun run, String verb, Runnable action) throws QmpException {
        try {
            action.run();
        } catch (IllegalStateException e) {
            throw verbError(run, verb);
        }
    }
}
