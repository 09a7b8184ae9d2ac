package dev.handoff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorProgress;
import java.util.Iterator;
import java.util.Set;

/**
 * The block-job commands of QEMU's QMP, for one mirror job, with QEMU's argument names, error
 * classes and messages:
 * <ul>
 *   <li>{@code query-block-jobs}, {@code query-jobs}</li>
 *   <li>{@code block-job-complete}, {@code block-job-cancel} ({@code force}), {@code block-job-pause},
 *       {@code block-job-resume}, {@code block-job-set-speed} ({@code speed}) — by {@code device}</li>
 *   <li>{@code job-complete}, {@code job-cancel}, {@code job-pause}, {@code job-resume} — by {@code id}</li>
 *   <li>{@code block-job-change} ({@code id}, {@code type: "mirror"}, {@code copy-mode})</li>
 * </ul>
 * A command the job's state does not allow gets QEMU's reply, a GenericError
 * {@code "Job 'ID' in state 'STATUS' cannot accept command verb 'VERB'"}, and changes nothing
 * (the kernel's state table, see {@code MirrorJob}).
 */
final class JobControl implements QmpServer.Handler {
    private static final Set<String> COMMANDS = Set.of("query-block-jobs", "query-jobs", "block-job-complete",
            "block-job-cancel", "block-job-pause", "block-job-resume", "block-job-set-speed", "block-job-change",
            "job-complete", "job-cancel", "job-pause", "job-resume");

    private final MirrorJob job;
    private final QmpEvents qmp;

    JobControl(MirrorJob job, QmpEvents qmp) {
        this.job = job;
        this.qmp = qmp;
    }

    @Override
    public Set<String> commands() {
        return COMMANDS;
    }

    @Override
    public JsonNode execute(String command, ObjectNode args) throws QmpException {
        switch (command) {
            case "query-block-jobs":
                allow(args);
                return queryBlockJobs();
            case "query-jobs":
                allow(args);
                return queryJobs();
            case "block-job-complete":
                allow(args, "device");
                device(args);
                verb("complete", job::complete);
                return Json.object();
            case "job-complete":
                allow(args, "id");
                id(args);
                verb("complete", job::complete);
                return Json.object();
            case "block-job-cancel": {
                allow(args, "device", "force");
                device(args);
                boolean force = optBool(args, "force");
                verb("cancel", () -> {
                    qmp.noteCancel(force);
                    job.cancel(force);
                });
                return Json.object();
            }
            case "job-cancel":
                allow(args, "id");
                id(args);
                // QEMU's job-cancel is a forced cancel except for a READY mirror, which it completes without pivot.
                verb("cancel", () -> {
                    boolean force = !qmp.completable();
                    qmp.noteCancel(force);
                    job.cancel(force);
                });
                return Json.object();
            case "block-job-pause":
                allow(args, "device");
                device(args);
                verb("pause", job::pause);
                return Json.object();
            case "job-pause":
                allow(args, "id");
                id(args);
                verb("pause", job::pause);
                return Json.object();
            case "block-job-resume":
                allow(args, "device");
                device(args);
                verb("resume", job::resume);
                return Json.object();
            case "job-resume":
                allow(args, "id");
                id(args);
                verb("resume", job::resume);
                return Json.object();
            case "block-job-set-speed": {
                allow(args, "device", "speed");
                device(args);
                long speed = requireLong(args, "speed");
                if (speed < 0) {
                    throw QmpException.generic("Parameter 'speed' expects a non-negative value");
                }
                verb("set-speed", () -> job.setSpeed(speed));
                return Json.object();
            }
            case "block-job-change": {
                allow(args, "id", "type", "copy-mode");
                id(args);
                String type = requireString(args, "type");
                if (!type.equals("mirror")) {
                    throw QmpException.generic("Parameter 'type' does not match the job's type 'mirror'");
                }
                JsonNode modeNode = args.get("copy-mode");
                if (modeNode == null) {
                    return Json.object(); // nothing to change
                }
                if (!modeNode.isTextual()) {
                    throw QmpException.generic("Invalid parameter type for 'copy-mode', expected: string");
                }
                CopyMode mode;
                try {
                    mode = Choices.parse(CopyMode.class, modeNode.asText(), "copy mode");
                } catch (IllegalArgumentException e) {
                    throw QmpException.generic("Parameter 'copy-mode' does not accept value '" + modeNode.asText() + "'");
                }
                CopyMode current = job.progress().copyMode();
                if (current == CopyMode.WRITE_BLOCKING && mode == CopyMode.BACKGROUND) {
                    throw QmpException.generic("Change from copy mode 'write-blocking' to 'background' is not allowed");
                }
                verb("change", () -> job.setCopyMode(mode));
                return Json.object();
            }
            default:
                throw new QmpException(QmpException.COMMAND_NOT_FOUND, "The command " + command + " has not been found");
        }
    }

    private JsonNode queryBlockJobs() {
        ArrayNode list = Json.array();
        if (job.state().isConcluded()) {
            return list; // auto-dismissed, as in QEMU
        }
        MirrorProgress p = job.progress();
        ObjectNode info = list.addObject();
        info.put("type", "mirror");
        info.put("device", qmp.jobId());
        info.put("len", p.length());
        info.put("offset", p.offset());
        info.put("busy", p.bytesInFlight() > 0);
        info.put("paused", qmp.status().equals("paused") || qmp.status().equals("standby"));
        info.put("speed", p.speed());
        info.put("io-status", qmp.ioStatus());
        info.put("ready", qmp.completable());
        info.put("status", qmp.status());
        info.put("auto-finalize", true);
        info.put("auto-dismiss", true);
        // Handoff's additions.
        info.put("copy-mode", Choices.name(p.copyMode()));
        info.put("actively-synced", p.activelySynced());
        info.put("dirty-bytes", p.dirtyBytes());
        info.put("in-flight-bytes", p.bytesInFlight());
        info.put("errors", p.errorCount());
        return list;
    }

    private JsonNode queryJobs() {
        ArrayNode list = Json.array();
        if (job.state().isConcluded()) {
            return list;
        }
        MirrorProgress p = job.progress();
        ObjectNode info = list.addObject();
        info.put("id", qmp.jobId());
        info.put("type", "mirror");
        info.put("status", qmp.status());
        info.put("current-progress", p.offset());
        info.put("total-progress", p.length());
        if (qmp.error() != null) {
            info.put("error", qmp.error());
        }
        return list;
    }

    private void verb(String verb, Runnable action) throws QmpException {
        try {
            action.run();
        } catch (IllegalStateException e) {
            throw QmpException.generic("Job '" + qmp.jobId() + "' in state '" + qmp.status()
                    + "' cannot accept command verb '" + verb + "'");
        }
    }

    private void device(ObjectNode args) throws QmpException {
        String device = requireString(args, "device");
        if (!device.equals(qmp.jobId()) || job.state().isConcluded()) {
            throw new QmpException(QmpException.DEVICE_NOT_ACTIVE, "Block job '" + device + "' not found");
        }
    }

    private void id(ObjectNode args) throws QmpException {
        String id = requireString(args, "id");
        if (!id.equals(qmp.jobId()) || job.state().isConcluded()) {
            throw QmpException.generic("Job not found");
        }
    }

    private static void allow(ObjectNode args, String... names) throws QmpException {
        Iterator<String> it = args.fieldNames();
        outer:
        while (it.hasNext()) {
            String n = it.next();
            for (String allowed : names) {
                if (allowed.equals(n)) {
                    continue outer;
                }
            }
            throw QmpException.generic("Parameter '" + n + "' is unexpected");
        }
    }

    private static String requireString(ObjectNode args, String name) throws QmpException {
        JsonNode n = args.get(name);
        if (n == null) {
            throw QmpException.generic("Parameter '" + name + "' is missing");
        }
        if (!n.isTextual()) {
            throw QmpException.generic("Invalid parameter type for '" + name + "', expected: string");
        }
        return n.asText();
    }

    private static long requireLong(ObjectNode args, String name) throws QmpException {
        JsonNode n = args.get(name);
        if (n == null) {
            throw QmpException.generic("Parameter '" + name + "' is missing");
        }
        if (!n.isIntegralNumber() || !n.canConvertToLong()) {
            throw QmpException.generic("Invalid parameter type for '" + name + "', expected: integer");
        }
        return n.asLong();
    }

    private static boolean optBool(ObjectNode args, String name) throws QmpException {
        JsonNode n = args.get(name);
        if (n == null) {
            return false;
        }
        if (!n.isBoolean()) {
            throw QmpException.generic("Invalid parameter type for '" + name + "', expected: boolean");
        }
        return n.asBoolean();
    }
}
