package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A job with a persistent write-intent bitmap (DESIGN §2.10) that loses power at a random moment,
 * with a guest writing, resumes from the bits that survived and ends with the target equal to what
 * the source kept; and it copies again only the regions its bitmap names.
 */
class MirrorResumeTest {
    private static final int SIZE = 8 << 20;
    private static final int REGION = 256 << 10;
    private static final int GRANULARITY = 64 << 10;
    private static final Duration LIMIT = Duration.ofSeconds(45);

    private static MirrorOptions options(MemoryBitmapStore store, CopyMode mode) {
        return MirrorOptions.builder().granularity(GRANULARITY).bufSize(1 << 20).speed(8L << 20)
                .copyMode(mode).bitmap(store).bitmapClearInterval(Duration.ofMillis(20)).build();
    }

    @Test
    void aJobThatLosesPowerUnderWritesResumesFromItsBitmapToATargetEqualToTheSource() throws Exception {
        for (int round = 0; round < 8; round++) {
            Random random = new Random(round);
            CopyMode mode = round % 2 == 0 ? CopyMode.BACKGROUND : CopyMode.WRITE_BLOCKING;
            long speed = round % 4 < 2 ? 8L << 20 : 0; // a crash during the bulk pass, or mostly after it
            CrashableDevice source = new CrashableDevice(SIZE).fillRandom(round);
            CrashableDevice target = new CrashableDevice(SIZE);
            MemoryBitmapStore store = MemoryBitmapStore.allDirty(SIZE, REGION);

            // Run 1: copy under a writer, then lose power at a random moment.
            MirrorJob first = MirrorJob.create(source, target, options(store, mode).toBuilder().speed(speed).build());
            Writer writer = new Writer(first.guestDevice(), random.nextLong());
            writer.start();
            first.start();
            Thread.sleep(50 + random.nextInt(400));
            writer.stopAndJoin();
            Thread.sleep(random.nextInt(200)); // clear passes run on what the writer left unflushed
            first.cancel(true);
            Liveness.awaitConclusion(first, LIMIT);
            source.crash(random);
            target.crash(random);
            store.crash(random);

            // Run 2: resume from the bits that survived; nothing writes meanwhile.
            MemoryBitmapStore reopened = new MemoryBitmapStore(store.header(), store.synced());
            MirrorJob second = MirrorJob.create(source, target, options(reopened, mode).toBuilder().speed(0).build());
            long resume = second.bitmapStatus().resumeBytes();
            second.start();
            assertThat(Liveness.awaitReady(second, LIMIT)).isTrue();
            second.cancel();
            assertThat(Liveness.awaitConclusion(second, LIMIT)).isEqualTo(JobState.COMPLETED);
            assertThat(source.firstDifference(target)).as("round %d (%s): target = source after the resume", round, mode)
                    .isEqualTo(-1);
            assertThat(second.progress().offset()).as("the resumed job copies only the regions its bitmap names")
                    .isLessThanOrEqualTo(resume);
            assertThat(writer.failures.get()).isNull();
        }
    }

    @Test
    void aBitmapsRegionsAreClearedOnceTheirCopiesAreDurableSoAResumeAfterReadyCopiesLittle() throws Exception {
        CrashableDevice source = new CrashableDevice(SIZE).fillRandom(3);
        CrashableDevice target = new CrashableDevice(SIZE);
        MemoryBitmapStore store = MemoryBitmapStore.allDirty(SIZE, REGION);
        MirrorJob job = MirrorJob.create(source, target, options(store, CopyMode.BACKGROUND).toBuilder().speed(0).build());
        job.start();
        assertThat(Liveness.awaitReady(job, LIMIT)).isTrue();
        long deadline = System.nanoTime() + LIMIT.toNanos();
        while (job.bitmapStatus().bitBytes() > 0 && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertThat(job.bitmapStatus().bitBytes()).as("every region cleared after READY with no writes").isZero();
        job.cancel(true);
        Liveness.awaitConclusion(job, LIMIT);
        store.crash(new Random(0));
        source.crash(new Random(1));
        target.crash(new Random(2));
        assertThat(store.synced()).as("the clears are synced").containsOnly(0L);
        assertThat(source.firstDifference(target)).as("cleared regions are durable on both sides").isEqualTo(-1);
    }

    /** A guest writing random 4 KiB-aligned ranges through the filter until stopped. */
    private static final class Writer extends Thread {
        private final BlockDevice device;
        private final Random random;
        private final AtomicBoolean stop = new AtomicBoolean();
        final AtomicReference<Throwable> failures = new AtomicReference<>();
        final AtomicLong writes = new AtomicLong();

        Writer(BlockDevice device, long seed) {
            this.device = device;
            this.random = new Random(seed);
            setDaemon(true);
        }

        @Override
        public void run() {
            byte[] data = new byte[32 << 10];
            while (!stop.get()) {
                int blocks = 1 + random.nextInt(8);
                long at = (long) random.nextInt(SIZE / 4096 - blocks) * 4096;
                random.nextBytes(data);
                try {
                    device.write(at, ByteBuffer.wrap(data, 0, blocks * 4096));
                    writes.incrementAndGet();
                    if (random.nextInt(16) == 0) {
                        device.flush();
                    }
                } catch (DeviceException e) {
                    failures.compareAndSet(null, e);
                    return;
                }
            }
        }

        void stopAndJoin() throws InterruptedException {
            stop.set(true);
            join(LIMIT.toMillis());
        }
    }
}
