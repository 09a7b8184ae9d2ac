package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * One QMP script, driven against {@code qemu-storage-daemon} and against {@code handoff serve},
 * replies and event sequences compared line by line: the block-job commands in each job status
 * (running, paused, ready, standby, pending, concluded), their refusals, auto-finalize and
 * auto-dismiss off, job-cancel on a READY job, a pivot completed in standby, blockdev-add and
 * blockdev-mirror with their argument errors, drive-mirror, and malformed input.
 *
 * <p>What must differ, and is normalized away before comparing:
 * <ul>
 *   <li>the greeting's version and capabilities (QEMU offers {@code oob}; Handoff has none);</li>
 *   <li>event timestamps;</li>
 *   <li>progress taken while a job copies ({@code offset} and {@code current-progress} below
 *       {@code len}, and {@code busy}): timing, not semantics; at READY and after they must match;</li>
 *   <li>Handoff's additions to query-block-jobs ({@code copy-mode}, {@code actively-synced},
 *       {@code dirty-bytes}, {@code in-flight-bytes}, {@code errors}) and query-block-exports
 *       ({@code x-*});</li>
 *   <li>the text after "JSON parse error, " for a message that is lexically JSON but does not parse
 *       (the parsers differ); a stray character's error is QEMU's text in both;</li>
 *   <li>the order of a command's reply and the events it causes (QEMU sends the events first;
 *       Handoff sends them from the job's event thread, possibly after): events are compared as
 *       sequences, per scenario;</li>
 *   <li>each run's own directory in paths.</li>
 * </ul>
 * Left out of the script because they differ on purpose (the report of issue 16 lists them): a
 * negative speed or buf-size (QEMU creates the job and dismisses it, sending created and null,
 * before it refuses with the same text; Handoff refuses first), a target of another size (QEMU starts the job and fails it with
 * "Source and target image have different sizes"; Handoff refuses blockdev-mirror with that text),
 * and a second mirror while one runs (QEMU: "Need a root block node").
 */
@Timeout(600)
class QmpConformanceIT {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final long SIZE = 64L << 20;
    private static final Set<String> HANDOFF_ADDITIONS = Set.of("copy-mode", "actively-synced", "dirty-bytes",
            "in-flight-bytes", "errors");

    @TempDir
    Path dir;

    @Test
    void handoffServeAnswersTheSameQmpScriptAsQemuStorageDaemon() throws Exception {
        QemuTools.require("qemu-storage-daemon");
        List<String> qemu = runQemu(Files.createDirectories(dir.resolve("qemu")));
        List<String> handoff = runHandoff(Files.createDirectories(dir.resolve("handoff")));
        for (int i = 0; i < Math.min(qemu.size(), handoff.size()); i++) {
            assertThat(handoff.get(i)).as("step %d of the script (qemu-storage-daemon: left, expected)", i)
                    .isEqualTo(qemu.get(i));
        }
        assertThat(handoff).hasSameSizeAs(qemu);
        assertThat(qemu).as("the whole script ran").hasSizeGreaterThan(100).last().asString().startsWith("quit");
    }

    /* ---------------- the script ---------------- */

    private static void script(Session s) throws Exception {
        s.scenario("basics");
        s.raw("{\"execute\":\"query-jobs\"}");
        s.cmd("qmp_capabilities", null);
        s.cmd("qmp_capabilities", null);
        s.cmd("query-block-jobs", null);
        s.cmd("query-jobs", null);
        s.raw("{\"execute\": \"query-jobs\" xx}");
        s.cmd("query-jobs", null);
        s.raw("@");
        s.raw("{\"execute\":\"query-jobs\"}");
        s.raw("[1, 2]");
        s.raw("{\"arguments\": {}}");
        s.raw("{\"execute\": 1}");
        s.raw("{\"execute\": \"query-jobs\", \"bogus\": 1}");
        s.raw("{\"execute\": \"query-jobs\", \"arguments\": {\"x\": 1}}");
        s.raw("{'execute': 'query-jobs'}");
        s.cmd("no-such-command", null);
        s.cmd("block-job-pause", "{\"device\":\"nope\"}");
        s.cmd("block-job-cancel", "{\"device\":\"nope\"}");
        s.cmd("job-pause", "{\"id\":\"nope\"}");
        s.cmd("job-finalize", "{\"id\":\"nope\"}");
        s.cmd("job-dismiss", "{\"id\":\"nope\"}");
        s.cmd("query-block-exports", null);
        s.end();

        s.scenario("nodes and argument errors");
        s.cmd("blockdev-add", "{\"driver\":\"file\",\"filename\":\"<dir>/tgt.img\",\"node-name\":\"tgt\"}");
        s.cmd("blockdev-add", "{\"driver\":\"file\",\"filename\":\"<dir>/tgt.img\",\"node-name\":\"tgt\"}");
        s.cmd("blockdev-add", "{\"driver\":\"file\",\"filename\":\"<dir>/tgt.img\"}");
        s.cmd("blockdev-add", "{\"driver\":\"file\",\"filename\":\"<dir>/tgt.img\",\"node-name\":\"a b\"}");
        s.cmd("blockdev-add", "{\"driver\":\"file\",\"filename\":\"<dir>/none.img\",\"node-name\":\"n\"}");
        s.cmd("blockdev-add", "{\"driver\":\"bogus\",\"filename\":\"<dir>/tgt.img\",\"node-name\":\"b\"}");
        s.cmd("blockdev-del", "{\"node-name\":\"nope\"}");
        String mirror = "\"job-id\":\"j\",\"device\":\"src\",\"target\":\"tgt\",\"sync\":\"full\"";
        s.cmd("blockdev-mirror", "{" + mirror + ",\"granularity\":1000}");
        s.cmd("blockdev-mirror", "{" + mirror + ",\"granularity\":256}");
        s.cmd("blockdev-mirror", "{" + mirror + ",\"granularity\":134217728}");
        s.cmd("blockdev-mirror", "{" + mirror + ",\"bogus\":1}");
        s.cmd("blockdev-mirror", "{" + mirror + ",\"copy-mode\":\"x\"}");
        s.cmd("blockdev-mirror", "{" + mirror + ",\"on-source-error\":\"x\"}");
        s.cmd("blockdev-mirror", "{\"job-id\":\"j\",\"device\":\"src\",\"target\":\"tgt\"}");
        s.cmd("blockdev-mirror", "{\"job-id\":\"j\",\"device\":\"src\",\"target\":\"tgt\",\"sync\":\"bogus\"}");
        s.cmd("blockdev-mirror", "{\"job-id\":\"a b\",\"device\":\"src\",\"target\":\"tgt\",\"sync\":\"full\"}");
        s.cmd("blockdev-mirror", "{\"device\":\"src\",\"target\":\"tgt\",\"sync\":\"full\"}");
        s.cmd("blockdev-mirror", "{\"job-id\":\"j\",\"device\":\"src\",\"target\":\"src\",\"sync\":\"full\"}");
        s.cmd("blockdev-mirror", "{\"job-id\":\"j\",\"device\":\"src\",\"target\":\"nope\",\"sync\":\"full\"}");
        s.cmd("blockdev-mirror", "{\"job-id\":\"j\",\"device\":\"nope\",\"target\":\"tgt\",\"sync\":\"full\"}");
        s.end();

        s.scenario("job-cancel while running");
        s.cmd("blockdev-mirror", "{" + mirror + ",\"speed\":1048576}");
        s.awaitStatus("running");
        s.cmd("query-block-jobs", null);
        s.cmd("blockdev-del", "{\"node-name\":\"tgt\"}");
        s.cmd("block-job-complete", "{\"device\":\"j\"}");
        s.cmd("job-finalize", "{\"id\":\"j\"}");
        s.cmd("job-cancel", "{\"id\":\"j\"}");
        s.awaitStatus("null");
        s.cmd("query-block-jobs", null);
        s.end();

        s.scenario("pause, standby, soft cancel, manual finalize and dismiss");
        s.cmd("blockdev-mirror", "{" + mirror + ",\"speed\":1048576,\"auto-finalize\":false,\"auto-dismiss\":false}");
        s.awaitStatus("running");
        s.cmd("block-job-pause", "{\"device\":\"j\"}");
        s.awaitStatus("paused");
        s.cmd("block-job-pause", "{\"device\":\"j\"}");
        s.cmd("job-pause", "{\"id\":\"j\"}");
        s.cmd("query-block-jobs", null);
        s.cmd("block-job-complete", "{\"device\":\"j\"}");
        s.cmd("block-job-cancel", "{\"device\":\"j\"}");
        s.cmd("job-finalize", "{\"id\":\"j\"}");
        s.cmd("job-dismiss", "{\"id\":\"j\"}");
        s.cmd("block-job-resume", "{\"device\":\"j\"}");
        s.awaitStatus("running");
        s.cmd("block-job-resume", "{\"device\":\"j\"}");
        s.cmd("block-job-set-speed", "{\"device\":\"j\",\"speed\":0}");
        s.awaitEvent("BLOCK_JOB_READY");
        s.cmd("query-block-jobs", null);
        s.cmd("query-jobs", null);
        s.cmd("block-job-pause", "{\"device\":\"j\"}");
        s.awaitStatus("standby");
        s.cmd("query-block-jobs", null);
        s.cmd("block-job-cancel", "{\"device\":\"j\"}");
        s.cmd("job-resume", "{\"id\":\"j\"}");
        s.awaitStatus("ready");
        s.cmd("block-job-cancel", "{\"device\":\"j\"}");
        s.awaitEvent("BLOCK_JOB_PENDING");
        s.cmd("query-jobs", null);
        s.cmd("query-block-jobs", null);
        s.cmd("block-job-set-speed", "{\"device\":\"j\",\"speed\":1}");
        s.cmd("block-job-pause", "{\"device\":\"j\"}");
        s.cmd("block-job-complete", "{\"device\":\"j\"}");
        s.cmd("job-dismiss", "{\"id\":\"j\"}");
        s.cmd("job-finalize", "{\"id\":\"j\"}");
        s.awaitStatus("concluded");
        s.cmd("query-jobs", null);
        s.cmd("query-block-jobs", null);
        s.cmd("job-cancel", "{\"id\":\"j\"}");
        s.cmd("block-job-pause", "{\"device\":\"j\"}");
        s.cmd("job-finalize", "{\"id\":\"j\"}");
        s.cmd("job-dismiss", "{\"id\":\"j\"}");
        s.awaitStatus("null");
        s.cmd("query-jobs", null);
        s.cmd("job-dismiss", "{\"id\":\"j\"}");
        s.end();

        s.scenario("job-cancel on a READY job is forced");
        s.cmd("blockdev-mirror", "{" + mirror + "}");
        s.awaitEvent("BLOCK_JOB_READY");
        s.cmd("job-cancel", "{\"id\":\"j\"}");
        s.awaitStatus("null");
        s.end();

        s.scenario("drive-mirror to a new file, cancelled");
        s.cmd("drive-mirror", "{\"job-id\":\"d\",\"device\":\"src\",\"target\":\"<dir>/dm.img\",\"format\":\"raw\","
                + "\"sync\":\"full\",\"mode\":\"absolute-paths\",\"speed\":1048576}");
        s.awaitStatus("running");
        s.cmd("query-jobs", null);
        s.cmd("block-job-cancel", "{\"device\":\"d\",\"force\":true}");
        s.awaitStatus("null");
        s.end();

        s.scenario("complete in standby, then the pivot on resume");
        s.cmd("blockdev-mirror", "{" + mirror + "}");
        s.awaitEvent("BLOCK_JOB_READY");
        s.cmd("block-job-pause", "{\"device\":\"j\"}");
        s.awaitStatus("standby");
        s.cmd("block-job-complete", "{\"device\":\"j\"}");
        s.cmd("query-block-jobs", null);
        s.cmd("block-job-resume", "{\"device\":\"j\"}");
        s.awaitStatus("null");
        s.cmd("query-block-jobs", null);
        s.end();
    }

    /* ---------------- the two peers ---------------- */

    private List<String> runQemu(Path d) throws Exception {
        Images.randomImage(d.resolve("src.img"), SIZE, 41);
        Images.randomImage(d.resolve("tgt.img"), SIZE, 42);
        Path log = d.resolve("qsd.log");
        Process qsd = new ProcessBuilder("qemu-storage-daemon",
                "--blockdev", "driver=file,filename=" + d.resolve("src.img") + ",node-name=src",
                "--nbd-server", "addr.type=unix,addr.path=" + d.resolve("nbd.sock"),
                "--export", "type=nbd,id=disk,node-name=src,writable=on",
                "--chardev", "socket,path=" + d.resolve("qmp.sock") + ",server=on,wait=off,id=m",
                "--monitor", "chardev=m").redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try (QmpClient qmp = QmpClient.connect(d.resolve("qmp.sock"), qsd, () -> read(log))) {
            Session s = new Session(qmp, d);
            script(s);
            s.quit();
            assertThat(qsd.waitFor(60, TimeUnit.SECONDS)).as("qemu-storage-daemon quits: %s", read(log)).isTrue();
            return s.lines;
        } finally {
            qsd.destroyForcibly();
        }
    }

    private List<String> runHandoff(Path d) throws Exception {
        Images.randomImage(d.resolve("src.img"), SIZE, 41);
        Images.randomImage(d.resolve("tgt.img"), SIZE, 42);
        try (Cli.Running serve = Cli.start(d, "serve", "src.img", "--nbd", "unix:nbd.sock", "--export-name", "disk",
                "--node-name", "src", "--control", "qmp.sock")) {
            serve.awaitLine("serving src.img");
            try (QmpClient qmp = QmpClient.connect(d.resolve("qmp.sock"), serve)) {
                Session s = new Session(qmp, d);
                script(s);
                s.quit();
                Cli.Result r = serve.waitFor();
                assertThat(r.exit()).as(r.toString()).isZero();
                return s.lines;
            }
        }
    }

    private static String read(Path log) {
        try {
            return Files.readString(log);
        } catch (java.io.IOException e) {
            return "(no log: " + e + ")";
        }
    }

    /* ---------------- running and normalizing ---------------- */

    /** One run of the script against one peer: what it answered, normalized, line by line. */
    private static final class Session {
        final QmpClient qmp;
        final String dir;
        final List<String> lines = new ArrayList<>();
        String scenario;
        int eventMark;

        Session(QmpClient qmp, Path dir) {
            this.qmp = qmp;
            this.dir = dir.toString();
            JsonNode g = qmp.greeting.path("QMP");
            lines.add("greeting: version.qemu " + g.path("version").path("qemu").has("major") + ", package "
                    + g.path("version").path("package").isTextual() + ", capabilities " + g.path("capabilities").isArray());
        }

        void scenario(String name) {
            scenario = name;
            eventMark = qmp.allEvents().size();
        }

        void cmd(String command, String args) throws Exception {
            String a = args == null ? null : args.replace("<dir>", dir);
            JsonNode reply = qmp.execute(command, a);
            ((ObjectNode) reply).remove("id");
            lines.add(scenario + ": " + command + " " + (args == null ? "" : args) + " -> " + normalize(command, reply));
        }

        void raw(String text) throws Exception {
            qmp.sendRaw(text);
            lines.add(scenario + ": raw " + text + " -> " + normalize("", qmp.nextReply()));
        }

        void awaitStatus(String status) throws InterruptedException {
            qmp.awaitStatus(status);
        }

        void awaitEvent(String name) throws InterruptedException {
            qmp.awaitEvent(name);
        }

        /** The scenario's events, as a sequence. */
        void end() {
            List<JsonNode> all = qmp.allEvents();
            List<String> events = new ArrayList<>();
            for (JsonNode e : all.subList(eventMark, all.size())) {
                events.add(describe(e));
            }
            lines.add(scenario + ": events " + events);
        }

        void quit() throws Exception {
            JsonNode reply = qmp.execute("quit", null);
            lines.add("quit -> " + reply.has("return"));
        }

        private String normalize(String command, JsonNode reply) {
            JsonNode r = reply.deepCopy();
            if (r.has("error")) {
                ObjectNode e = (ObjectNode) r.get("error");
                String desc = e.path("desc").asText().replace(dir, "<dir>");
                if (desc.startsWith("JSON parse error, ") && !desc.contains("stray")) {
                    desc = "JSON parse error, (the parser's message)";
                }
                e.put("desc", desc);
                return r.toString();
            }
            JsonNode ret = r.path("return");
            if (ret.isArray()) {
                for (JsonNode item : ret) {
                    ObjectNode o = (ObjectNode) item;
                    o.remove(HANDOFF_ADDITIONS);
                    o.remove("busy");
                    List<String> extra = new ArrayList<>();
                    o.fieldNames().forEachRemaining(n -> {
                        if (n.startsWith("x-")) {
                            extra.add(n);
                        }
                    });
                    o.remove(extra);
                    partial(o, "offset", "len");
                    partial(o, "current-progress", "total-progress");
                }
            }
            return sorted(r).toString();
        }

        private static void partial(ObjectNode o, String progress, String total) {
            if (o.has(progress) && o.path(progress).asLong() != o.path(total).asLong()) {
                o.put(progress, "<partial>");
            }
        }

        private static String describe(JsonNode event) {
            String name = event.path("event").asText();
            JsonNode data = event.path("data");
            if (name.equals("JOB_STATUS_CHANGE")) {
                return data.path("id").asText() + ":" + data.path("status").asText();
            }
            ObjectNode d = (ObjectNode) data.deepCopy();
            partial(d, "offset", "len");
            return name + sorted(d);
        }

        /** The node with its object fields in name order, so that field order never decides a comparison. */
        private static JsonNode sorted(JsonNode n) {
            if (n.isObject()) {
                ObjectNode out = MAPPER.createObjectNode();
                List<String> names = new ArrayList<>();
                n.fieldNames().forEachRemaining(names::add);
                names.sort(null);
                for (String name : names) {
                    out.set(name, sorted(n.get(name)));
                }
                return out;
            }
            if (n.isArray()) {
                ArrayNode out = MAPPER.createArrayNode();
                for (JsonNode item : n) {
                    out.add(sorted(item));
                }
                return out;
            }
            return n;
        }
    }
}
