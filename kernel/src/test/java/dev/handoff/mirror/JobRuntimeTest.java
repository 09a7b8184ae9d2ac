package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;
import dev.handoff.device.MemoryDevice;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The built-in runtimes: where tasks and timers run, the parallelism the copier is told, and what
 * a thread pool does when its job is READY; and when a job tells its runtime it is READY.
 */
class JobRuntimeTest {

    @Test
    void aRuntimeOverAnEmbeddersExecutorRunsTasksAndTimersThereAndReportsTheParallelismItWasGiven()
            throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            AtomicInteger onExecutor = new AtomicInteger();
            JobRuntime runtime = JobRuntime.of(task -> {
                onExecutor.incrementAndGet();
                pool.execute(task);
            }, 2);
            CountDownLatch ran = new CountDownLatch(2);
            runtime.execute(ran::countDown);
            runtime.schedule(ran::countDown, TimeUnit.MILLISECONDS.toNanos(1));
            assertThat(ran.await(30, TimeUnit.SECONDS)).isTrue();
            assertThat(onExecutor).hasValue(2);
            assertThat(runtime.parallelism()).isEqualTo(2);
            assertThat(runtime.separatesCopySteps()).isFalse();
            assertThat(runtime.carriesNextCopy()).isTrue();
            assertThat(JobRuntime.of(pool).parallelism()).isEqualTo(Integer.MAX_VALUE);
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void aParallelismBelowOneIsRefused() {
        assertThatThrownBy(() -> JobRuntime.of(Runnable::run, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> JobRuntime.threadPool(0)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aThreadPoolReportsItsThreadsAsItsParallelism() {
        JobRuntime runtime = JobRuntime.threadPool(3);
        try {
            assertThat(runtime.parallelism()).isEqualTo(3);
            assertThat(runtime.carriesNextCopy()).isTrue();
        } finally {
            runtime.shutdown();
        }
    }

    /** A source that records, for each read on a copier thread, the thread and its priority then. */
    private static final class WatchedSource extends ForwardingBlockDevice {
        final List<Integer> priorities = new CopyOnWriteArrayList<>();
        final Map<Thread, Boolean> threads = new ConcurrentHashMap<>();

        WatchedSource(BlockDevice inner) {
            super(inner);
        }

        @Override
        public void read(long offset, ByteBuffer dst) throws DeviceException {
            Thread t = Thread.currentThread();
            if (t.getName().startsWith("handoff-copier-")) {
                threads.put(t, true);
                priorities.add(t.getPriority());
            }
            super.read(offset, dst);
        }
    }

    @Test
    void aThreadPoolCopiesAtNormalPriorityUntilReadyAndAtTheLowestAfter() throws Exception {
        int g = JobHarness.GRANULARITY;
        MemoryDevice inner = new MemoryDevice(16L * g);
        JobHarness.fillRandom(inner, 45);
        WatchedSource source = new WatchedSource(inner);
        MemoryDevice target = new MemoryDevice(16L * g);
        JobRuntime runtime = JobRuntime.threadPool(2);
        try {
            MirrorJob job = MirrorJob.create(source, target,
                    MirrorOptions.builder().granularity(g).bufSize(2L * g).maxCopyBytes(g).build(), runtime);
            CountDownLatch readyDelivered = new CountDownLatch(1);
            job.addListener(e -> {
                if (e instanceof MirrorEvent.Ready) {
                    readyDelivered.countDown();
                }
            });
            job.start();
            assertThat(job.awaitReady(Duration.ofSeconds(60))).isTrue();
            // Every copy before READY ran at the normal priority: the time to READY is what counts then.
            List<Integer> before = new ArrayList<>(source.priorities);
            assertThat(before).isNotEmpty().containsOnly(Thread.NORM_PRIORITY);

            // The runtime hears READY before the listeners do: by now every copier thread is lowered.
            assertThat(readyDelivered.await(60, TimeUnit.SECONDS)).isTrue();
            assertThat(source.threads.keySet()).allSatisfy(
                    t -> assertThat(t.getPriority()).as(t.getName()).isEqualTo(Thread.MIN_PRIORITY));

            // And a copy after READY (a guest write's chunk) runs at the lowest priority.
            int seen = source.priorities.size();
            job.guestDevice().write(3L * g, ByteBuffer.allocate(4096));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (source.priorities.size() == seen && System.nanoTime() < deadline) {
                Thread.sleep(1);
            }
            assertThat(source.priorities.subList(seen, source.priorities.size()))
                    .isNotEmpty().containsOnly(Thread.MIN_PRIORITY);
            job.complete();
            assertThat(job.awaitConclusion(Duration.ofSeconds(60))).isEqualTo(JobState.COMPLETED);
            JobHarness.assertSameContent(target, inner);
        } finally {
            runtime.shutdown();
        }
    }

    @Test
    void thePoolsThreadsAllGoToTheLowestPriorityAtReadyAndSoDoThoseMadeAfter() throws Exception {
        CopierThreads made = new CopierThreads();
        CountDownLatch release = new CountDownLatch(1);
        Runnable park = () -> {
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        };
        Thread running = made.newThread(park);
        running.start();
        Thread notStarted = made.newThread(park);
        try {
            assertThat(running.getName()).isEqualTo("handoff-copier-1");
            assertThat(running.isDaemon()).isTrue();
            assertThat(List.of(running.getPriority(), notStarted.getPriority())).containsOnly(Thread.NORM_PRIORITY);

            made.lower();
            notStarted.start();
            Thread after = made.newThread(park);
            assertThat(after.getName()).isEqualTo("handoff-copier-3");
            assertThat(List.of(running.getPriority(), notStarted.getPriority(), after.getPriority()))
                    .containsOnly(Thread.MIN_PRIORITY);
            assertThat(made.live()).containsExactly(running, notStarted, after);
        } finally {
            release.countDown();
        }
        running.join(TimeUnit.SECONDS.toMillis(60));
        notStarted.join(TimeUnit.SECONDS.toMillis(60));
        assertThat(made.live()).hasSize(1); // the one never started
    }

    /** A stepping runtime that counts {@link #jobReady} and notes whether the job's lock was held. */
    private static final class ReadyCountingRuntime implements JobRuntime {
        final SteppingRuntime steps = new SteppingRuntime();
        final AtomicInteger readyCalls = new AtomicInteger();
        volatile Object jobLock;
        volatile boolean calledUnderLock;

        @Override
        public void execute(Runnable task) {
            steps.execute(task);
        }

        @Override
        public void schedule(Runnable task, long delayNanos) {
            steps.schedule(task, delayNanos);
        }

        @Override
        public long nanoTime() {
            return steps.nanoTime();
        }

        @Override
        public void jobReady() {
            readyCalls.incrementAndGet();
            if (Thread.holdsLock(jobLock)) {
                calledUnderLock = true;
            }
        }
    }

    private static Object lockOf(MirrorJob job) throws ReflectiveOperationException {
        Field f = MirrorJob.class.getDeclaredField("lock");
        f.setAccessible(true);
        return f.get(job);
    }

    @Test
    void aRuntimeHearsReadyOnceBeforeTheListenersAndOutsideTheJobsLock() throws Exception {
        int g = JobHarness.GRANULARITY;
        MemoryDevice source = new MemoryDevice(JobHarness.SIZE);
        JobHarness.fillRandom(source, 46);
        ReadyCountingRuntime runtime = new ReadyCountingRuntime();
        MirrorJob job = MirrorJob.create(source, new MemoryDevice(JobHarness.SIZE),
                MirrorOptions.builder().granularity(g).bufSize(4L * g).maxCopyBytes(g).build(), runtime);
        runtime.jobLock = lockOf(job);
        List<Integer> callsWhenListenersHearReady = new CopyOnWriteArrayList<>();
        job.addListener(e -> {
            if (e instanceof MirrorEvent.Ready) {
                callsWhenListenersHearReady.add(runtime.readyCalls.get());
            }
        });
        job.start();
        runtime.steps.runAll();
        assertThat(job.state()).isEqualTo(JobState.READY);
        assertThat(runtime.readyCalls).hasValue(1);
        assertThat(callsWhenListenersHearReady).containsExactly(1);
        assertThat(runtime.calledUnderLock).isFalse();

        // Leaving READY and coming back, writes after READY and the drain do not call it again.
        job.pause();
        job.guestDevice().write(0, ByteBuffer.allocate(4096));
        job.resume();
        runtime.steps.runAll();
        assertThat(job.state()).isEqualTo(JobState.READY);
        job.complete();
        runtime.steps.runAll();
        assertThat(job.state()).isEqualTo(JobState.COMPLETED);
        assertThat(runtime.readyCalls).hasValue(1);
    }

    @Test
    void aJobThatEndsBeforeReadyNeverTellsItsRuntime() throws Exception {
        ReadyCountingRuntime runtime = new ReadyCountingRuntime();
        MemoryDevice source = new MemoryDevice(JobHarness.SIZE);
        JobHarness.fillRandom(source, 47);
        MirrorJob job = MirrorJob.create(source, new MemoryDevice(JobHarness.SIZE),
                MirrorOptions.builder().granularity(JobHarness.GRANULARITY).build(), runtime);
        runtime.jobLock = lockOf(job);
        job.start();
        job.cancel();
        runtime.steps.runAll();
        assertThat(job.state()).isEqualTo(JobState.CANCELLED);
        assertThat(runtime.readyCalls).hasValue(0);
    }
}
