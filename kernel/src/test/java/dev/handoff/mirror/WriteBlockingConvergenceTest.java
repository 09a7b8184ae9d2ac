package dev.handoff.mirror;

import dev.handoff.device.DeviceException;
import dev.handoff.device.FaultyDevice;
import dev.handoff.device.MemoryDevice;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * DESIGN §2.6 and §3.4: a write-blocking guest write clears the dirty bits of the chunks it
 * covers completely, while it holds their claim, so the copier never has work left in a chunk the
 * guest rewrote whole; a chunk it covers only in part stays dirty; a failed write leaves its
 * chunks dirty before the claim is released.
 *
 * <p>Broken variants caught (mutants/): wb-clears-partial-chunk, write-blocking-no-clear.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class WriteBlockingConvergenceTest {
    private static final int G = JobHarness.GRANULARITY;

    /** Write-blocking, sync FULL, one chunk per copy, at most four chunks of copies in flight. */
    private static MirrorOptions.Builder writeBlocking() {
        return MirrorOptions.builder().granularity(G).bufSize(4L * G).maxCopyBytes(G).copyMode(CopyMode.WRITE_BLOCKING);
    }

    @Test
    void aWriteBlockingWriteClearsTheDirtyChunksItCoversCompletelyAndLeavesPartlyCoveredOnesDirty() throws Exception {
        JobHarness h = new JobHarness(writeBlocking().build());
        h.job.start(); // claims chunks 0-3 and queues their copies; 4-15 are dirty and unclaimed
        assertThat(h.job.bitmap().count()).isEqualTo(12);

        JobHarness.write(h.job.guestDevice(), 6L * G - 10, 2 * G + 20, 7); // 5 in part, 6 and 7 whole, 8 in part

        assertThat(h.job.bitmap().isDirty(5)).as("partly covered").isTrue();
        assertThat(h.job.bitmap().isDirty(6)).as("covered completely").isFalse();
        assertThat(h.job.bitmap().isDirty(7)).as("covered completely").isFalse();
        assertThat(h.job.bitmap().isDirty(8)).as("partly covered").isTrue();
        assertThat(h.job.claims().anyClaimed(5, 8)).as("released").isFalse();
        KeyInvariant.check(h, h.job.bitmap(), h.job.claims());
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.READY);
        JobHarness.assertSameContent(h.target, h.source);
    }

    @Test
    void aWriteThatCoversNoChunkCompletelyClearsNothing() throws Exception {
        JobHarness h = new JobHarness(writeBlocking().build());
        h.job.start();

        JobHarness.write(h.job.guestDevice(), 9L * G + 1, G - 1, 3); // all of chunk 9 but its first byte
        JobHarness.write(h.job.guestDevice(), 10L * G + G / 2, G, 4); // halves of 10 and 11

        assertThat(h.job.bitmap().isDirty(9)).isTrue();
        assertThat(h.job.bitmap().isDirty(10)).isTrue();
        assertThat(h.job.bitmap().isDirty(11)).isTrue();
        h.runtime.runAll();
        JobHarness.assertSameContent(h.target, h.source);
    }

    @Test
    void aShortLastChunkIsCoveredByAWriteThatReachesTheEndOfTheDevice() throws Exception {
        long size = 16L * G - 100;
        JobHarness h = new JobHarness(writeBlocking().build(), size);
        h.job.start();

        JobHarness.write(h.job.guestDevice(), 15L * G, (int) (size - 15L * G), 5);

        assertThat(h.job.bitmap().isDirty(15)).as("the short last chunk, written to its end").isFalse();
        h.runtime.runAll();
        JobHarness.assertSameContent(h.target, h.source);
    }

    @Test
    void aFailedTargetWriteLeavesTheChunksItCoversDirtyAndUnclaimed() throws Exception {
        JobHarness h = new JobHarness(writeBlocking().onTargetError(ErrorPolicy.IGNORE).build());
        h.job.start();
        h.target.inject(FaultyDevice.Fault.error(DeviceException.Kind.IO_ERROR).on(FaultyDevice.Op.WRITE)
                .range(12L * G, G).times(1));

        JobHarness.write(h.job.guestDevice(), 12L * G, G, 9); // acknowledged: the source has it

        assertThat(h.job.bitmap().isDirty(12)).isTrue();
        assertThat(h.job.claims().isClaimed(12)).isFalse();
        KeyInvariant.check(h, h.job.bitmap(), h.job.claims());
        h.runtime.runAll();
        h.runtime.advance(1_000_000_000L); // the ignored error's back-off
        assertThat(h.job.state()).isEqualTo(JobState.READY);
        JobHarness.assertSameContent(h.target, h.source);
    }

    @Test
    void aFailedSourceWriteLeavesTheChunksItCoversDirty() throws Exception {
        JobHarness h = new JobHarness(writeBlocking().build());
        h.ready();
        JobHarness.write(h.job.guestDevice(), 2L * G, G, 1); // READY and clean; rewritten whole
        assertThat(h.job.bitmap().count()).isZero();
        h.source.inject(FaultyDevice.Fault.error(DeviceException.Kind.IO_ERROR).on(FaultyDevice.Op.WRITE).torn().times(1));

        assertThatThrownBy(() -> JobHarness.write(h.job.guestDevice(), 3L * G, G, 2)).isInstanceOf(DeviceException.class);

        assertThat(h.job.bitmap().isDirty(3)).as("part of the write may have landed on the source").isTrue();
        assertThat(h.job.claims().isClaimed(3)).isFalse();
        h.runtime.runAll();
        JobHarness.assertSameContent(h.target, h.source);
    }

    /**
     * The guest rewrites one dirty chunk as fast as it can: every task of the copier runs inside
     * one of its writes, while it holds the chunk's claim, so the copier can never claim that
     * chunk. The job still gets READY, because the guest's own write leaves the chunk clean.
     */
    @Test
    void aGuestRewritingOneDirtyChunkAsFastAsItCanCannotKeepTheJobFromReady() throws Exception {
        HookDevice source = new HookDevice(new MemoryDevice(JobHarness.SIZE));
        MemoryDevice target = new MemoryDevice(JobHarness.SIZE);
        JobHarness.fillRandom(source, 3);
        SteppingRuntime runtime = new SteppingRuntime();
        MirrorJob job = MirrorJob.create(source, target, writeBlocking().build(), runtime);
        job.start();
        for (int i = 0; i < 40 && job.state() != JobState.READY; i++) {
            source.beforeNextWrite(runtime::runAll); // the copier runs while the guest holds chunk 15
            JobHarness.write(job.guestDevice(), 15L * G, G, i + 1);
        }
        assertThat(job.state()).as("READY while the guest still writes chunk 15").isEqualTo(JobState.READY);
        assertThat(job.bitmap().count()).isZero();
        JobHarness.assertSameContent(target, source);
    }

    /**
     * The same on real threads: the job's own pool copies while a guest thread rewrites the last
     * chunk, whole, with no pause between its writes, each holding the chunk's claim for the
     * length of a slow target write. The job gets READY while the guest keeps writing, without the
     * copier ever copying that chunk: the guest's writes keep it clean (a speed limit holds the
     * copier back until the guest's first write is in). The pivot then carries every acknowledged
     * write.
     */
    @Test
    void aGuestThreadRewritingOneDirtyChunkWithoutPauseCannotKeepARealThreadJobFromReady() throws Exception {
        int chunks = 64;
        long hot = (long) (chunks - 1) * G;
        MemoryDevice source = new MemoryDevice((long) chunks * G);
        JobHarness.fillRandom(source, 5);
        SlowWrites target = new SlowWrites(new MemoryDevice((long) chunks * G), 1_000_000L);
        MirrorJob job = MirrorJob.create(source, target, writeBlocking().speed(G).build(), JobRuntime.threadPool(2));
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicInteger acknowledged = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.CountDownLatch firstWrite = new java.util.concurrent.CountDownLatch(1);
        java.nio.ByteBuffer[] data = new java.nio.ByteBuffer[2];
        for (int i = 0; i < 2; i++) {
            byte[] b = new byte[G];
            java.util.Arrays.fill(b, (byte) (i + 1));
            data[i] = java.nio.ByteBuffer.wrap(b);
        }
        Thread guest = new Thread(() -> {
            try {
                // Nothing between two writes but the loop: the chunk is unclaimed for a moment only.
                for (int i = 0; !stop.get(); i++) {
                    job.guestDevice().write(hot, data[i & 1].clear());
                    acknowledged.set(i + 1);
                    firstWrite.countDown();
                }
            } catch (DeviceException | RuntimeException e) {
                failure.set(e);
            }
        }, "hot-chunk-guest");
        job.start(); // write-blocking from here; one chunk per 100 ms slice for now
        guest.start();
        try {
            assertThat(firstWrite.await(30, TimeUnit.SECONDS)).isTrue();
            job.setSpeed(0);
            assertThat(job.awaitReady(java.time.Duration.ofSeconds(60)))
                    .as("READY while the guest rewrites chunk %d (%d writes so far)", chunks - 1, acknowledged.get())
                    .isTrue();
            assertThat(guest.isAlive()).as("the guest was still writing at READY").isTrue();
            assertThat(job.progress().offset()).as("bytes the copier copied: every chunk but the guest's")
                    .isEqualTo(hot);
        } finally {
            stop.set(true);
            guest.join(30_000);
        }
        assertThat(failure.get()).isNull();
        job.complete();
        assertThat(job.awaitConclusion(java.time.Duration.ofSeconds(30))).isEqualTo(JobState.COMPLETED);
        JobHarness.assertSameContent(target, source);
        assertThat(JobHarness.contents(target)[(int) hot]).as("the last acknowledged write")
                .isEqualTo((byte) (2 - acknowledged.get() % 2));
    }

    /** A device whose writes take {@code nanos} longer (a slow target: a write-blocking guest holds its claims that long). */
    private static final class SlowWrites extends dev.handoff.device.ForwardingBlockDevice {
        private final long nanos;

        SlowWrites(dev.handoff.device.BlockDevice inner, long nanos) {
            super(inner);
            this.nanos = nanos;
        }

        @Override
        public void write(long offset, java.nio.ByteBuffer src) throws DeviceException {
            java.util.concurrent.locks.LockSupport.parkNanos(nanos);
            super.write(offset, src);
        }

        @Override
        public void writeZeroes(long offset, long length) throws DeviceException {
            java.util.concurrent.locks.LockSupport.parkNanos(nanos);
            super.writeZeroes(offset, length);
        }
    }

    /**
     * The copier goes idle when every dirty chunk is claimed by a guest write; the write that then
     * clears the last dirty chunk must wake it, or nothing ever judges READY. Set up
     * deterministically: guest A claims the dirty chunk 5 and waits for chunk 6, which guest B
     * holds (blocked in its target write) after the copier copied it; the copier copies
     * everything else and goes idle; then B returns (its chunk was clean: no wake from it) and A
     * clears chunk 5.
     */
    @Test
    void aWriteThatClearsTheLastDirtyChunkWakesTheIdleCopierToJudgeReady() throws Exception {
        MemoryDevice source = new MemoryDevice(JobHarness.SIZE);
        JobHarness.fillRandom(source, 7);
        HookDevice target = new HookDevice(new MemoryDevice(JobHarness.SIZE));
        SteppingRuntime runtime = new SteppingRuntime();
        MirrorJob job = MirrorJob.create(source, target, writeBlocking().build(), runtime);
        job.start();
        while (job.bitmap().isDirty(6) || job.claims().isClaimed(6)) {
            assertThat(runtime.runNext()).as("copies of chunks 0-6").isTrue(); // then 7-10 are in flight
        }
        job.pause(); // while paused, guest writes only mark
        JobHarness.write(job.guestDevice(), 5L * G, 100, 1);
        job.resume(); // four copies in flight fill the buf-size: chunk 5 stays dirty and unclaimed
        assertThat(job.bitmap().isDirty(5)).isTrue();
        assertThat(job.claims().isClaimed(5)).isFalse();

        java.util.concurrent.CountDownLatch bInTarget = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch bGo = new java.util.concurrent.CountDownLatch(1);
        target.beforeNextWrite(() -> {
            bInTarget.countDown();
            await(bGo);
        });
        Thread b = writer(job, 6L * G, G, 2);
        b.start();
        assertThat(bInTarget.await(30, TimeUnit.SECONDS)).as("B holds chunk 6 in its target write").isTrue();
        Thread a = writer(job, 5L * G, 2 * G, 3); // claims 5, waits for 6
        a.start();
        while (!job.claims().isClaimed(5)) {
            Thread.onSpinWait();
        }
        runtime.runAll(); // everything else is copied; the copier finds chunk 5 claimed and goes idle
        assertThat(job.state()).isEqualTo(JobState.RUNNING);
        bGo.countDown();
        b.join(30_000);
        a.join(30_000);
        runtime.runAll();

        assertThat(job.state()).as("READY, judged by the copier A's write woke").isEqualTo(JobState.READY);
        JobHarness.assertSameContent(target, source);
    }

    private static Thread writer(MirrorJob job, long offset, int length, int value) {
        return new Thread(() -> {
            try {
                JobHarness.write(job.guestDevice(), offset, length, value);
            } catch (DeviceException e) {
                throw new IllegalStateException(e);
            }
        });
    }

    private static void await(java.util.concurrent.CountDownLatch latch) {
        try {
            if (!latch.await(30, TimeUnit.SECONDS)) {
                throw new IllegalStateException("not released");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
