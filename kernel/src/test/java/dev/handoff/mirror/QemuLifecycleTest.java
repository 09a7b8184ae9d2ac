package dev.handoff.mirror;

import static org.assertj.core.api.Assertions.assertThat;

import dev.handoff.device.DeviceException;
import dev.handoff.device.FaultyDevice;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The parts of the job's lifecycle that follow QEMU's job API beyond the basic table: a pause
 * while CREATED, a complete while paused after READY (standby), and auto-finalize off (PENDING
 * until finalized or cancelled, the guest held meanwhile).
 */
@Timeout(60)
class QemuLifecycleTest {
    private static final int G = JobHarness.GRANULARITY;

    private static MirrorOptions.Builder small() {
        return MirrorOptions.builder().granularity(G).bufSize(4L * G).maxCopyBytes(G);
    }

    private static List<String> transitions(JobHarness h) {
        return h.events(MirrorEvent.StateChanged.class).stream().map(e -> e.from() + ">" + e.to()).toList();
    }

    @Test
    void aJobPausedWhileCreatedPausesAsItStartsAndCopiesNothingUntilResumed() throws Exception {
        JobHarness h = new JobHarness(small().build());
        h.job.pause();
        assertThat(h.job.state()).isEqualTo(JobState.CREATED);
        assertThat(h.events()).as("nothing happens until start").isEmpty();
        h.job.start();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.PAUSED);
        assertThat(transitions(h)).containsExactly("CREATED>RUNNING", "RUNNING>PAUSED");
        assertThat(h.job.progress().offset()).as("no copy was issued").isZero();
        assertThat(h.runtime.queued()).isZero();
        h.job.resume();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.READY);
        JobHarness.assertSameContent(h.target, h.source);
    }

    @Test
    void aPauseWhileCreatedCanBeTakenBackBeforeTheStart() throws Exception {
        JobHarness h = new JobHarness(small().build());
        h.job.pause();
        h.job.resume();
        h.job.start();
        h.runtime.runAll();
        assertThat(transitions(h)).containsExactly("CREATED>RUNNING", "RUNNING>READY");
    }

    @Test
    void completeInStandbyWaitsForResumeThenPivotsWithEveryWriteMadeWhilePaused() throws Exception {
        JobHarness h = new JobHarness(small().build());
        h.ready();
        h.job.pause();
        h.job.complete();
        assertThat(h.job.state()).as("still paused: QEMU completes a job in standby once it is resumed")
                .isEqualTo(JobState.PAUSED);
        JobHarness.write(h.job.guestDevice(), 5L * G + 7, 300, 0x33); // tracked while paused
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.PAUSED);
        h.job.resume();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.COMPLETED);
        assertThat(h.events(MirrorEvent.Completed.class)).singleElement().satisfies(c -> assertThat(c.pivoted()).isTrue());
        assertThat(transitions(h)).endsWith("READY>PAUSED", "PAUSED>COMPLETING", "COMPLETING>COMPLETED");
        JobHarness.assertSameContent(h.target, h.source);
    }

    @Test
    void withAutoFinalizeOffACompletedJobWaitsInPendingHoldingTheGuestAndPivotsWhenFinalized() throws Exception {
        JobHarness h = new JobHarness(small().autoFinalize(false).build());
        h.ready();
        FaultyDevice.Armed flushes = h.target.inject(FaultyDevice.Fault.latency(Duration.ofNanos(1)).on(FaultyDevice.Op.FLUSH));
        h.job.complete();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.PENDING);
        assertThat(flushes.firedCount()).as("the target was flushed before PENDING").isPositive();
        CountDownLatch done = new CountDownLatch(1);
        Thread guest = writer(h, 9L * G, 0x44, done);
        assertThat(done.await(200, TimeUnit.MILLISECONDS)).as("the guest is held while PENDING").isFalse();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.PENDING);
        h.job.finalizeJob();
        assertThat(h.job.state()).isEqualTo(JobState.COMPLETED);
        assertThat(done.await(10, TimeUnit.SECONDS)).isTrue();
        guest.join();
        assertThat(JobHarness.contents(h.target)[(int) (9L * G)]).as("the held write went to the target").isEqualTo((byte) 0x44);
        assertThat(JobHarness.contents(h.source)[(int) (9L * G)]).isNotEqualTo((byte) 0x44);
        assertThat(h.events(MirrorEvent.Completed.class)).singleElement().satisfies(c -> assertThat(c.pivoted()).isTrue());
        assertThat(transitions(h)).endsWith("READY>COMPLETING", "COMPLETING>PENDING", "PENDING>COMPLETED");
    }

    @Test
    void aSoftCancelAfterReadyWithAutoFinalizeOffWaitsInPendingAndEndsWithoutAPivot() throws Exception {
        JobHarness h = new JobHarness(small().autoFinalize(false).build());
        h.ready();
        h.job.cancel();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.PENDING);
        h.job.finalizeJob();
        assertThat(h.events(MirrorEvent.Completed.class)).singleElement().satisfies(c -> assertThat(c.pivoted()).isFalse());
        assertThat(h.job.guestDevice().currentDevice()).isSameAs(h.source);
        JobHarness.assertSameContent(h.target, h.source);
    }

    @Test
    void aCancelInPendingReleasesTheHeldGuestOntoTheSourceWithoutAPivot() throws Exception {
        JobHarness h = new JobHarness(small().autoFinalize(false).build());
        h.ready();
        h.job.complete();
        h.runtime.runAll();
        CountDownLatch done = new CountDownLatch(1);
        Thread guest = writer(h, 3L * G, 0x55, done);
        assertThat(done.await(200, TimeUnit.MILLISECONDS)).isFalse();
        h.job.cancel();
        assertThat(h.job.state()).isEqualTo(JobState.CANCELLED);
        assertThat(done.await(10, TimeUnit.SECONDS)).isTrue();
        guest.join();
        assertThat(JobHarness.contents(h.source)[(int) (3L * G)]).as("the held write went to the source").isEqualTo((byte) 0x55);
        assertThat(h.events(MirrorEvent.Cancelled.class)).hasSize(1);
        assertThat(h.job.guestDevice().currentDevice()).isSameAs(h.source);
    }

    private static Thread writer(JobHarness h, long offset, int value, CountDownLatch done) {
        Thread t = new Thread(() -> {
            try {
                JobHarness.write(h.job.guestDevice(), offset, 100, value);
            } catch (DeviceException e) {
                throw new IllegalStateException(e);
            }
            done.countDown();
        }, "guest");
        t.setDaemon(true);
        t.start();
        return t;
    }
}
