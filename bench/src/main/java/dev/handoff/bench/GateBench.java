package dev.handoff.bench;

import dev.handoff.mirror.StandaloneGate;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * The guest gate's entry and exit alone, nothing between them: the kernel's {@code GuestGate}
 * through the test-jar's {@code StandaloneGate}, one gate shared by the benchmark's threads as a
 * job's guests share it, open throughout. {@code enterExit1} is one guest thread,
 * {@code enterExit2} two: with one shared word the two threads' RMWs contend for its cache line;
 * with a cell per thread they do not. What {@code FilterBench}'s {@code gate} path measures next
 * to a 4 KiB write, without the write (docs/BENCHMARKS.md, "The striped gate").
 *
 * <p>Run: {@code java -jar bench/target/benchmarks.jar GateBench}
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class GateBench {
    private final StandaloneGate gate = new StandaloneGate(() -> { });

    @Benchmark
    @Threads(1)
    public void enterExit1() {
        gate.enter();
        gate.exit();
    }

    @Benchmark
    @Threads(2)
    public void enterExit2() {
        gate.enter();
        gate.exit();
    }
}
