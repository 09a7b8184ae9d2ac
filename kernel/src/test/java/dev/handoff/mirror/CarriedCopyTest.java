package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;
import dev.handoff.device.MemoryDevice;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Which thread runs a copy (Copier, "Threads"): a copy issued by another copy's completion runs on
 * the thread that finished that copy, up to {@link Copier#MAX_CARRIED} in a row, on a runtime of
 * real threads over an executor that counts the copies handed to it.
 */
class CarriedCopyTest {
    private static final int G = JobHarness.GRANULARITY;
    private static final int CHUNKS = 100;

    /** An executor of two threads that counts the copies (not the other tasks) handed to it. */
    private static final class CountingExecutor implements java.util.concurrent.Executor {
        final ExecutorService pool = Executors.newFixedThreadPool(2);
        final AtomicInteger copies = new AtomicInteger();
        final Set<String> copyThreads = ConcurrentHashMap.newKeySet();

        @Override
        public void execute(Runnable task) {
            if (task instanceof CopyOperation) {
                copies.incrementAndGet();
                pool.execute(() -> {
                    copyThreads.add(Thread.currentThread().getName());
                    task.run();
                });
            } else {
                pool.execute(task);
            }
        }
    }

    @Test
    void atDepthOneTheCopiesAFinishedCopyIssuesRunOnItsThreadAndOnlyEveryThirtyThirdGoesToTheExecutor()
            throws Exception {
        MemoryDevice source = new MemoryDevice((long) CHUNKS * G);
        JobHarness.fillRandom(source, 36);
        MemoryDevice target = new MemoryDevice((long) CHUNKS * G);
        CountingExecutor executor = new CountingExecutor();
        try {
            MirrorJob job = MirrorJob.create(source, target,
                    MirrorOptions.builder().granularity(G).bufSize(4L * G).maxCopyBytes(G).build(),
                    JobRuntime.of(executor, 1));
            job.start();
            assertThat(job.awaitReady(Duration.ofSeconds(60))).isTrue();
            JobHarness.assertSameContent(target, source);
            // One copy per chunk, one at a time: start() hands the first to the executor; each thread
            // then runs MAX_CARRIED more in a row and hands the next one over (handing every one over,
            // the executor would get CHUNKS).
            int inRow = Copier.MAX_CARRIED + 1;
            assertThat(executor.copies).as("copies handed to the executor for " + CHUNKS + " copies")
                    .hasValue((CHUNKS + inRow - 1) / inRow);
        } finally {
            executor.pool.shutdownNow();
        }
    }

    @Test
    void aFailedCopyWhoseRetryIsCarriedStillLeavesTheTargetEqualToTheSource() throws Exception {
        MemoryDevice inner = new MemoryDevice((long) CHUNKS * G);
        JobHarness.fillRandom(inner, 37);
        AtomicBoolean failed = new AtomicBoolean();
        BlockDevice source = new ForwardingBlockDevice(inner) {
            @Override
            public void read(long offset, ByteBuffer dst) throws DeviceException {
                if (offset == 7L * G && failed.compareAndSet(false, true)) {
                    throw new DeviceException(DeviceException.Kind.IO_ERROR, "injected");
                }
                super.read(offset, dst);
            }
        };
        MemoryDevice target = new MemoryDevice((long) CHUNKS * G);
        CountingExecutor executor = new CountingExecutor();
        try {
            MirrorJob job = MirrorJob.create(source, target,
                    MirrorOptions.builder().granularity(G).bufSize(4L * G).maxCopyBytes(G)
                            .onSourceError(ErrorPolicy.IGNORE).build(),
                    JobRuntime.of(executor, 1));
            job.start();
            assertThat(job.awaitReady(Duration.ofSeconds(60))).isTrue();
            assertThat(failed).isTrue();
            JobHarness.assertSameContent(target, inner);
            job.cancel();
            assertThat(job.awaitConclusion(Duration.ofSeconds(60))).isEqualTo(JobState.COMPLETED);
        } finally {
            executor.pool.shutdownNow();
        }
    }
}
