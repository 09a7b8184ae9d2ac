package dev.handoff.bench.compare;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A child process of the comparison. Its stdout and stderr (merged) are read as they come by a
 * thread that copies them to a log file and stamps each line with the local
 * {@link System#nanoTime()} of its arrival, so the comparison can time a child's messages on the
 * same clock as everything else. Every child is registered until it has exited, and a shutdown
 * hook kills those still alive, so an interrupted run leaves no process behind.
 */
final class Child implements AutoCloseable {
    private static final Set<Child> LIVE = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(Child::killAll, "compare-children"));
    }

    /** A line of output, when it arrived, and the CPU time the process had used by then (NaN if unknown). */
    record Line(String text, long arrivedNanos, double cpuSeconds) {
    }

    private final String name;
    private final Process process;
    private final Path log;
    private final List<Line> lines = new ArrayList<>(); // guarded by itself
    private final Thread pump;

    private Child(String name, Process process, Path log) throws IOException {
        this.name = name;
        this.process = process;
        this.log = log;
        Writer file = Files.newBufferedWriter(log, StandardCharsets.UTF_8);
        this.pump = new Thread(() -> pump(file), "output-" + name);
        pump.setDaemon(true);
        pump.start();
    }

    /** Starts {@code command}; its output goes to {@code log}. */
    static Child start(String name, List<String> command, Path log) throws IOException {
        return start(name, command, log, Map.of());
    }

    /** As above, with {@code environment} added to this process's environment. */
    static Child start(String name, List<String> command, Path log, Map<String, String> environment)
            throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().putAll(environment);
        Child c = new Child(name, pb.start(), log);
        LIVE.add(c);
        return c;
    }

    private void pump(Writer file) {
        try (file; BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                long now = System.nanoTime();
                double cpu = cpuSeconds();
                synchronized (lines) {
                    lines.add(new Line(line, now, cpu));
                    lines.notifyAll();
                }
                file.write(line);
                file.write('\n');
            }
        } catch (IOException e) {
            // the process went away; what was read is kept
        }
        synchronized (lines) {
            lines.notifyAll();
        }
    }

    /** The first line matching {@code p} (already read, or arriving within {@code timeout}). */
    Line awaitLine(Predicate<String> p, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (lines) {
            while (true) {
                for (Line l : lines) {
                    if (p.test(l.text())) {
                        return l;
                    }
                }
                if (!pump.isAlive()) {
                    throw new IOException(name + " ended its output without the line expected:\n" + output());
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new IOException(name + " did not print the line expected within " + timeout.toSeconds()
                            + " s:\n" + output());
                }
                TimeUnit.NANOSECONDS.timedWait(lines, left);
            }
        }
    }

    /** Every line read so far. */
    List<Line> lines() {
        synchronized (lines) {
            return List.copyOf(lines);
        }
    }

    /** Runs {@code command} to completion (at most {@code timeout}); returns its exit code. */
    static int run(String name, List<String> command, Path log, Duration timeout) throws IOException, InterruptedException {
        return run(name, command, log, Map.of(), timeout);
    }

    /** As above, with {@code environment} added to this process's environment. */
    static int run(String name, List<String> command, Path log, Map<String, String> environment, Duration timeout)
            throws IOException, InterruptedException {
        try (Child c = start(name, command, log, environment)) {
            return c.waitFor(timeout);
        }
    }

    /** Waits for the exit (and the end of its output); kills the process and fails after {@code timeout}. */
    int waitFor(Duration timeout) throws InterruptedException, IOException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            close();
            throw new IOException(name + " did not exit within " + timeout.toSeconds() + " s; killed:\n" + output());
        }
        pump.join(10_000);
        LIVE.remove(this);
        return process.exitValue();
    }

    /** CPU time (user + system, all threads) used so far; NaN once the process is gone. */
    double cpuSeconds() {
        return process.info().totalCpuDuration().map(d -> d.toNanos() / 1e9).orElse(Double.NaN);
    }

    boolean isAlive() {
        return process.isAlive();
    }

    long pid() {
        return process.pid();
    }

    Path log() {
        return log;
    }

    /** The output so far, one string. */
    String output() {
        StringBuilder b = new StringBuilder();
        for (Line l : lines()) {
            b.append(l.text()).append('\n');
        }
        return b.toString();
    }

    /** Waits until a line starting with {@code prefix} arrives; fails if the output ends first or time runs out. */
    Line awaitOutput(String prefix, Duration timeout) throws IOException, InterruptedException {
        return awaitLine(l -> l.startsWith(prefix), timeout);
    }

    /** Kills the process (and its descendants) if it is still running. */
    @Override
    public void close() {
        if (process.isAlive()) {
            process.descendants().forEach(ProcessHandle::destroy);
            process.destroy();
            try {
                if (!process.waitFor(5, TimeUnit.SECONDS)) {
                    process.descendants().forEach(ProcessHandle::destroyForcibly);
                    process.destroyForcibly();
                    process.waitFor(5, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
        LIVE.remove(this);
    }

    private static void killAll() {
        for (Child c : LIVE) {
            c.close();
        }
    }

    @Override
    public String toString() {
        return name + "[pid " + process.pid() + "]";
    }
}
