package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.device.DeviceException;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.ErrorAction;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorEvent;
import dev.handoff.mirror.MirrorProgress;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The mapping of the kernel's job events to QEMU's QMP events and statuses. */
class QmpEventsTest {
    private final QmpEvents qmp = new QmpEvents("job0",
            () -> new MirrorProgress(JobState.RUNNING, false, 0, 0, 0, 0, false, 0, 123, CopyMode.BACKGROUND));
    private long seq;

    private List<String> feed(MirrorEvent... events) {
        List<String> out = new ArrayList<>();
        for (MirrorEvent e : events) {
            for (ObjectNode n : qmp.translate(e)) {
                out.add(QmpClient.describe(n));
            }
        }
        return out;
    }

    private MirrorEvent state(JobState from, JobState to) {
        return new MirrorEvent.StateChanged(++seq, from, to);
    }

    @Test
    void completeFollowsQemusStatusSequence() {
        assertThat(feed(state(JobState.CREATED, JobState.RUNNING), new MirrorEvent.Ready(++seq, 10, 10),
                state(JobState.RUNNING, JobState.READY), state(JobState.READY, JobState.COMPLETING),
                state(JobState.COMPLETING, JobState.COMPLETED), new MirrorEvent.Completed(++seq, 10, 10, true)))
                .containsExactly("JOB_STATUS_CHANGE:created", "JOB_STATUS_CHANGE:running", "BLOCK_JOB_READY",
                        "JOB_STATUS_CHANGE:ready", "JOB_STATUS_CHANGE:waiting", "JOB_STATUS_CHANGE:pending",
                        "BLOCK_JOB_COMPLETED", "JOB_STATUS_CHANGE:concluded", "JOB_STATUS_CHANGE:null");
    }

    @Test
    void gracefulCancelWhenReadyIsQemusSoftCancel() {
        feed(state(JobState.CREATED, JobState.RUNNING), new MirrorEvent.Ready(++seq, 10, 10),
                state(JobState.RUNNING, JobState.READY));
        qmp.noteCancel(false);
        assertThat(feed(state(JobState.READY, JobState.CANCELLING), state(JobState.CANCELLING, JobState.COMPLETED),
                new MirrorEvent.Completed(++seq, 10, 10, false)))
                .containsExactly("JOB_STATUS_CHANGE:waiting", "JOB_STATUS_CHANGE:pending", "BLOCK_JOB_COMPLETED",
                        "JOB_STATUS_CHANGE:concluded", "JOB_STATUS_CHANGE:null");
    }

    @Test
    void forcedCancelAborts() {
        feed(state(JobState.CREATED, JobState.RUNNING), new MirrorEvent.Ready(++seq, 10, 10),
                state(JobState.RUNNING, JobState.READY));
        qmp.noteCancel(true);
        assertThat(feed(state(JobState.READY, JobState.CANCELLING), state(JobState.CANCELLING, JobState.CANCELLED),
                new MirrorEvent.Cancelled(++seq, 5, 10)))
                .containsExactly("JOB_STATUS_CHANGE:aborting", "BLOCK_JOB_CANCELLED", "JOB_STATUS_CHANGE:concluded",
                        "JOB_STATUS_CHANGE:null");
    }

    @Test
    void failureIsCompletedWithAnError() {
        feed(state(JobState.CREATED, JobState.RUNNING));
        List<ObjectNode> out = qmp.translate(new MirrorEvent.Failed(++seq, 1, 10, "TARGET WRITE failed"));
        assertThat(out).extracting(QmpClient::describe).containsExactly("JOB_STATUS_CHANGE:aborting",
                "BLOCK_JOB_COMPLETED", "JOB_STATUS_CHANGE:concluded", "JOB_STATUS_CHANGE:null");
        assertThat(out.get(1).path("data").path("error").asText()).isEqualTo("TARGET WRITE failed");
    }

    @Test
    void errorWithStopPausesWithQemusFieldsAndIoStatus() {
        feed(state(JobState.CREATED, JobState.RUNNING));
        List<ObjectNode> out = qmp.translate(new MirrorEvent.Error(++seq, MirrorEvent.Side.TARGET,
                MirrorEvent.Operation.WRITE_ZEROES, ErrorAction.STOP, 4096, 512,
                new DeviceException(DeviceException.Kind.NO_SPACE, "full")));
        ObjectNode data = (ObjectNode) out.get(0).path("data");
        assertThat(out.get(0).path("event").asText()).isEqualTo("BLOCK_JOB_ERROR");
        assertThat(data.path("device").asText()).isEqualTo("job0");
        assertThat(data.path("operation").asText()).isEqualTo("write");
        assertThat(data.path("action").asText()).isEqualTo("stop");
        assertThat(data.path("nospace").asBoolean()).isTrue();
        assertThat(qmp.ioStatus()).isEqualTo("nospace");
        assertThat(feed(state(JobState.RUNNING, JobState.PAUSED))).containsExactly("JOB_STATUS_CHANGE:paused");
        assertThat(feed(state(JobState.PAUSED, JobState.RUNNING))).containsExactly("JOB_STATUS_CHANGE:running");
        assertThat(qmp.ioStatus()).isEqualTo("ok");
    }

    @Test
    void pauseAfterReadyIsStandbyAndStaysCompletable() {
        feed(state(JobState.CREATED, JobState.RUNNING), new MirrorEvent.Ready(++seq, 10, 10),
                state(JobState.RUNNING, JobState.READY));
        assertThat(feed(state(JobState.READY, JobState.PAUSED))).containsExactly("JOB_STATUS_CHANGE:standby");
        assertThat(qmp.completable()).isTrue();
    }

    @Test
    void withAutoFinalizeAndAutoDismissOffTheJobWaitsInPendingThenStaysConcludedUntilDismissed() {
        QmpEvents manual = new QmpEvents("job1",
                () -> new MirrorProgress(JobState.PENDING, true, 10, 10, 0, 0, false, 0, 0, CopyMode.BACKGROUND), false);
        List<String> out = new ArrayList<>();
        for (MirrorEvent e : List.of(state(JobState.CREATED, JobState.RUNNING), state(JobState.RUNNING, JobState.READY),
                new MirrorEvent.Ready(++seq, 10, 10), state(JobState.READY, JobState.COMPLETING),
                state(JobState.COMPLETING, JobState.PENDING), state(JobState.PENDING, JobState.COMPLETED),
                new MirrorEvent.Completed(++seq, 10, 10, true))) {
            manual.translate(e).forEach(n -> out.add(QmpClient.describe(n)));
        }
        assertThat(out).containsExactly("JOB_STATUS_CHANGE:created", "JOB_STATUS_CHANGE:running",
                "JOB_STATUS_CHANGE:ready", "BLOCK_JOB_READY", "JOB_STATUS_CHANGE:waiting", "JOB_STATUS_CHANGE:pending",
                "BLOCK_JOB_PENDING", "BLOCK_JOB_COMPLETED", "JOB_STATUS_CHANGE:concluded");
        assertThat(manual.listed()).isTrue();
        assertThat(manual.dismiss()).extracting(QmpClient::describe).containsExactly("JOB_STATUS_CHANGE:null");
        assertThat(manual.listed()).isFalse();
        assertThat(manual.dismiss()).as("dismissed once").isNull();
    }

    @Test
    void resumingFromStandbyIntoAPendingCompletePassesThroughReadyAsQemuDoes() {
        feed(state(JobState.CREATED, JobState.RUNNING), state(JobState.RUNNING, JobState.READY),
                new MirrorEvent.Ready(++seq, 10, 10), state(JobState.READY, JobState.PAUSED));
        assertThat(feed(state(JobState.PAUSED, JobState.COMPLETING)))
                .containsExactly("JOB_STATUS_CHANGE:ready", "JOB_STATUS_CHANGE:waiting");
    }

    @Test
    void blockJobEventsCarryQemusFields() {
        feed(state(JobState.CREATED, JobState.RUNNING));
        List<ObjectNode> out = qmp.translate(new MirrorEvent.Ready(++seq, 7, 9));
        ObjectNode data = (ObjectNode) out.get(0).path("data");
        assertThat(data.path("type").asText()).isEqualTo("mirror");
        assertThat(data.path("device").asText()).isEqualTo("job0");
        assertThat(data.path("offset").asLong()).isEqualTo(7);
        assertThat(data.path("len").asLong()).isEqualTo(9);
        assertThat(data.path("speed").asLong()).isEqualTo(123);
        assertThat(out.get(0).path("timestamp").path("microseconds").asLong()).isBetween(0L, 999_999L);
    }
}
