package dev.handoff.mirror;

import static org.assertj.core.api.Assertions.assertThat;

import dev.handoff.device.DeviceException;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Sparse-aware copying: the holes of a source are not read, zero chunks are not written as data,
 * and a target ends as sparse as its source to within one chunk per extent, whatever runs of
 * chunks a copy merges. On a {@link SparseDevice}, which keeps an allocation map as a file system
 * does for a sparse file.
 */
@Timeout(60)
class SparseCopyTest {
    private static final int G = 64 << 10;
    private static final long SIZE = 64L * G;
    private static final long[] EXTENTS = {3L * G + 100, 17L * G, 17L * G + 9000, 40L * G - 2048, 63L * G + 5};

    /** Four KiB of data at each of {@link #EXTENTS}; everything else a hole. */
    private static SparseDevice sparseSource() throws DeviceException {
        SparseDevice d = new SparseDevice(SIZE);
        SplittableRandom r = new SplittableRandom(3);
        for (long at : EXTENTS) {
            byte[] b = new byte[4096];
            r.nextBytes(b);
            d.write(at, ByteBuffer.wrap(b, 0, (int) Math.min(4096, SIZE - at)));
        }
        return d;
    }

    /** Large copies (the whole device in a few runs), so that runs mix data and zero chunks. */
    private static MirrorOptions.Builder bigRuns() {
        return MirrorOptions.builder().granularity(G).bufSize(16L * G).maxCopyBytes(16L * G);
    }

    private static MirrorJob ready(SparseDevice source, SparseDevice target, MirrorOptions options, SteppingRuntime rt) {
        MirrorJob job = MirrorJob.create(source, target, options, rt);
        job.start();
        rt.runAll();
        assertThat(job.state()).isEqualTo(JobState.READY);
        return job;
    }

    @Test
    void aTargetEndsAsSparseAsTheSourceToWithinOneChunkPerExtent() throws Exception {
        SparseDevice source = sparseSource();
        SparseDevice target = new SparseDevice(SIZE);
        JobHarness.fillRandom(target, 9); // an existing target full of old data: every block allocated
        assertThat(target.allocatedBytes()).isEqualTo(SIZE);
        target.bytesWritten.set(0);
        ready(source, target, bigRuns().build(), new SteppingRuntime());
        JobHarness.assertSameContent(target, source);
        long chunksWithData = java.util.Arrays.stream(EXTENTS).flatMap(at -> java.util.stream.LongStream.of(at / G,
                (Math.min(SIZE, at + 4096) - 1) / G)).distinct().count();
        assertThat(target.allocatedBytes()).as("data chunks only, not the runs a copy merged")
                .isLessThanOrEqualTo(chunksWithData * G);
        assertThat(target.bytesWritten.get()).isLessThanOrEqualTo(chunksWithData * G);
    }

    @Test
    void theHolesOfTheSourceAreNotReadAndAZeroTargetGetsNoZeroWrites() throws Exception {
        SparseDevice source = sparseSource();
        SparseDevice target = new SparseDevice(SIZE);
        ready(source, target, bigRuns().targetIsZero(true).build(), new SteppingRuntime());
        assertThat(source.bytesRead.get()).as("only the 4 KiB blocks that hold data").isEqualTo(source.allocatedBytes());
        assertThat(target.zeroCalls.get()).as("the target is known to read as zeroes").isZero();
        JobHarness.assertSameContent(target, source);
    }

    @Test
    void aHoleSkippedInOneCopyIsNotFilledWithAnEarlierCopysBytes() throws Exception {
        // One copy at a time, so one buffer is reused: a hole read after data must still read as zeroes.
        SparseDevice source = new SparseDevice(SIZE);
        JobHarness.fillRandom(source, 5);
        // In the second half each chunk ends in a hole, copied after the first half's chunks of data
        // left the buffer full (a run that is a hole from end to end is not filled at all: below).
        for (long at = SIZE / 2; at < SIZE; at += G) {
            source.writeZeroes(at + G / 2, G / 2);
        }
        SparseDevice target = new SparseDevice(SIZE);
        JobHarness.fillRandom(target, 6);
        ready(source, target, MirrorOptions.builder().granularity(G).bufSize(G).maxCopyBytes(G).build(),
                new SteppingRuntime());
        JobHarness.assertSameContent(target, source);
    }

    @Test
    void aGuestWriteLandingInAHoleAfterTheHoleQueryIsCopiedAgain() throws Exception {
        SparseDevice source = new SparseDevice(SIZE);
        SparseDevice target = new SparseDevice(SIZE);
        SteppingRuntime rt = new SteppingRuntime();
        MirrorJob job = MirrorJob.create(source, target, bigRuns().sync(SyncMode.NONE).build(), rt);
        job.start();
        rt.runAll();
        JobHarness.write(job.guestDevice(), 5L * G, 100, 1); // dirties chunk 5: data in its first 4 KiB only
        // The copy of chunk 5 reads its first block, then asks where the next data is: "nowhere". Just
        // after that answer, the guest writes further into the chunk: the copy zero-fills what the
        // guest wrote, and only the chunk's dirty bit, set again by the write, brings the data over.
        source.afterDataQueryAt(5L * G + SparseDevice.BLOCK, () -> {
            try {
                JobHarness.write(job.guestDevice(), 5L * G + 3 * SparseDevice.BLOCK, 100, 7);
            } catch (DeviceException e) {
                throw new IllegalStateException(e);
            }
        });
        rt.runAll();
        assertThat(job.state()).isEqualTo(JobState.READY);
        JobHarness.assertSameContent(target, source);
        assertThat(JobHarness.contents(target)[(int) (5L * G + 3 * SparseDevice.BLOCK)]).isEqualTo((byte) 7);
    }

    @Test
    void theGuestDeviceReportsTheAllocationMapOfTheDeviceItsWritesLandOn() throws Exception {
        SparseDevice source = sparseSource();
        SparseDevice target = new SparseDevice(SIZE);
        SteppingRuntime rt = new SteppingRuntime();
        MirrorJob job = ready(source, target, bigRuns().build(), rt);
        MirrorFilter guest = job.guestDevice();
        assertThat(guest.nextData(0)).as("while mirroring: the source's map").isEqualTo(source.nextData(0));
        assertThat(guest.nextHole(EXTENTS[0])).isEqualTo(source.nextHole(EXTENTS[0]));
        job.complete();
        rt.runAll();
        assertThat(guest.currentDevice()).isSameAs(target);
        // A write after the pivot lands on the target only: the source still has a hole there.
        long at = 30L * G;
        JobHarness.write(guest, at, 100, 3);
        assertThat(source.nextData(at)).isGreaterThan(at);
        assertThat(guest.nextData(at)).as("after the pivot: the target's map").isEqualTo(at);
        assertThat(guest.nextHole(at)).isEqualTo(target.nextHole(at));
    }

    @Test
    void aRunThatIsOneHoleIsWrittenAsZeroesOverATargetsOldData() throws Exception {
        // One chunk per copy: most runs are a hole from end to end and take the path that never
        // fills the buffer; over a target full of old data they must still be written as zeroes.
        SparseDevice source = sparseSource();
        SparseDevice target = new SparseDevice(SIZE);
        JobHarness.fillRandom(target, 8);
        ready(source, target, MirrorOptions.builder().granularity(G).bufSize(G).maxCopyBytes(G).build(),
                new SteppingRuntime());
        assertThat(source.bytesRead.get()).as("only the 4 KiB blocks that hold data").isEqualTo(source.allocatedBytes());
        assertThat(target.allocatedBytes()).as("the hole runs punched, not written as data").isLessThan(SIZE / 4);
        JobHarness.assertSameContent(target, source);
    }
}
