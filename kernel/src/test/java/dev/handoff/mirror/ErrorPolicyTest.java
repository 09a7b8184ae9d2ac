package dev.handoff.mirror;

import dev.handoff.device.DeviceException.Kind;
import dev.handoff.device.FaultyDevice.Fault;
import dev.handoff.device.FaultyDevice.Op;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** Each error policy does what DESIGN §2.7 says, for source reads and target writes. */
class ErrorPolicyTest {
    private static final long SECOND = 1_000_000_000L;

    private static JobHarness harness(ErrorPolicy onSource, ErrorPolicy onTarget) {
        return new JobHarness(MirrorOptions.builder().granularity(JobHarness.GRANULARITY)
                .bufSize(4L * JobHarness.GRANULARITY).maxCopyBytes(JobHarness.GRANULARITY)
                .onSourceError(onSource).onTargetError(onTarget).build());
    }

    @Test
    void reportFailsTheJobAndLeavesTheGuestOnTheSource() throws Exception {
        JobHarness h = harness(ErrorPolicy.REPORT, ErrorPolicy.REPORT);
        h.target.inject(Fault.error(Kind.IO_ERROR).on(Op.WRITE).range(3 * JobHarness.GRANULARITY, 1).times(1));
        h.job.start();
        h.runtime.runAll();

        assertThat(h.job.state()).isEqualTo(JobState.FAILED);
        MirrorEvent.Error error = h.events(MirrorEvent.Error.class).get(0);
        assertThat(error.side()).isEqualTo(MirrorEvent.Side.TARGET);
        assertThat(error.action()).isEqualTo(ErrorAction.REPORT);
        assertThat(error.offset()).isEqualTo(3L * JobHarness.GRANULARITY);
        assertThat(h.events(MirrorEvent.Failed.class)).hasSize(1);
        assertThat(h.job.failureReason()).contains("TARGET WRITE");
        assertThat(h.job.guestDevice().currentDevice()).isSameAs(h.source);
        JobHarness.write(h.job.guestDevice(), 0, 10, 7); // the guest goes on, on the source
        assertThat(JobHarness.contents(h.source)[0]).isEqualTo((byte) 7);
    }

    @Test
    void reportOnASourceReadErrorFailsTheJob() throws Exception {
        JobHarness h = harness(ErrorPolicy.REPORT, ErrorPolicy.IGNORE);
        h.source.inject(Fault.error(Kind.IO_ERROR).on(Op.READ).times(1));
        h.job.start();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.FAILED);
        assertThat(h.events(MirrorEvent.Error.class).get(0).side()).isEqualTo(MirrorEvent.Side.SOURCE);
    }

    @Test
    void ignoreLeavesTheChunkDirtyRetriesAndConvergesOnceFaultsStop() throws Exception {
        JobHarness h = harness(ErrorPolicy.IGNORE, ErrorPolicy.IGNORE);
        h.target.inject(Fault.error(Kind.IO_ERROR).on(Op.WRITE).times(3));
        h.source.inject(Fault.error(Kind.IO_ERROR).on(Op.READ).times(2));
        h.job.start();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.RUNNING);
        KeyInvariant.check(h, h.job.bitmap(), h.job.claims());
        for (int i = 0; i < 20 && h.job.state() != JobState.READY; i++) {
            h.runtime.advance(SECOND); // back-off timers
            KeyInvariant.check(h, h.job.bitmap(), h.job.claims());
        }
        assertThat(h.job.state()).isEqualTo(JobState.READY);
        assertThat(h.events(MirrorEvent.Error.class)).hasSize(5)
                .allSatisfy(e -> assertThat(e.action()).isEqualTo(ErrorAction.IGNORE));
        assertThat(h.job.progress().errorCount()).isEqualTo(5);
        h.job.complete();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.COMPLETED);
        JobHarness.assertSameContent(h.target, h.source);
    }

    @Test
    void stopPausesAndResumeConverges() throws Exception {
        JobHarness h = harness(ErrorPolicy.REPORT, ErrorPolicy.STOP);
        h.target.inject(Fault.error(Kind.IO_ERROR).on(Op.WRITE).times(1));
        h.job.start();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.PAUSED);
        assertThat(h.events(MirrorEvent.Error.class)).singleElement()
                .satisfies(e -> assertThat(e.action()).isEqualTo(ErrorAction.STOP));
        KeyInvariant.check(h, h.job.bitmap(), h.job.claims());
        h.job.resume();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.READY);
        h.job.complete();
        h.runtime.runAll();
        JobHarness.assertSameContent(h.target, h.source);
    }

    @Test
    void enospcStopsOnNoSpace() {
        JobHarness h = harness(ErrorPolicy.REPORT, ErrorPolicy.ENOSPC);
        h.target.inject(Fault.error(Kind.NO_SPACE).on(Op.WRITE).times(1));
        h.job.start();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.PAUSED);
        h.job.resume();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.READY);
    }

    @Test
    void enospcReportsAnythingElse() {
        JobHarness h = harness(ErrorPolicy.REPORT, ErrorPolicy.ENOSPC);
        h.target.inject(Fault.error(Kind.IO_ERROR).on(Op.WRITE).times(1));
        h.job.start();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.FAILED);
        assertThat(h.events(MirrorEvent.Error.class).get(0).action()).isEqualTo(ErrorAction.REPORT);
    }

    @Test
    void anIgnoredErrorAfterReadyKeepsReadyClearsActivelySyncedAndResyncs() throws Exception {
        JobHarness h = new JobHarness(MirrorOptions.builder().granularity(JobHarness.GRANULARITY)
                .copyMode(CopyMode.WRITE_BLOCKING).onTargetError(ErrorPolicy.IGNORE).build());
        h.ready();
        assertThat(h.job.progress().activelySynced()).isTrue();
        h.target.inject(Fault.error(Kind.IO_ERROR).on(Op.WRITE).times(1));
        JobHarness.write(h.job.guestDevice(), 5, 100, 9); // write-blocking: the target write fails
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.READY);
        assertThat(h.job.progress().activelySynced()).isFalse();
        assertThat(h.job.bitmap().isDirty(0)).isTrue();
        assertThat(h.events(MirrorEvent.Ready.class)).hasSize(1);
        h.runtime.advance(SECOND);
        assertThat(h.job.bitmap().count()).isZero();
        assertThat(h.job.progress().activelySynced()).isTrue();
        JobHarness.assertSameContent(h.target, h.source);
    }

    @Test
    void stopDuringCompletionPausesWithoutHoldingTheGuestAndResumeCompletes() throws Exception {
        JobHarness h = harness(ErrorPolicy.REPORT, ErrorPolicy.STOP);
        h.ready();
        JobHarness.write(h.job.guestDevice(), 0, 10, 3);
        h.target.inject(Fault.error(Kind.IO_ERROR).on(Op.WRITE).times(1));
        h.job.complete();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.PAUSED);
        JobHarness.write(h.job.guestDevice(), 20, 10, 4); // not held while paused
        h.job.resume();
        assertThat(h.job.state()).isEqualTo(JobState.COMPLETING);
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.COMPLETED);
        JobHarness.assertSameContent(h.target, h.source);
    }

    @Test
    void aFailedTargetFlushAtPivotIsAnErrorAndDoesNotPivot() {
        JobHarness h = harness(ErrorPolicy.REPORT, ErrorPolicy.REPORT);
        h.ready();
        h.target.inject(Fault.error(Kind.IO_ERROR).on(Op.FLUSH).times(1));
        h.job.complete();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.FAILED);
        assertThat(h.events(MirrorEvent.Error.class).get(0).operation()).isEqualTo(MirrorEvent.Operation.FLUSH);
        assertThat(h.job.guestDevice().currentDevice()).isSameAs(h.source);
    }

    @Test
    void aForcedCancelWhileTheFinalFlushFailsStillEndsTheJob() throws Exception {
        // ENOSPC stops the job on a no-space error, which does not end it; the forced cancel must.
        JobHarness h = harness(ErrorPolicy.REPORT, ErrorPolicy.ENOSPC);
        h.job.start();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.READY);
        h.target.inject(Fault.error(Kind.NO_SPACE).on(Op.FLUSH).times(1));
        h.job.complete(); // queues the final flush of the target
        h.job.cancel(true); // and a forced cancel arrives before it runs
        h.runtime.runAll(); // the flush fails
        assertThat(h.job.state()).as("the job ended; it is not stuck in CANCELLING").isEqualTo(JobState.CANCELLED);
        assertThat(h.job.guestDevice().currentDevice()).isSameAs(h.source);
        assertThat(h.events(MirrorEvent.Error.class)).hasSize(1);
    }
}
