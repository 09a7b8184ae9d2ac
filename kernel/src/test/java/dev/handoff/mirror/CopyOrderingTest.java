package dev.handoff.mirror;

import dev.handoff.device.DeviceException;
import dev.handoff.device.MemoryDevice;
import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The orders of DESIGN §3, each driven into the interleaving that breaks it when the order is
 * wrong. Each test names the broken variant it catches.
 */
class CopyOrderingTest {
    private static final int G = JobHarness.GRANULARITY;

    private static MirrorOptions.Builder small() {
        return MirrorOptions.builder().granularity(G).bufSize(4L * G).maxCopyBytes(G);
    }

    /** Catches "mark before write": the copier runs between the guest's mark and its data landing. */
    @Test
    void aCopyThatRunsWhileAGuestWriteIsLandingNeverLeavesTheChunkCleanAndStale() throws Exception {
        HookDevice source = new HookDevice(new MemoryDevice(JobHarness.SIZE));
        MemoryDevice target = new MemoryDevice(JobHarness.SIZE);
        SteppingRuntime runtime = new SteppingRuntime();
        MirrorJob job = MirrorJob.create(source, target, small().sync(SyncMode.NONE).build(), runtime);
        job.start();
        runtime.runAll();
        assertThat(job.state()).isEqualTo(JobState.READY);

        source.beforeNextWrite(runtime::runAll); // the copier gets the CPU just before the data lands
        JobHarness.write(job.guestDevice(), 3L * G + 100, 50, 0x5A);
        assertThat(job.bitmap().isDirty(3)).as("the write's chunk is dirty after the write").isTrue();
        runtime.runAll();
        JobHarness.assertSameContent(target, source);
    }

    /** Catches "clear after read": a guest write lands between the copier's read and its clear. */
    @Test
    void aWriteLandingAfterTheCopierReadTheChunkIsCopiedAgain() throws Exception {
        JobHarness h = new JobHarness(small().sync(SyncMode.NONE).build());
        h.job.start();
        h.runtime.runAll();
        JobHarness.write(h.job.guestDevice(), 2L * G, G, 1);
        assertThat(h.runtime.runNext()).isTrue();                    // the copier claims and clears chunk 2, queues its read
        assertThat(h.job.bitmap().isDirty(2)).as("cleared before the read").isFalse();
        assertThat(h.job.claims().isClaimed(2)).isTrue();
        assertThat(h.runtime.runNext()).isTrue();                    // step 3: read the source (value 1)
        JobHarness.write(h.job.guestDevice(), 2L * G + 10, 10, 2);   // lands after the read
        assertThat(h.job.bitmap().isDirty(2)).isTrue();
        h.runtime.runAll();
        JobHarness.assertSameContent(h.target, h.source);
        KeyInvariant.check(h, h.job.bitmap(), h.job.claims());
    }

    /** Catches "overlapping copies allowed": a newer copy of a chunk completes before an older one. */
    @Test
    void aChunkNeverHasTwoCopiesInFlightSoCopiesCannotCompleteOutOfOrder() throws Exception {
        JobHarness h = new JobHarness(small().sync(SyncMode.NONE).build());
        h.job.start();
        h.runtime.runAll();
        JobHarness.write(h.job.guestDevice(), 5L * G, G, 1);
        h.runtime.runNext(); // claim + clear
        h.runtime.runNext(); // read version 1
        JobHarness.write(h.job.guestDevice(), 5L * G, G, 2);
        h.job.pump(); // the copier looks again while the first copy is in flight
        assertThat(h.job.copiesInFlight()).as("no second copy of chunk 5").isEqualTo(1);
        h.runtime.runAllNewestFirst(); // complete in the worst order
        h.runtime.runAll();
        JobHarness.assertSameContent(h.target, h.source);
        KeyInvariant.check(h, h.job.bitmap(), h.job.claims());
    }

    /** Catches "READY while a copy is in flight": at READY the target already equals the idle source. */
    @Test
    void readyIsOnlyEmittedWhenNothingIsInFlightAndTheTargetEqualsTheSource() throws Exception {
        JobHarness h = new JobHarness();
        byte[][] atReady = new byte[2][];
        int[] inFlightAtReady = {-1};
        h.job.addListener(e -> {
            if (e instanceof MirrorEvent.Ready) {
                inFlightAtReady[0] = h.job.copiesInFlight();
                try {
                    atReady[0] = JobHarness.contents(h.source);
                    atReady[1] = JobHarness.contents(h.target);
                } catch (DeviceException ex) {
                    throw new IllegalStateException(ex);
                }
            }
        });
        h.job.start();
        h.runtime.runAllNewestFirst();
        assertThat(h.job.state()).isEqualTo(JobState.READY);
        assertThat(inFlightAtReady[0]).isZero();
        assertThat(atReady[1]).isEqualTo(atReady[0]);
    }

    /** Catches "write-blocking write not ordered with an in-flight copy". */
    @Test
    void aWriteBlockingWriteWaitsForTheInFlightCopyOfItsChunk() throws Exception {
        JobHarness h = new JobHarness(small().sync(SyncMode.NONE).copyMode(CopyMode.WRITE_BLOCKING).build());
        h.job.start();
        h.runtime.runAll();
        h.job.pause();
        JobHarness.write(h.job.guestDevice(), 4L * G, G, 1); // paused: tracked as dirty only
        h.job.resume();
        h.runtime.runNext(); // claim + clear chunk 4
        h.runtime.runNext(); // read version 1
        CountDownLatch done = new CountDownLatch(1);
        Thread guest = new Thread(() -> {
            try {
                JobHarness.write(h.job.guestDevice(), 4L * G, G, 2);
            } catch (DeviceException e) {
                throw new IllegalStateException(e);
            }
            done.countDown();
        });
        guest.start();
        assertThat(done.await(200, TimeUnit.MILLISECONDS)).as("held while chunk 4 is copied").isFalse();
        h.runtime.runAll(); // the copy writes version 1 and releases; then the guest writes version 2 to both
        assertThat(done.await(10, TimeUnit.SECONDS)).isTrue();
        guest.join();
        h.runtime.runAll();
        JobHarness.assertSameContent(h.target, h.source);
        assertThat(JobHarness.contents(h.target)[4 * G]).isEqualTo((byte) 2);
        KeyInvariant.check(h, h.job.bitmap(), h.job.claims());
    }

    /** The held guest write of a pivot lands on the target, after everything acknowledged before. */
    @Test
    void writesIssuedAfterCompleteGoToTheTargetAndNothingIsLost() throws Exception {
        JobHarness h = new JobHarness();
        h.ready();
        JobHarness.write(h.job.guestDevice(), 0, 100, 1); // acknowledged before complete(): dirty
        h.job.complete();
        assertThat(h.job.state()).isEqualTo(JobState.COMPLETING);
        CountDownLatch done = new CountDownLatch(1);
        Thread guest = new Thread(() -> {
            try {
                JobHarness.write(h.job.guestDevice(), 50, 100, 2);
            } catch (DeviceException e) {
                throw new IllegalStateException(e);
            }
            done.countDown();
        });
        guest.start();
        assertThat(done.await(200, TimeUnit.MILLISECONDS)).as("held during the pivot").isFalse();
        h.runtime.runAll();
        assertThat(h.job.state()).isEqualTo(JobState.COMPLETED);
        assertThat(done.await(10, TimeUnit.SECONDS)).isTrue();
        guest.join();
        byte[] t = JobHarness.contents(h.target);
        byte[] s = JobHarness.contents(h.source);
        assertThat(t[0]).isEqualTo((byte) 1);
        assertThat(t[149]).isEqualTo((byte) 2);
        assertThat(s[149]).as("the source is not written after the pivot").isNotEqualTo((byte) 2);
        assertThat(h.events(MirrorEvent.Completed.class)).singleElement()
                .satisfies(c -> assertThat(c.pivoted()).isTrue());
    }

    /** Catches "ignore clearing the chunk": a failed copy leaves its chunk dirty, so it is copied again. */
    @Test
    void aFailedCopyLeavesItsChunkDirtyBeforeReleasingIt() throws Exception {
        JobHarness h = new JobHarness(small().onTargetError(ErrorPolicy.IGNORE).build());
        h.target.inject(dev.handoff.device.FaultyDevice.Fault.error(dev.handoff.device.DeviceException.Kind.IO_ERROR)
                .on(dev.handoff.device.FaultyDevice.Op.WRITE).range(7L * G, 1).times(1));
        h.job.start();
        h.runtime.runAll();
        assertThat(h.job.bitmap().isDirty(7)).isTrue();
        assertThat(h.job.claims().isClaimed(7)).isFalse();
        KeyInvariant.check(h, h.job.bitmap(), h.job.claims());
        h.runtime.advance(1_000_000_000L);
        assertThat(h.job.state()).isEqualTo(JobState.READY);
        JobHarness.assertSameContent(h.target, h.source);
    }
}
