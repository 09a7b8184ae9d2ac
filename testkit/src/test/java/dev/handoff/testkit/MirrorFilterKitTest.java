package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.MemoryDevice;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.MirrorFilter;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Nested;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The kit on {@link MirrorFilter}, the device a guest uses while a mirror job copies its source to
 * a target on real threads, in both copy modes; its layering puts the kit's backing device (and its
 * faults) under the job as the source.
 */
class MirrorFilterKitTest {

    abstract static class Mirroring extends DeviceKit {
        private final List<MirrorJob> jobs = new ArrayList<>();

        abstract CopyMode mode();

        private BlockDevice mirror(BlockDevice source) {
            MirrorJob job = MirrorJob.create(source, new MemoryDevice(source.size()),
                    MirrorOptions.builder().granularity(64 << 10).bufSize(4 << 20).copyMode(mode()).build());
            synchronized (jobs) {
                jobs.add(job);
            }
            job.start();
            return job.guestDevice();
        }

        @Override
        public BlockDevice create(long size) {
            return mirror(new MemoryDevice(size));
        }

        @Override
        public boolean discardReadsZeroes() {
            return true;
        }

        @Override
        public Layering layering() {
            return this::mirror;
        }

        @AfterEach
        void cancelJobs() throws Exception {
            synchronized (jobs) {
                for (MirrorJob job : jobs) {
                    if (!job.conclusion().isDone()) {
                        try {
                            job.cancel(true);
                        } catch (IllegalStateException concludedMeanwhile) {
                            // a job the fault check failed (a source error) may conclude between the two
                        }
                    }
                    job.awaitConclusion(Duration.ofSeconds(30));
                }
                jobs.clear();
            }
        }
    }

    @Nested
    class Background extends Mirroring {
        @Override
        CopyMode mode() {
            return CopyMode.BACKGROUND;
        }
    }

    @Nested
    class WriteBlocking extends Mirroring {
        @Override
        CopyMode mode() {
            return CopyMode.WRITE_BLOCKING;
        }
    }
}
