package dev.handoff.specs;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.FaultyDevice;
import dev.handoff.device.MemoryDevice;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.ErrorPolicy;
import dev.handoff.mirror.JobRuntime;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import dev.handoff.mirror.MirrorTraceRecorder;
import dev.handoff.mirror.SyncMode;
import dev.handoff.properties.mirror.MirrorScenario;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Trace validation of a copy that reports after a newer copy of its first chunk (specs/README.md).
 * {@code Copier.release} releases a copy's claims, then reports under the job's lock
 * ({@code MirrorJob.onCopyFinished}); in between, the chunk may be dirtied again and a new copy
 * of it issued, run and even reported. Real threads take that path about one run in five of
 * {@link MirrorRealThreadTraceTest}; here it is staged: the first copy of chunk 1 is held on its
 * thread right after its release (of its whole run: the kernel releases a word's chunks in one
 * step) while the guest rewrites chunk 1 and a second copy of it runs to its report; the first
 * copy's run is chunk 1, or chunks 1 and 2, which then count twice for buf-size. MirrorCopy.tla
 * must take those steps; with {@code Bug = "CopiesByFirstChunk"} (copies known by their first
 * chunk until they report, as the spec once had it) it must not. And a failed copy, held the
 * same way while a write-blocking write rewrites its chunk, reports into a converged job during
 * its back-off: the kernel judges the drain's end at once, as the spec must.
 */
// Each test forks TLC once or twice (a few seconds each, more on a busy machine).
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class CopyReportTraceTest {
    private static final int CHUNK = 512;
    private static final int CHUNKS = 2;

    @Test
    void aCopyThatReportsAfterANewerCopyOfItsChunkIsAStepOfMirrorCopy() throws Exception {
        staged("reports-late", 1, 2);
    }

    @Test
    void aCopyOfARunThatReportsAfterANewerCopyOfItsFirstChunkIsAStepOfMirrorCopy() throws Exception {
        staged("run-reports-late", 2, 3);
    }

    @Test
    void aFailedCopyThatReportsIntoAConvergedJobDuringItsBackOffLetsTheDrainEnd() throws Exception {
        MemoryDevice source = new MemoryDevice(CHUNK);
        FaultyDevice target = new FaultyDevice(new MemoryDevice(CHUNK));
        target.inject(FaultyDevice.Fault.error(DeviceException.Kind.IO_ERROR).on(FaultyDevice.Op.WRITE).times(1));
        MirrorOptions options = MirrorOptions.builder().granularity(CHUNK).bufSize(CHUNK).maxCopyBytes(CHUNK)
                .sync(SyncMode.NONE).copyMode(CopyMode.BACKGROUND).onTargetError(ErrorPolicy.IGNORE).build();
        MirrorTraceRecorder recorder = new MirrorTraceRecorder();
        MirrorJob job = MirrorTraceRecorder.createJob(source, target, options, JobRuntime.threadPool(2), recorder);
        Held held = holdFirstCopyAfterItsRelease(recorder);

        BlockDevice guest = job.guestDevice();
        job.start();
        recorder.guest("g1");
        guest.write(0, ByteBuffer.wrap(filled(CHUNK, 1)));            // its copy fails on the target
        await(held.firstHeld(), "the failed copy to release chunk 1");
        recorder.guest(null);
        job.setCopyMode(CopyMode.WRITE_BLOCKING);
        recorder.guest("g1");
        guest.write(0, ByteBuffer.wrap(filled(CHUNK, 2)));            // rewrites chunk 1 whole: clean
        recorder.guest(null);
        job.complete();
        held.goOn().countDown();
        assertThat(job.awaitConclusion(Duration.ofSeconds(60))).isEqualTo(JobState.COMPLETED);

        List<MirrorTraceRecorder.Event> events = recorder.events();
        assertThat(events).as("one copy, which failed on the target").filteredOn(e -> e.step().equals("COPY_READ"))
                .hasSize(1);
        assertThat(events).filteredOn(e -> e.step().equals("COPY_FINISHED")).singleElement()
                .matches(e -> e.ok() == 1, "failed with an I/O error");
        Map<String, String> constants = constants(1, 1, 1);
        constants.put("TargetPolicy", "\"ignore\"");
        TraceCheck c = MirrorTraceTest.check("backoff-converged", events, constants);
        assertThat(c.accepted()).as("the spec took %d of %d steps; see %s", c.matched(), c.events(),
                TraceCheck.WORK_DIR.resolve("backoff-converged")).isTrue();
    }

    /**
     * A copy held on its thread: the hook that holds it, the latch set when it is held, and the one
     * that lets it go on.
     */
    private record Held(Consumer<MirrorTraceRecorder.Event> hook, CountDownLatch firstHeld, CountDownLatch goOn) {
    }

    /** Holds the first copy that releases chunk 1 on its thread, right after that release. */
    private static Held holdFirstCopyAfterItsRelease(MirrorTraceRecorder recorder) {
        CountDownLatch firstHeld = new CountDownLatch(1);
        CountDownLatch goOn = new CountDownLatch(1);
        AtomicBoolean held = new AtomicBoolean();
        Consumer<MirrorTraceRecorder.Event> hook = e -> {
            if (e.step().equals("RELEASE") && e.guest().equals("none") && e.chunk() == 1 && held.compareAndSet(false, true)) {
                firstHeld.countDown();
                await(goOn, "the test to let the first copy go on");
            }
        };
        recorder.afterEachStep(hook);
        return new Held(hook, firstHeld, goOn);
    }

    private static Map<String, String> constants(int chunks, int bufChunks, int maxCopyChunks) {
        MirrorScenario.Config config = new MirrorScenario.Config(0, 0, chunks, 0, bufChunks, maxCopyChunks, 0,
                SyncMode.NONE, CopyMode.BACKGROUND, ErrorPolicy.REPORT, ErrorPolicy.REPORT, false, 0);
        Map<String, String> constants = MirrorTraceTest.constants(config, chunks);
        constants.put("Guests", "{\"g1\"}");
        constants.put("Parallelism", "2");
        return constants;
    }

    /**
     * The staged run: copies of up to {@code maxCopyChunks} chunks within a buf-size of
     * {@code bufChunks}; the guest writes the first {@code maxCopyChunks} chunks, then chunk 1
     * again while the first copy is held.
     */
    private void staged(String name, int maxCopyChunks, int bufChunks) throws Exception {
        MemoryDevice source = new MemoryDevice((long) CHUNKS * CHUNK);
        MemoryDevice target = new MemoryDevice((long) CHUNKS * CHUNK);
        MirrorOptions options = MirrorOptions.builder().granularity(CHUNK).bufSize((long) bufChunks * CHUNK)
                .maxCopyBytes(maxCopyChunks * CHUNK).sync(SyncMode.NONE).copyMode(CopyMode.BACKGROUND)
                .copiesWhileGuestWrites(2) // the second copy starts right after a guest write
                .build();
        MirrorTraceRecorder recorder = new MirrorTraceRecorder();
        MirrorJob job = MirrorTraceRecorder.createJob(source, target, options, JobRuntime.threadPool(2), recorder);

        Held held = holdFirstCopyAfterItsRelease(recorder);
        CountDownLatch secondReported = new CountDownLatch(1);
        CountDownLatch bothReported = new CountDownLatch(2);
        recorder.afterEachStep(held.hook().andThen(e -> {
            if (e.step().equals("COPY_FINISHED") && e.copy() == 1) {
                secondReported.countDown(); // the first report is the second copy's: the first is held
                bothReported.countDown();
            }
        }));

        BlockDevice guest = job.guestDevice();
        job.start();
        recorder.guest("g1");
        guest.write(0, ByteBuffer.wrap(filled(maxCopyChunks * CHUNK, 1)));
        await(held.firstHeld(), "the first copy of chunk 1 to release it");
        guest.write(0, ByteBuffer.wrap(filled(CHUNK, 2)));
        recorder.guest(null);
        await(secondReported, "the second copy of chunk 1 to report");
        held.goOn().countDown();
        await(bothReported, "the first copy to report");
        assertThat(job.awaitReady(Duration.ofSeconds(60))).isTrue();
        job.complete();
        assertThat(job.awaitConclusion(Duration.ofSeconds(60))).isEqualTo(JobState.COMPLETED);

        List<MirrorTraceRecorder.Event> events = recorder.events();
        assertThat(order(events)).as("the staged schedule: the first copy releases chunk 1, the second copy of"
                + " chunk 1 runs and reports, then the first reports").containsExactly(
                "COPY_READ 1", "RELEASE 1", "COPY_READ 1", "RELEASE 1", "COPY_FINISHED 1", "COPY_FINISHED 1");

        Map<String, String> constants = constants(CHUNKS, bufChunks, maxCopyChunks);
        TraceCheck good = MirrorTraceTest.check(name, events, constants);
        assertThat(good.accepted()).as("%s: the spec took %d of %d steps; see %s", name, good.matched(),
                good.events(), TraceCheck.WORK_DIR.resolve(name)).isTrue();

        constants.put("Bug", "\"CopiesByFirstChunk\"");
        TraceCheck keyed = MirrorTraceTest.check(name + "-by-first-chunk", events, constants);
        assertThat(keyed.accepted()).as("%s with copies known by their first chunk", name).isFalse();
    }

    /** The copies' steps of chunk 1, in order: "RELEASE 1" by a copy, "COPY_READ 1", "COPY_FINISHED 1". */
    private static List<String> order(List<MirrorTraceRecorder.Event> events) {
        return events.stream()
                .filter(e -> e.step().equals("RELEASE") ? e.guest().equals("none") && e.chunk() == 1
                        : (e.step().equals("COPY_READ") || e.step().equals("COPY_FINISHED")) && e.copy() == 1)
                .map(e -> e.step() + " 1")
                .toList();
    }

    private static byte[] filled(int n, int value) {
        byte[] b = new byte[n];
        java.util.Arrays.fill(b, (byte) value);
        return b;
    }

    private static void await(CountDownLatch latch, String what) {
        try {
            if (!latch.await(60, TimeUnit.SECONDS)) {
                throw new AssertionError("timed out waiting for " + what);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted waiting for " + what, e);
        }
    }
}
