package dev.handoff.mirror;

import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The built-in runtimes: where tasks and timers run, and the parallelism the copier is told. */
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
}
