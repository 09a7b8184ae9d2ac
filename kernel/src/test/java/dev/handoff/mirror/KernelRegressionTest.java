package dev.handoff.mirror;

import dev.handoff.device.DeviceException.Kind;
import dev.handoff.device.FaultyDevice.Fault;
import dev.handoff.device.FaultyDevice.Op;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Defects the deterministic simulator found, each pinned by the schedule that exposed it. */
class KernelRegressionTest {
    private static final int G = JobHarness.GRANULARITY;

    @Test
    void aCancelAfterAReportedErrorDoesNotHideTheFailure() {
        JobHarness h = new JobHarness(MirrorOptions.builder().granularity(G).bufSize(4L * G).maxCopyBytes(G).build());
        h.target.inject(Fault.error(Kind.IO_ERROR).on(Op.WRITE).times(1));
        h.job.start();
        while (h.events(MirrorEvent.Error.class).isEmpty()) {
            assertThat(h.runtime.runNext()).isTrue(); // until the failing target write
        }
        // The job is now ending as FAILED, with other copies still in flight.
        assertThat(h.job.copiesInFlight()).isPositive();
        assertThat(h.job.state()).isEqualTo(JobState.RUNNING);
        assertThatThrownBy(() -> h.job.cancel()).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("FAILED");
        assertThatThrownBy(() -> h.job.pause()).isInstanceOf(IllegalStateException.class);
        h.job.cancel(true); // forcing changes nothing either
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.FAILED);
    }

    @Test
    void aSecondIgnoredErrorDuringABackOffDoesNotStallTheCopier() throws Exception {
        JobHarness h = new JobHarness(MirrorOptions.builder().granularity(G).bufSize(4L * G).maxCopyBytes(G)
                .onTargetError(ErrorPolicy.IGNORE).build());
        h.target.inject(Fault.error(Kind.IO_ERROR).on(Op.WRITE).times(4));
        h.job.start();
        h.runtime.runAll(); // four copies in flight fail one after another, each pushing the back-off out
        // Time moves in small steps, so the first timer fires before the pushed-out retry time.
        for (int i = 0; i < 500 && h.job.state() != JobState.READY; i++) {
            h.runtime.advance(10_000_000L);
        }
        assertThat(h.job.state()).isEqualTo(JobState.READY);
        JobHarness.assertSameContent(h.target, h.source);
    }

    @Test
    void aFailedWriteBlockingSourceWriteWakesTheIdleCopier() throws Exception {
        JobHarness h = new JobHarness(MirrorOptions.builder().granularity(G).copyMode(CopyMode.WRITE_BLOCKING).build());
        h.ready();
        h.source.inject(Fault.error(Kind.IO_ERROR).on(Op.WRITE).torn().times(1));
        assertThatThrownBy(() -> JobHarness.write(h.job.guestDevice(), 3L * G, 100, 7))
                .isInstanceOf(dev.handoff.device.DeviceException.class);
        assertThat(h.job.bitmap().isDirty(3)).isTrue();
        h.runtime.runAll();
        assertThat(h.job.bitmap().count()).as("the torn chunk was copied again").isZero();
        JobHarness.assertSameContent(h.target, h.source);
    }
}
