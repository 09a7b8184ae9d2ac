package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;
import dev.handoff.device.MemoryDevice;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/** Zero chunks, merging, buf-size and speed. */
class CopierTest {
    private static final int G = JobHarness.GRANULARITY;

    /** Counts target operations. */
    static final class CountingDevice extends ForwardingBlockDevice {
        final AtomicInteger writes = new AtomicInteger();
        final AtomicInteger zeroes = new AtomicInteger();

        CountingDevice(long size) {
            super(new MemoryDevice(size));
        }

        @Override
        public void write(long offset, ByteBuffer src) throws DeviceException {
            writes.incrementAndGet();
            super.write(offset, src);
        }

        @Override
        public void writeZeroes(long offset, long length) throws DeviceException {
            zeroes.incrementAndGet();
            super.writeZeroes(offset, length);
        }
    }

    private static MirrorJob job(BlockDevice s, BlockDevice t, MirrorOptions o, SteppingRuntime r) {
        return MirrorJob.create(s, t, o, r);
    }

    @Test
    void zeroChunksAreSkippedWhenTheTargetIsKnownZero() throws Exception {
        MemoryDevice source = new MemoryDevice(JobHarness.SIZE);
        JobHarness.write(source, 2L * G, 10, 1);
        CountingDevice target = new CountingDevice(JobHarness.SIZE);
        SteppingRuntime r = new SteppingRuntime();
        MirrorJob job = job(source, target, MirrorOptions.builder().granularity(G).maxCopyBytes(G).targetIsZero(true).build(), r);
        job.start();
        r.runAll();
        assertThat(target.writes).hasValue(1);
        assertThat(target.zeroes).hasValue(0);
        JobHarness.assertSameContent(target, source);
    }

    @Test
    void zeroChunksAreWrittenWithWriteZeroesOtherwise() throws Exception {
        MemoryDevice source = new MemoryDevice(JobHarness.SIZE);
        JobHarness.write(source, 2L * G, 10, 1);
        CountingDevice target = new CountingDevice(JobHarness.SIZE);
        JobHarness.fillRandom(target, 3); // stale data the zeroes must overwrite
        target.writes.set(0);
        SteppingRuntime r = new SteppingRuntime();
        MirrorJob job = job(source, target, MirrorOptions.builder().granularity(G).maxCopyBytes(G).build(), r);
        job.start();
        r.runAll();
        assertThat(target.writes).hasValue(1);
        assertThat(target.zeroes).hasValue(15);
        JobHarness.assertSameContent(target, source);
    }

    @Test
    void aChunkZeroedByTheGuestAfterItWasCopiedIsZeroedOnTheTargetToo() throws Exception {
        MemoryDevice source = new MemoryDevice(JobHarness.SIZE);
        JobHarness.write(source, 2L * G, G, 1);
        CountingDevice target = new CountingDevice(JobHarness.SIZE);
        SteppingRuntime r = new SteppingRuntime();
        MirrorJob job = job(source, target, MirrorOptions.builder().granularity(G).maxCopyBytes(G).targetIsZero(true).build(), r);
        job.start();
        r.runAll();
        JobHarness.write(job.guestDevice(), 2L * G, G, 0);
        r.runAll();
        assertThat(target.zeroes).hasValue(1);
        JobHarness.assertSameContent(target, source);
    }

    @Test
    void adjacentDirtyChunksAreMergedUpToMaxCopyBytes() {
        JobHarness h = new JobHarness(MirrorOptions.builder().granularity(G).bufSize(16L * G).maxCopyBytes(4L * G).build());
        h.job.start();
        assertThat(h.job.copiesInFlight()).isEqualTo(4); // 16 chunks in runs of 4
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.READY);
    }

    @Test
    void bufSizeBoundsTheBytesInFlight() {
        JobHarness h = new JobHarness(MirrorOptions.builder().granularity(G).bufSize(3L * G).maxCopyBytes(G).build());
        h.job.start();
        assertThat(h.job.copiesInFlight()).isEqualTo(3);
        assertThat(h.job.progress().bytesInFlight()).isEqualTo(3L * G);
    }

    @Test
    void speedLimitSpreadsTheCopyOverTimeAndCanBeLifted() {
        JobHarness h = new JobHarness(MirrorOptions.builder().granularity(G).maxCopyBytes(G).speed(10L * G).build());
        h.job.start();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.RUNNING); // one chunk per 100 ms slice
        h.runtime.advance(RateLimiter.SLICE_NANOS);
        assertThat(h.job.progress().offset()).isEqualTo(2L * G);
        h.job.setSpeed(0);
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.READY);
        assertThat(h.job.progress().speed()).isZero();
    }

    @Test
    void progressOffsetIsMonotoneAndLengthCoversWhatIsLeft() {
        JobHarness h = new JobHarness();
        h.job.start();
        long last = -1;
        while (h.runtime.runNext()) {
            MirrorProgress p = h.job.progress();
            assertThat(p.offset()).isGreaterThanOrEqualTo(last);
            assertThat(p.length()).isEqualTo(p.offset() + p.dirtyBytes() + p.bytesInFlight());
            last = p.offset();
        }
        MirrorProgress end = h.job.progress();
        assertThat(end.offset()).isEqualTo(end.length()).isEqualTo(JobHarness.SIZE);
    }

    @Test
    void eventsCarryConsecutiveSequenceNumbers() throws Exception {
        JobHarness h = new JobHarness().reach("COMPLETED");
        long expected = 1;
        for (MirrorEvent e : h.events()) {
            assertThat(e.sequence()).isEqualTo(expected++);
        }
        assertThat(h.events()).extracting(e -> e.getClass().getSimpleName())
                .containsExactly("StateChanged", "StateChanged", "Ready", "StateChanged", "StateChanged", "Completed");
    }

    @Test
    void sizesMustMatchAndTheDevicesMustDiffer() {
        MemoryDevice a = new MemoryDevice(4096);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> MirrorJob.create(a, new MemoryDevice(8192), MirrorOptions.defaults()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("sizes must match");
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> MirrorJob.create(a, a, MirrorOptions.defaults()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("same device");
    }

    @Test
    void copiesInFlightNeverExceedTheRuntimesParallelism() throws Exception {
        SteppingRuntime r = new SteppingRuntime();
        MemoryDevice source = new MemoryDevice(JobHarness.SIZE);
        JobHarness.fillRandom(source, 7);
        MemoryDevice target = new MemoryDevice(JobHarness.SIZE);
        MirrorJob job = MirrorJob.create(source, target,
                MirrorOptions.builder().granularity(G).bufSize(16L * G).maxCopyBytes(G).build(), hinted(r, 2, true));
        job.start();
        // buf-size alone would allow 16 copies; two threads can run only two, and a copy queued
        // behind them would hold its claims while a write-blocking guest waits on them.
        assertThat(job.copiesInFlight()).isEqualTo(2);
        while (r.runNext()) {
            assertThat(job.copiesInFlight()).isLessThanOrEqualTo(2);
        }
        assertThat(job.state()).isEqualTo(JobState.READY);
        JobHarness.assertSameContent(target, source);
    }

    @Test
    void whileAGuestWritesOneCopyIsInFlightAndTheFullDepthReturnsOnceItStops() throws Exception {
        for (CopyMode mode : CopyMode.values()) {
            SteppingRuntime r = new SteppingRuntime();
            long chunks = 256;
            MemoryDevice source = new MemoryDevice(chunks * G);
            JobHarness.fillRandom(source, 9);
            MemoryDevice target = new MemoryDevice(chunks * G);
            MirrorJob job = MirrorJob.create(source, target, MirrorOptions.builder().granularity(G)
                    .bufSize(chunks * G).maxCopyBytes(G).copyMode(mode).build(), hinted(r, 4, true));
            MirrorFilter guest = job.guestDevice();
            job.start();
            assertThat(job.copiesInFlight()).as(mode + ": no guest yet, the full parallelism").isEqualTo(4);
            // A QD1 guest writing every 0.2 ms, to the last chunk (the copier, ascending from the
            // first, never holds it, so a write-blocking write never waits for a copy). The four
            // copies in flight when it starts run to their end (eight steps); after them, one at a time.
            for (int i = 0; i < 80; i++) {
                JobHarness.write(guest, (chunks - 1) * G, G, i + 1);
                r.moveClock(200_000);
                assertThat(r.runNext()).isTrue();
                if (i >= 12) {
                    assertThat(job.copiesInFlight()).as(mode + ": copies in flight while the guest writes, step " + i)
                            .isLessThanOrEqualTo(1);
                }
            }
            long copied = job.progress().offset();
            assertThat(copied).as(mode + ": the copier kept copying").isGreaterThan(20L * G);
            // The guest stops: once the window has passed, the next completion issues the full depth.
            r.moveClock(Copier.GUEST_WINDOW_NANOS);
            int steps = 0;
            while (job.copiesInFlight() < 4 && steps < 3) {
                assertThat(r.runNext()).isTrue();
                steps++;
            }
            assertThat(job.copiesInFlight()).as(mode + ": copies in flight after the guest stopped").isEqualTo(4);
            r.runAll();
            assertThat(job.state()).isEqualTo(JobState.READY);
            JobHarness.assertSameContent(target, source);
        }
    }

    @Test
    void aRuntimeOfRealThreadsWritesTheTargetRightAfterTheReadInTheSameTask() throws Exception {
        for (boolean separate : new boolean[] {true, false}) {
            SteppingRuntime r = new SteppingRuntime();
            MemoryDevice source = new MemoryDevice(JobHarness.SIZE);
            JobHarness.fillRandom(source, 8);
            CountingDevice target = new CountingDevice(JobHarness.SIZE);
            MirrorJob job = MirrorJob.create(source, target,
                    MirrorOptions.builder().granularity(G).bufSize(G).maxCopyBytes(G).build(), hinted(r, Integer.MAX_VALUE, separate));
            job.start();
            assertThat(r.runNext()).isTrue(); // the first copy's read step
            assertThat(target.writes).as("target writes after one task, separate steps: " + separate)
                    .hasValue(separate ? 0 : 1);
            r.runAll();
            assertThat(job.state()).isEqualTo(JobState.READY);
            JobHarness.assertSameContent(target, source);
        }
    }

    /** {@code r}, reporting the given parallelism and step separation. */
    private static JobRuntime hinted(SteppingRuntime r, int parallelism, boolean separateSteps) {
        return new JobRuntime() {
            @Override
            public void execute(Runnable task) {
                r.execute(task);
            }

            @Override
            public void schedule(Runnable task, long delayNanos) {
                r.schedule(task, delayNanos);
            }

            @Override
            public long nanoTime() {
                return r.nanoTime();
            }

            @Override
            public int parallelism() {
                return parallelism;
            }

            @Override
            public boolean separatesCopySteps() {
                return separateSteps;
            }
        };
    }
}
