package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.device.MemoryDevice;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every job command of the control socket in every job status a client can find a job in, against
 * QEMU's documented QMP semantics: its verb table (which verbs each status accepts) and its own
 * refusals on top ("Job is already paused", "Can't resume a job that was not paused", a soft
 * block-job-cancel of a paused job). "ok" means the command is accepted.
 */
@Timeout(60)
class JobControlTest {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final String OK = "ok";
    private static final String PAUSED = "Job is already paused";
    private static final String NOT_PAUSED = "Can't resume a job that was not paused";
    private static final String SOFT_PAUSED = "The block job for device 'j' is currently paused";

    private static final String[] COMMANDS = {"block-job-pause", "block-job-resume", "block-job-complete",
        "block-job-cancel", "job-cancel", "block-job-set-speed", "job-finalize", "job-dismiss", "block-job-change"};
    private static final String[] VERBS = {"pause", "resume", "complete", "cancel", "cancel", "set-speed", "finalize",
        "dismiss", "change"};

    /** status, then the outcome of each command in COMMANDS order; "verb" = QEMU's verb-table refusal. */
    private static final String[][] TABLE = {
        {"created", OK, NOT_PAUSED, "verb", OK, OK, OK, "verb", "verb", OK},
        {"running", OK, NOT_PAUSED, "verb", OK, OK, OK, "verb", "verb", OK},
        {"paused", PAUSED, OK, "verb", SOFT_PAUSED, OK, OK, "verb", "verb", OK},
        {"ready", OK, NOT_PAUSED, OK, OK, OK, OK, "verb", "verb", OK},
        {"standby", PAUSED, OK, OK, SOFT_PAUSED, OK, OK, "verb", "verb", OK},
        {"pending", "verb", "verb", "verb", OK, OK, "verb", OK, "verb", "verb"},
        {"concluded", "verb", "verb", "verb", "verb", "verb", "verb", "verb", OK, "verb"},
    };

    static Stream<Arguments> cells() {
        List<Arguments> cells = new ArrayList<>();
        for (String[] row : TABLE) {
            for (int c = 0; c < COMMANDS.length; c++) {
                cells.add(Arguments.of(row[0], COMMANDS[c], VERBS[c], row[c + 1]));
            }
        }
        return cells.stream();
    }

    @ParameterizedTest(name = "{0} × {1} → {3}")
    @MethodSource("cells")
    void eachCommandInEachStatusIsAnsweredAsQemuAnswersIt(String status, String command, String verb, String expected)
            throws Exception {
        JobRun run = jobIn(status);
        try {
            assertThat(run.qmp().status()).isEqualTo(status);
            JobControl control = new JobControl(table(run));
            String outcome;
            try {
                control.execute(command, args(command));
                outcome = OK;
            } catch (QmpException e) {
                assertThat(e.errorClass()).isEqualTo(QmpException.GENERIC);
                outcome = e.getMessage();
            }
            String want = expected.equals("verb")
                    ? "Job 'j' in state '" + status + "' cannot accept command verb '" + verb + "'" : expected;
            assertThat(outcome).isEqualTo(want);
        } finally {
            if (!run.job().state().isConcluded()) {
                try {
                    run.job().cancel(true);
                } catch (IllegalStateException concludedMeanwhile) {
                    // the job concluded between the check and the cancel (a command above ended it)
                }
            }
        }
    }

    /** QEMU's job-cancel is a forced cancel: on a READY mirror it ends CANCELLED, not COMPLETED without pivot. */
    @org.junit.jupiter.api.Test
    void jobCancelOfAReadyJobIsForcedAndEndsCancelled() throws Exception {
        JobRun run = jobIn("ready");
        new JobControl(table(run)).execute("job-cancel", args("job-cancel"));
        assertThat(run.job().awaitConclusion(Duration.ofSeconds(30))).isEqualTo(JobState.CANCELLED);
    }

    private static JobTable table(JobRun run) throws QmpException {
        JobTable t = new JobTable();
        t.add(run);
        return t;
    }

    private static ObjectNode args(String command) throws Exception {
        String json = switch (command) {
            case "block-job-set-speed" -> "{\"device\":\"j\",\"speed\":1048576}";
            case "block-job-change" -> "{\"id\":\"j\",\"type\":\"mirror\",\"copy-mode\":\"write-blocking\"}";
            case "job-cancel", "job-finalize", "job-dismiss" -> "{\"id\":\"j\"}";
            default -> "{\"device\":\"j\"}";
        };
        return (ObjectNode) MAPPER.readTree(json);
    }

    /** A job on memory devices, driven to {@code status} and held there. */
    private static JobRun jobIn(String status) throws Exception {
        boolean slow = status.equals("created") || status.equals("running") || status.equals("paused");
        MirrorOptions options = MirrorOptions.builder().granularity(64 << 10).speed(slow ? 1 : 0)
                .autoFinalize(!status.equals("pending")).build();
        MemoryDevice source = new MemoryDevice(8L << 20);
        source.write(0, java.nio.ByteBuffer.wrap(new byte[] {1, 2, 3}));
        MirrorJob job = MirrorJob.create(source, new MemoryDevice(8L << 20), options);
        JobRun run = new JobRun(job, "j", () -> { }, !status.equals("concluded"));
        if (status.equals("created")) {
            return run;
        }
        run.start();
        switch (status) {
            case "running" -> await(run, "running");
            case "paused" -> {
                await(run, "running");
                job.pause();
                await(run, "paused");
            }
            case "ready" -> await(run, "ready");
            case "standby" -> {
                await(run, "ready");
                job.pause();
                await(run, "standby");
            }
            case "pending" -> {
                await(run, "ready");
                job.complete();
                await(run, "pending");
            }
            case "concluded" -> {
                await(run, "ready");
                run.qmp().noteCancel(true);
                job.cancel(true);
                job.awaitConclusion(Duration.ofSeconds(30));
                await(run, "concluded");
            }
            default -> throw new IllegalArgumentException(status);
        }
        return run;
    }

    private static void await(JobRun run, String status) throws InterruptedException {
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!run.qmp().status().equals(status)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("never " + status + ": " + run.qmp().status() + ", job " + run.job().state());
            }
            Thread.sleep(5);
        }
        if (status.equals("pending")) {
            assertThat(run.job().state()).isEqualTo(JobState.PENDING);
        }
    }
}
