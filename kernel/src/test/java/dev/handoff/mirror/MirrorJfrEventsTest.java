package dev.handoff.mirror;

import dev.handoff.device.DeviceException;
import dev.handoff.device.FaultyDevice;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The kernel's JFR events, recorded around a short mirror job and read back with
 * {@code jdk.jfr.consumer}: one {@code dev.handoff.Copy} per copy, one
 * {@code dev.handoff.WriteBlockingWrite} per write-blocking guest write and one
 * {@code dev.handoff.JobState} per state change, each with the fields the job's own events and
 * the test's writes predict. The job runs on a {@link SteppingRuntime}, so every copy runs on the
 * test's thread and the test's events are told from any other test's by thread and job.
 *
 * <p>Broken variant caught (mutants/): jfr-copy-event-dropped.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MirrorJfrEventsTest {
    private static final int G = JobHarness.GRANULARITY;

    @TempDir
    Path dir;

    @Test
    void aRecordedMirrorHasAnEventPerCopyPerWriteBlockingWriteAndPerStateChange() throws Exception {
        JobHarness h = new JobHarness(MirrorOptions.builder().granularity(G).bufSize(4L * G).maxCopyBytes(G)
                .copyMode(CopyMode.WRITE_BLOCKING).build());
        List<RecordedEvent> recorded = record(() -> {
            h.job.start(); // chunks 0-3 claimed, their copies queued
            JobHarness.write(h.job.guestDevice(), 6L * G, G, 1);          // chunk 6 whole: cleared
            JobHarness.write(h.job.guestDevice(), 9L * G + 100, 4096, 2); // chunk 9 in part
            h.runtime.runAll();
            assertThat(h.job.state()).isEqualTo(JobState.READY);
            JobHarness.write(h.job.guestDevice(), 2L * G + 8192, 512, 3); // after READY
            h.job.complete();
            h.runtime.runAll();
            assertThat(h.job.state()).isEqualTo(JobState.COMPLETED);
        });
        long thread = Thread.currentThread().getId();

        List<RecordedEvent> copies = of(recorded, "dev.handoff.Copy", thread);
        long copied = h.events(MirrorEvent.Completed.class).get(0).offset();
        assertThat(copies.stream().mapToLong(e -> e.getLong("length")).sum()).as("bytes of all copies").isEqualTo(copied);
        TreeSet<Long> chunks = new TreeSet<>();
        for (RecordedEvent e : copies) {
            assertThat(e.getLong("offset") % G).as("copy offset on a chunk").isZero();
            assertThat(e.getLong("length")).as("one chunk per copy (max-copy = granularity)").isEqualTo(G);
            assertThat(e.getString("failedSide")).isNull();
            Duration read = e.getDuration("readTime");
            Duration write = e.getDuration("writeTime");
            assertThat(read.isNegative()).as("read time negative").isFalse();
            assertThat(write.isNegative()).as("write time negative").isFalse();
            // nanoTime laps inside JFR's begin..end (JFR's clock may be the TSC on some hosts: slack)
            assertThat(read.plus(write)).isLessThanOrEqualTo(e.getDuration().plusMillis(1));
            chunks.add(e.getLong("offset") / G);
        }
        for (long c = 0; c < JobHarness.SIZE / G; c++) {
            if (c != 6) { // rewritten whole by the guest before any copy of it: cleared, not copied
                assertThat(chunks).as("chunk %d copied", c).contains(c);
            }
        }

        List<RecordedEvent> writes = of(recorded, "dev.handoff.WriteBlockingWrite", thread);
        assertThat(writes).extracting(e -> e.getLong("offset"), e -> e.getLong("length"))
                .containsExactly(org.assertj.core.groups.Tuple.tuple(6L * G, (long) G),
                        org.assertj.core.groups.Tuple.tuple(9L * G + 100, 4096L),
                        org.assertj.core.groups.Tuple.tuple(2L * G + 8192, 512L));
        assertThat(writes).extracting(e -> e.getBoolean("cleared")).containsExactly(true, false, false);
        for (RecordedEvent e : writes) {
            assertThat(e.getBoolean("failed")).isFalse();
            assertThat(e.getDuration("claimWait").plus(e.getDuration("sourceTime")).plus(e.getDuration("targetTime")))
                    .isLessThanOrEqualTo(e.getDuration().plusMillis(1));
        }

        int job = System.identityHashCode(h.job);
        List<String> changes = new ArrayList<>();
        for (RecordedEvent e : recorded) {
            if (e.getEventType().getName().equals("dev.handoff.JobState") && e.getInt("job") == job) {
                changes.add(e.getString("from") + "->" + e.getString("to"));
                assertThat(e.getLong("copied")).isBetween(0L, copied);
            }
        }
        List<String> expected = new ArrayList<>();
        for (MirrorEvent.StateChanged s : h.events(MirrorEvent.StateChanged.class)) {
            expected.add(s.from() + "->" + s.to());
        }
        assertThat(changes).isEqualTo(expected).contains("RUNNING->READY", "COMPLETING->COMPLETED");
    }

    @Test
    void aFailedCopyIsRecordedWithTheSideThatFailed() throws Exception {
        JobHarness h = new JobHarness(MirrorOptions.builder().granularity(G).bufSize(4L * G).maxCopyBytes(G)
                .onTargetError(ErrorPolicy.REPORT).build());
        h.target.inject(FaultyDevice.Fault.error(DeviceException.Kind.IO_ERROR).on(FaultyDevice.Op.WRITE));
        List<RecordedEvent> recorded = record(() -> {
            h.job.start();
            h.runtime.runAll();
            assertThat(h.job.state()).isEqualTo(JobState.FAILED);
        });
        List<RecordedEvent> copies = of(recorded, "dev.handoff.Copy", Thread.currentThread().getId());
        assertThat(copies).isNotEmpty();
        assertThat(copies).extracting(e -> e.getString("failedSide")).contains("TARGET");
    }

    private interface Body {
        void run() throws Exception;
    }

    /** Runs {@code body} under a recording of the Handoff events (no threshold), and reads it back. */
    private List<RecordedEvent> record(Body body) throws Exception {
        Path file = dir.resolve("events.jfr");
        try (Recording r = new Recording()) {
            for (String name : List.of("dev.handoff.Copy", "dev.handoff.WriteBlockingWrite", "dev.handoff.JobState")) {
                r.enable(name).withThreshold(Duration.ZERO);
            }
            r.start();
            body.run();
            r.stop();
            r.dump(file);
        }
        return readAll(file);
    }

    private static List<RecordedEvent> readAll(Path file) throws IOException {
        return RecordingFile.readAllEvents(file);
    }

    private static List<RecordedEvent> of(List<RecordedEvent> all, String name, long thread) {
        List<RecordedEvent> out = new ArrayList<>();
        for (RecordedEvent e : all) {
            if (e.getEventType().getName().equals(name) && e.getThread() != null
                    && e.getThread().getJavaThreadId() == thread) {
                out.add(e);
            }
        }
        out.sort((a, b) -> a.getStartTime().compareTo(b.getStartTime()));
        return out;
    }
}
