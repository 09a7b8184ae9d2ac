package dev.handoff.specs;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.FaultyDevice;
import dev.handoff.device.MemoryDevice;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.ErrorPolicy;
import dev.handoff.mirror.JobRuntime;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MemoryBitmapStore;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import dev.handoff.mirror.MirrorTraceRecorder;
import dev.handoff.mirror.SyncMode;
import dev.handoff.properties.mirror.MirrorScenario;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Trace validation on real threads (specs/README.md): a mirror job on its own pool of copier
 * threads, three guest threads writing, discarding, reading and flushing overlapping ranges (in
 * part and whole chunks) while the target fails some writes, the copy mode switched to
 * write-blocking under them, then READY and complete(). Every step the kernel took, on whichever
 * thread, is recorded in the order it took effect, and TLC checks that MirrorCopy.tla can take
 * exactly those steps.
 */
// Each test forks TLC once per trace (a few seconds to a minute each on a busy machine):
// longer than JUnit's default timeout.
@Timeout(value = 10, unit = TimeUnit.MINUTES)
class MirrorRealThreadTraceTest {
    static final int CHUNK = 512;
    static final int CHUNKS = 6;
    static final int GUESTS = 3;
    static final int OPS = 25;

    @Test
    void realThreadRunsWithSeveralGuestsAndTheCopierAreStepsOfMirrorCopy() throws Exception {
        for (long seed = 1; seed <= 2; seed++) {
            run(seed);
        }
    }

    private void run(long seed) throws Exception {
        MemoryDevice source = new MemoryDevice((long) CHUNKS * CHUNK);
        byte[] init = new byte[CHUNKS * CHUNK];
        new SplittableRandom(seed).nextBytes(init);
        source.write(0, ByteBuffer.wrap(init));
        FaultyDevice target = new FaultyDevice(new MemoryDevice((long) CHUNKS * CHUNK), seed);
        target.inject(FaultyDevice.Fault.error(DeviceException.Kind.IO_ERROR).on(FaultyDevice.Op.WRITE).times(3));
        MirrorOptions.Builder builder = MirrorOptions.builder().granularity(CHUNK).bufSize(3L * CHUNK)
                .maxCopyBytes(2 * CHUNK).sync(SyncMode.FULL).copyMode(CopyMode.BACKGROUND)
                .onTargetError(ErrorPolicy.IGNORE);
        if (seed == 2) {
            // With a persistent write-intent bitmap (DESIGN §2.10): its steps (INTENT_BEGIN, INTENT_END,
            // CLEAR_PASS) are in the trace, and change nothing MirrorCopy.tla has.
            builder.bitmap(MemoryBitmapStore.allDirty((long) CHUNKS * CHUNK, 2 * CHUNK))
                    .bitmapClearInterval(java.time.Duration.ofMillis(2));
        }
        MirrorOptions options = builder.build();
        MirrorTraceRecorder recorder = new MirrorTraceRecorder();
        MirrorJob job = MirrorTraceRecorder.createJob(source, target, options, JobRuntime.threadPool(2), recorder);
        BlockDevice guest = job.guestDevice();

        List<Thread> guests = new ArrayList<>();
        List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        for (int g = 1; g <= GUESTS; g++) {
            String id = "g" + g;
            SplittableRandom r = new SplittableRandom(seed * 31 + g);
            guests.add(new Thread(() -> {
                recorder.guest(id);
                try {
                    for (int i = 0; i < OPS; i++) {
                        guestOp(guest, r);
                    }
                } catch (Throwable t) {
                    failures.add(t);
                }
            }, "guest-" + id));
        }
        job.start();
        guests.forEach(Thread::start);
        Thread.sleep(5);
        job.setCopyMode(CopyMode.WRITE_BLOCKING);
        for (Thread t : guests) {
            t.join(60_000);
        }
        assertThat(failures).isEmpty();
        assertThat(job.awaitReady(Duration.ofSeconds(60))).isTrue();
        job.complete();
        assertThat(job.awaitConclusion(Duration.ofSeconds(60))).isEqualTo(JobState.COMPLETED);

        MirrorScenario.Config config = new MirrorScenario.Config(seed, 0, CHUNKS, 0, 3, 2, 0, SyncMode.FULL,
                CopyMode.BACKGROUND, ErrorPolicy.REPORT, ErrorPolicy.IGNORE, false, 0);
        Map<String, String> constants = MirrorTraceTest.constants(config, CHUNKS);
        constants.put("Guests", "{\"g1\", \"g2\", \"g3\"}");
        constants.put("Parallelism", "2");
        List<MirrorTraceRecorder.Event> events = recorder.events();
        if (seed == 2) {
            assertThat(events).as("the bitmap's steps are recorded").anyMatch(e -> e.step().equals("INTENT_BEGIN"))
                    .anyMatch(e -> e.step().equals("INTENT_END"));
        }
        TraceCheck c = MirrorTraceTest.check("threads-" + seed, events, constants);
        assertThat(c.accepted()).as("real-thread run %d: the spec took %d of %d steps; see %s", seed, c.matched(),
                c.events(), TraceCheck.WORK_DIR.resolve("threads-" + seed)).isTrue();
    }

    /** A write (whole chunks or not), a discard, a read or a flush, on up to two chunks. */
    private static void guestOp(BlockDevice guest, SplittableRandom r) throws DeviceException {
        int x = r.nextInt(10);
        long size = (long) CHUNKS * CHUNK;
        long off = r.nextBoolean() ? (long) r.nextInt(CHUNKS) * CHUNK : r.nextInt((int) size);
        int len = (int) Math.min(size - off, r.nextBoolean() ? CHUNK * (1 + r.nextInt(2)) : 1 + r.nextInt(CHUNK));
        if (x < 6) {
            byte[] data = new byte[len];
            r.nextBytes(data);
            guest.write(off, ByteBuffer.wrap(data));
        } else if (x < 7) {
            guest.discard(off, len);
        } else if (x < 9) {
            guest.read(off, ByteBuffer.allocate(len));
        } else {
            guest.flush();
        }
    }
}
