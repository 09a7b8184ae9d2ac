package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The QMP-shaped control socket of {@code handoff mirror --control}, driven the way a QEMU
 * management tool drives a mirror block job: capabilities, queries, pause/resume, set-speed,
 * copy-mode change, complete, cancel (graceful and forced), errors and their events, and the QMP
 * error replies to commands the job's state does not allow. Targets are judged by qemu-img compare.
 */
@Timeout(240)
class ControlSocketIT {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final long SIZE = 24L << 20;

    @TempDir
    Path dir;

    @Test
    void sessionDrivesPauseResumeSetSpeedChangeAndComplete() throws Exception {
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 1);
        Path sock = dir.resolve("qmp.sock");
        try (Cli.Running mirror = Cli.start(dir, "mirror", "src.img", "tgt.img", "--control", sock.toString(), "--wait",
                "--speed", "1M", "--json", "--granularity", "256K");
                QmpClient qmp = QmpClient.connect(sock, mirror)) {
            assertThat(qmp.greeting.path("QMP").has("version")).isTrue();
            assertThat(qmp.greeting.path("QMP").path("capabilities").isArray()).isTrue();

            assertError(qmp.execute("query-block-jobs"), "CommandNotFound", "Expecting capabilities negotiation");
            assertThat(qmp.execute("qmp_capabilities").path("return").isObject()).isTrue();
            assertError(qmp.execute("qmp_capabilities"), "CommandNotFound", "already complete");
            assertError(qmp.execute("no-such-command"), "CommandNotFound", "The command no-such-command has not been found");

            // The socket is up before the job starts (a tool may cancel a job that never ran), so the
            // first query may find it "created": wait until it has started.
            JsonNode job = awaitStarted(qmp);
            assertThat(job.path("type").asText()).isEqualTo("mirror");
            assertThat(job.path("device").asText()).isEqualTo("mirror0");
            assertThat(job.path("status").asText()).isEqualTo("running");
            assertThat(job.path("ready").asBoolean()).isFalse();
            assertThat(job.path("speed").asLong()).isEqualTo(1L << 20);
            assertThat(job.path("len").asLong()).isEqualTo(SIZE);

            // Commands the state does not allow: QEMU's reply, nothing changes.
            assertError(qmp.execute("block-job-complete", "{\"device\":\"mirror0\"}"), "GenericError",
                    "Job 'mirror0' in state 'running' cannot accept command verb 'complete'");
            assertError(qmp.execute("block-job-resume", "{\"device\":\"mirror0\"}"), "GenericError",
                    "Can't resume a job that was not paused");
            assertError(qmp.execute("block-job-pause", "{\"device\":\"nope\"}"), "DeviceNotActive", "Block job 'nope' not found");
            assertError(qmp.execute("block-job-set-speed", "{\"device\":\"mirror0\",\"speed\":-1}"), "GenericError",
                    "expects a non-negative value");
            assertError(qmp.execute("block-job-set-speed", "{\"device\":\"mirror0\",\"speed\":\"fast\"}"), "GenericError",
                    "expected: integer");
            assertError(qmp.execute("block-job-set-speed", "{\"device\":\"mirror0\"}"), "GenericError",
                    "Parameter 'speed' is missing");
            assertError(qmp.execute("block-job-pause", "{\"device\":\"mirror0\",\"bogus\":1}"), "GenericError",
                    "Parameter 'bogus' is unexpected");

            assertThat(qmp.execute("block-job-pause", "{\"device\":\"mirror0\"}").has("return")).isTrue();
            qmp.awaitStatus("paused");
            JsonNode paused = qmp.execute("query-block-jobs").path("return").get(0);
            assertThat(paused.path("paused").asBoolean()).isTrue();
            assertThat(paused.path("status").asText()).isEqualTo("paused");
            assertError(qmp.execute("block-job-pause", "{\"device\":\"mirror0\"}"), "GenericError",
                    "Job is already paused");
            assertThat(qmp.execute("block-job-resume", "{\"device\":\"mirror0\"}").has("return")).isTrue();
            qmp.awaitStatus("running");

            assertThat(qmp.execute("block-job-change",
                    "{\"id\":\"mirror0\",\"type\":\"mirror\",\"copy-mode\":\"write-blocking\"}").has("return")).isTrue();
            assertThat(qmp.execute("query-block-jobs").path("return").get(0).path("copy-mode").asText())
                    .isEqualTo("write-blocking");
            assertError(qmp.execute("block-job-change",
                    "{\"id\":\"mirror0\",\"type\":\"mirror\",\"copy-mode\":\"background\"}"), "GenericError", "not allowed");

            assertThat(qmp.execute("block-job-set-speed", "{\"device\":\"mirror0\",\"speed\":0}").has("return")).isTrue();
            JsonNode ready = qmp.awaitEvent("BLOCK_JOB_READY");
            assertThat(ready.path("data").path("device").asText()).isEqualTo("mirror0");
            assertThat(ready.path("data").path("type").asText()).isEqualTo("mirror");
            assertThat(ready.path("data").path("len").asLong()).isEqualTo(ready.path("data").path("offset").asLong());
            assertThat(ready.path("timestamp").has("seconds")).isTrue();
            JsonNode jobs = qmp.execute("query-jobs").path("return").get(0);
            assertThat(jobs.path("status").asText()).isEqualTo("ready");
            assertThat(jobs.path("current-progress").asLong()).isEqualTo(jobs.path("total-progress").asLong());

            assertThat(qmp.execute("block-job-complete", "{\"device\":\"mirror0\"}").has("return")).isTrue();
            JsonNode completed = qmp.awaitEvent("BLOCK_JOB_COMPLETED");
            assertThat(completed.path("data").has("error")).isFalse();
            qmp.awaitStatus("null");
            assertThat(qmp.eventLog()).containsSubsequence("JOB_STATUS_CHANGE:paused", "JOB_STATUS_CHANGE:running",
                    "JOB_STATUS_CHANGE:ready", "BLOCK_JOB_READY", "JOB_STATUS_CHANGE:waiting", "JOB_STATUS_CHANGE:pending",
                    "BLOCK_JOB_COMPLETED", "JOB_STATUS_CHANGE:concluded", "JOB_STATUS_CHANGE:null");

            Cli.Result r = mirror.waitFor();
            assertThat(r.exit()).as(r.toString()).isZero();
            // --json: the same events, as JSON lines on stdout, in the same order.
            List<String> printed = r.stdout().lines().map(l -> {
                try {
                    return QmpClient.describe(MAPPER.readTree(l));
                } catch (Exception e) {
                    throw new AssertionError("stdout line is not JSON: " + l, e);
                }
            }).toList();
            assertThat(printed).containsSubsequence(qmp.eventLog());
            assertThat(QemuTools.compare(src, dir.resolve("tgt.img"))).isZero();
        }
    }

    @Test
    void cancelBeforeReadyEndsCancelledAndSaysTheTargetIsNotConsistent() throws Exception {
        Images.randomImage(dir.resolve("src.img"), SIZE, 2);
        Path sock = dir.resolve("qmp.sock");
        try (Cli.Running mirror = Cli.start(dir, "mirror", "src.img", "tgt.img", "--control", sock.toString(),
                "--speed", "1M");
                QmpClient qmp = QmpClient.connect(sock, mirror)) {
            qmp.execute("qmp_capabilities");
            assertThat(qmp.execute("block-job-cancel", "{\"device\":\"mirror0\"}").has("return")).isTrue();
            JsonNode cancelled = qmp.awaitEvent("BLOCK_JOB_CANCELLED");
            assertThat(cancelled.path("data").path("offset").asLong()).isLessThan(SIZE);
            qmp.awaitStatus("null");
            assertThat(qmp.eventLog()).containsSubsequence("JOB_STATUS_CHANGE:aborting", "BLOCK_JOB_CANCELLED",
                    "JOB_STATUS_CHANGE:concluded", "JOB_STATUS_CHANGE:null");
            Cli.Result r = mirror.waitFor();
            assertThat(r.exit()).as(r.toString()).isEqualTo(ExitCodes.CANCELLED);
            assertThat(r.stderr()).contains("NOT consistent");
        }
    }

    @Test
    void gracefulCancelWhenReadyCompletesWithoutPivotAndForcedCancelDoesNot() throws Exception {
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 3);
        Path sock = dir.resolve("qmp.sock");
        try (Cli.Running mirror = Cli.start(dir, "mirror", "src.img", "tgt.img", "--control", sock.toString(), "--wait");
                QmpClient qmp = QmpClient.connect(sock, mirror)) {
            qmp.execute("qmp_capabilities");
            awaitReady(qmp);
            assertThat(qmp.execute("block-job-cancel", "{\"device\":\"mirror0\"}").has("return")).isTrue();
            qmp.awaitEvent("BLOCK_JOB_COMPLETED"); // QEMU's soft cancel of a READY mirror
            qmp.awaitStatus("null");
            assertThat(qmp.eventLog()).doesNotContain("BLOCK_JOB_CANCELLED");
            Cli.Result r = mirror.waitFor();
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(r.stdout()).contains("no pivot");
            assertThat(QemuTools.compare(src, dir.resolve("tgt.img"))).isZero();
        }
        try (Cli.Running mirror = Cli.start(dir, "mirror", "src.img", "tgt2.img", "--control", sock.toString(), "--wait");
                QmpClient qmp = QmpClient.connect(sock, mirror)) {
            qmp.execute("qmp_capabilities");
            awaitReady(qmp);
            assertThat(qmp.execute("block-job-cancel", "{\"device\":\"mirror0\",\"force\":true}").has("return")).isTrue();
            qmp.awaitEvent("BLOCK_JOB_CANCELLED");
            qmp.awaitStatus("null"); // the last event; it may trail BLOCK_JOB_CANCELLED on the wire
            assertThat(qmp.eventLog()).containsSubsequence("JOB_STATUS_CHANGE:aborting", "BLOCK_JOB_CANCELLED",
                    "JOB_STATUS_CHANGE:concluded", "JOB_STATUS_CHANGE:null");
            // Nothing writes the source of `handoff mirror`: at READY the copy was complete, so a forced
            // cancel leaves a consistent copy, flushed, and says so (it used to exit 5, "not consistent").
            Cli.Result r = mirror.waitFor();
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(r.stdout()).contains("once READY", "tgt2.img is a consistent copy");
            assertThat(r.stderr()).doesNotContain("NOT consistent", "before the copy was consistent");
            assertThat(QemuTools.compare(src, dir.resolve("tgt2.img"))).isZero();
        }
    }

    @Test
    void targetErrorUnderStopPolicyPausesWithBlockJobErrorUntilResumed() throws Exception {
        Path src = Images.randomImage(dir.resolve("src.img"), SIZE, 4);
        Path sock = dir.resolve("qmp.sock");
        try (Cli.Running mirror = Cli.start(dir, "mirror", "src.img", "tgt.img", "--control", sock.toString(),
                "--speed", "4M", "--inject-target-errors", "1@1", "--on-target-error", "stop");
                QmpClient qmp = QmpClient.connect(sock, mirror)) {
            qmp.execute("qmp_capabilities");
            JsonNode error;
            // The first target write may fail before we negotiated; then the job is already stopped.
            JsonNode info = qmp.execute("query-block-jobs").path("return").get(0);
            if (!info.path("status").asText().equals("paused")) {
                error = qmp.awaitEvent("BLOCK_JOB_ERROR");
                assertThat(error.path("data").path("device").asText()).isEqualTo("mirror0");
                assertThat(error.path("data").path("operation").asText()).isEqualTo("write");
                assertThat(error.path("data").path("action").asText()).isEqualTo("stop");
                qmp.awaitStatus("paused");
                info = qmp.execute("query-block-jobs").path("return").get(0);
            }
            assertThat(info.path("status").asText()).isEqualTo("paused");
            assertThat(info.path("io-status").asText()).isEqualTo("failed");
            assertThat(qmp.execute("block-job-set-speed", "{\"device\":\"mirror0\",\"speed\":0}").has("return")).isTrue();
            assertThat(qmp.execute("block-job-resume", "{\"device\":\"mirror0\"}").has("return")).isTrue();
            qmp.awaitEvent("BLOCK_JOB_COMPLETED");
            Cli.Result r = mirror.waitFor();
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(r.stdout()).contains("ERROR target write");
            assertThat(QemuTools.compare(src, dir.resolve("tgt.img"))).isZero();
        }
    }

    /** Polls query-block-jobs until the job has left "created"; returns its entry. */
    private static JsonNode awaitStarted(QmpClient qmp) throws Exception {
        for (int i = 0; i < 600; i++) {
            JsonNode job = qmp.execute("query-block-jobs").path("return").get(0);
            if (!job.path("status").asText().equals("created")) {
                return job;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("the job never started");
    }

    private static void awaitReady(QmpClient qmp) throws Exception {
        for (int i = 0; i < 600; i++) {
            JsonNode jobs = qmp.execute("query-block-jobs").path("return");
            if (jobs.size() == 1 && jobs.get(0).path("ready").asBoolean()) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("the job never became ready");
    }

    private static void assertError(JsonNode reply, String errorClass, String descPart) {
        assertThat(reply.has("error")).as(reply.toString()).isTrue();
        assertThat(reply.path("error").path("class").asText()).as(reply.toString()).isEqualTo(errorClass);
        assertThat(reply.path("error").path("desc").asText()).as(reply.toString()).contains(descPart);
    }
}
