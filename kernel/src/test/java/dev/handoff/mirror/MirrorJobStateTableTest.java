package dev.handoff.mirror;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Every command in every state: the result (the state the job settles in once its queued work
 * has run), or an {@link IllegalStateException} that changes nothing (same state, no event).
 * The table is the one in {@link MirrorJob}'s class comment.
 */
class MirrorJobStateTableTest {
    private static final String ISE = "ISE";

    private static final String[] STATES = {"CREATED", "CREATED_PAUSED", "RUNNING", "READY", "PAUSED",
        "PAUSED_READY", "PAUSED_READY_COMPLETE", "COMPLETING", "CANCELLING", "CANCELLING_READY", "PENDING",
        "PENDING_NO_PIVOT", "COMPLETED", "CANCELLED", "FAILED"};

    private static final String[] COMMANDS = {"start", "pause", "resume", "complete", "finalize", "cancel",
        "cancelForce", "setSpeed", "writeBlocking"};

    /** Rows: state, then the settled result of each command in COMMANDS order. */
    private static final String[][] TABLE = {
        {"CREATED", "READY", "CREATED", ISE, ISE, ISE, "CANCELLED", "CANCELLED", "CREATED", "CREATED"},
        {"CREATED_PAUSED", "PAUSED", ISE, "CREATED", ISE, ISE, "CANCELLED", "CANCELLED", "CREATED", "CREATED"},
        {"RUNNING", ISE, "PAUSED", ISE, ISE, ISE, "CANCELLED", "CANCELLED", "READY", "READY"},
        {"READY", ISE, "PAUSED", ISE, "COMPLETED", ISE, "COMPLETED", "CANCELLED", "READY", "READY"},
        {"PAUSED", ISE, ISE, "READY", ISE, ISE, "CANCELLED", "CANCELLED", "PAUSED", "PAUSED"},
        {"PAUSED_READY", ISE, ISE, "READY", "PAUSED", ISE, "COMPLETED", "CANCELLED", "PAUSED", "PAUSED"},
        {"PAUSED_READY_COMPLETE", ISE, ISE, "COMPLETED", ISE, ISE, "COMPLETED", "CANCELLED", "PAUSED", "PAUSED"},
        {"COMPLETING", ISE, ISE, ISE, ISE, ISE, ISE, "CANCELLED", "COMPLETED", "COMPLETED"},
        {"CANCELLING", ISE, ISE, ISE, ISE, ISE, ISE, "CANCELLED", "CANCELLED", "CANCELLED"},
        {"CANCELLING_READY", ISE, ISE, ISE, ISE, ISE, ISE, "CANCELLED", "COMPLETED", "COMPLETED"},
        {"PENDING", ISE, ISE, ISE, ISE, "COMPLETED", "CANCELLED", "CANCELLED", ISE, ISE},
        {"PENDING_NO_PIVOT", ISE, ISE, ISE, ISE, "COMPLETED", "CANCELLED", "CANCELLED", ISE, ISE},
        {"COMPLETED", ISE, ISE, ISE, ISE, ISE, ISE, ISE, ISE, ISE},
        {"CANCELLED", ISE, ISE, ISE, ISE, ISE, ISE, ISE, ISE, ISE},
        {"FAILED", ISE, ISE, ISE, ISE, ISE, ISE, ISE, ISE, ISE},
    };

    static Stream<Arguments> cells() {
        List<Arguments> cells = new ArrayList<>();
        for (String[] row : TABLE) {
            for (int c = 0; c < COMMANDS.length; c++) {
                cells.add(Arguments.of(row[0], COMMANDS[c], row[c + 1]));
            }
        }
        return cells.stream();
    }

    @ParameterizedTest(name = "{0} × {1} → {2}")
    @MethodSource("cells")
    void commandInStateHasTheDocumentedResult(String state, String command, String expected) throws Exception {
        JobHarness h = harness(MirrorOptions.builder().granularity(JobHarness.GRANULARITY)
                .bufSize(4L * JobHarness.GRANULARITY).maxCopyBytes(JobHarness.GRANULARITY), state).reach(state);
        Consumer<MirrorJob> action = command(command);
        if (expected.equals(ISE)) {
            JobState before = h.job.state();
            int eventsBefore = h.events().size();
            assertThatThrownBy(() -> action.accept(h.job)).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("cannot");
            assertThat(h.job.state()).isEqualTo(before);
            assertThat(h.events()).hasSize(eventsBefore);
        } else {
            action.accept(h.job);
            h.runtime.runAll();
            assertThat(h.job.state().name()).isEqualTo(expected);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("statesWithWriteBlocking")
    void switchingBackToBackgroundIsRefusedEverywhere(String state) throws Exception {
        JobHarness h = harness(MirrorOptions.builder().granularity(JobHarness.GRANULARITY)
                .copyMode(CopyMode.WRITE_BLOCKING), state).reach(state);
        JobState before = h.job.state();
        assertThatThrownBy(() -> h.job.setCopyMode(CopyMode.BACKGROUND)).isInstanceOf(IllegalStateException.class);
        assertThat(h.job.state()).isEqualTo(before);
        assertThat(h.job.progress().copyMode()).isEqualTo(CopyMode.WRITE_BLOCKING);
    }

    static Stream<String> statesWithWriteBlocking() {
        return Stream.of(STATES);
    }

    /** The PENDING rows need auto-finalize off; every other row runs with the defaults. */
    private static JobHarness harness(MirrorOptions.Builder options, String state) {
        return new JobHarness(options.autoFinalize(!state.startsWith("PENDING")).build());
    }

    private static Consumer<MirrorJob> command(String name) {
        return switch (name) {
            case "start" -> MirrorJob::start;
            case "pause" -> MirrorJob::pause;
            case "resume" -> MirrorJob::resume;
            case "complete" -> MirrorJob::complete;
            case "finalize" -> MirrorJob::finalizeJob;
            case "cancel" -> j -> j.cancel();
            case "cancelForce" -> j -> j.cancel(true);
            case "setSpeed" -> j -> j.setSpeed(1 << 30);
            case "writeBlocking" -> j -> j.setCopyMode(CopyMode.WRITE_BLOCKING);
            default -> throw new IllegalArgumentException(name);
        };
    }
}
