package dev.handoff.nbd;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * QEMU's tools as real peers. A missing tool fails the test when the environment variable CI is
 * set (a CI machine must have them: Debian packages qemu-utils and qemu-system-common), and skips
 * it otherwise. Every process runs with a deadline, its output goes to a file (never a pipe that
 * could fill), and it is killed, with its descendants, when the test is done with it.
 */
final class QemuTools {
    /** Generous: these machines are small and often busy. */
    static final Duration TIMEOUT = Duration.ofSeconds(60);

    private QemuTools() {
    }

    /** The tool's path; fails under CI, skips otherwise, if it is not installed. */
    static String require(String tool) {
        String path = System.getenv().getOrDefault("PATH", "") + File.pathSeparator + "/usr/bin:/usr/sbin:/usr/local/bin";
        for (String dir : path.split(File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, tool))) {
                return Path.of(dir, tool).toString();
            }
        }
        String message = tool + " is not installed (Debian: apt-get install -y qemu-utils qemu-system-common)";
        if (System.getenv("CI") != null) {
            fail(message + "; CI is set, so this interop test must run");
        }
        Assumptions.abort(message);
        return null;
    }

    record Result(int exitCode, String output) {
        Result expectSuccess(String what) {
            if (exitCode != 0) {
                fail(what + " exited " + exitCode + ":\n" + output);
            }
            return this;
        }
    }

    /** Runs a command to its end (at most {@link #TIMEOUT}); the child is killed on the way out. */
    static Result run(Path workDir, String... command) throws IOException, InterruptedException {
        Path log = Files.createTempFile(workDir, "out", ".log");
        Process p = new ProcessBuilder(command).directory(workDir.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start();
        try {
            if (!p.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                fail(String.join(" ", command) + " did not finish within " + TIMEOUT + ":\n" + read(log));
            }
            return new Result(p.exitValue(), read(log));
        } finally {
            kill(p);
        }
    }

    /** A long-running child (a server); close() kills it and its descendants. */
    static final class Child implements AutoCloseable {
        final Process process;
        final Path log;
        final List<String> command;

        Child(Process process, Path log, List<String> command) {
            this.process = process;
            this.log = log;
            this.command = command;
        }

        String output() {
            return read(log);
        }

        /** Waits (bounded) for the child to exit by itself; returns its exit code. */
        int awaitExit() throws InterruptedException {
            if (!process.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                fail(String.join(" ", command) + " did not exit within " + TIMEOUT + ":\n" + output());
            }
            return process.exitValue();
        }

        @Override
        public void close() {
            kill(process);
        }
    }

    static Child start(Path workDir, String... command) throws IOException {
        Path log = Files.createTempFile(workDir, "child", ".log");
        Process p = new ProcessBuilder(command).directory(workDir.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start();
        return new Child(p, log, List.of(command));
    }

    /** Waits (bounded) until {@code path} exists, failing with the child's output if it does not. */
    static void awaitFile(Path path, Child child) throws InterruptedException {
        long end = System.nanoTime() + TIMEOUT.toNanos();
        while (!Files.exists(path)) {
            if (!child.process.isAlive()) {
                fail(child.command + " exited " + child.process.exitValue() + " before creating " + path + ":\n"
                        + child.output());
            }
            if (System.nanoTime() > end) {
                fail(path + " did not appear within " + TIMEOUT + ":\n" + child.output());
            }
            Thread.sleep(20);
        }
    }

    static void kill(Process p) {
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
        try {
            p.waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static String read(Path log) {
        try {
            return Files.readString(log, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(no output: " + e + ")";
        }
    }
}
