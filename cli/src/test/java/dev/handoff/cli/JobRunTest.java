package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.handoff.device.MemoryDevice;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * The control socket is up before the job starts, so a management tool can cancel a job that has
 * not started yet: starting it afterwards is not an error, and the cancellation is what is reported.
 */
class JobRunTest {
    @Test
    void aJobCancelledOverTheControlSocketBeforeItStartedEndsCancelled() throws Exception {
        MirrorJob job = MirrorJob.create(new MemoryDevice(1 << 20), new MemoryDevice(1 << 20), MirrorOptions.defaults());
        JobRun run = new JobRun(job, "mirror0");
        job.cancel(); // what block-job-cancel does, racing the command's own start
        run.start();
        assertThat(job.state()).isEqualTo(JobState.CANCELLED);
        assertThat(run.awaitDelivered(Duration.ofSeconds(10))).as("the final event is delivered").isTrue();
    }

    @Test
    void aJobNobodyCancelledStartsAndRuns() throws Exception {
        MirrorJob job = MirrorJob.create(new MemoryDevice(1 << 20), new MemoryDevice(1 << 20), MirrorOptions.defaults());
        JobRun run = new JobRun(job, "mirror0");
        run.start();
        assertThat(job.awaitReady(Duration.ofSeconds(30))).isTrue();
        job.complete();
        assertThat(job.awaitConclusion(Duration.ofSeconds(30))).isEqualTo(JobState.COMPLETED);
    }
}
