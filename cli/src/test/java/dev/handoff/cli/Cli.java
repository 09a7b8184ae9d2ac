package dev.handoff.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Runs the shaded {@code handoff.jar} (built in the package phase; its path comes from the
 * {@code handoff.jar} system property set by Failsafe) as a subprocess, exactly as users run it.
 */
final class Cli {
    static final long TIMEOUT_SECONDS = 90;

    private Cli() {
    }

    static Path jar() {
        String jar = System.getProperty("handoff.jar");
        if (jar == null || !Files.isRegularFile(Path.of(jar))) {
            throw new IllegalStateException("system property handoff.jar must name the shaded jar (mvn verify sets it), got "
                    + jar);
        }
        return Path.of(jar);
    }

    static List<String> command(String... args) {
        return command(List.of(), args);
    }

    /** The command line with extra JVM options (a small heap, say) before {@code -jar}. */
    static List<String> command(List<String> jvmOptions, String... args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-Djava.io.tmpdir=" + System.getProperty("java.io.tmpdir")));
        cmd.addAll(jvmOptions);
        cmd.add("-jar");
        cmd.add(jar().toString());
        Collections.addAll(cmd, args);
        return cmd;
    }

    /** The outcome of a finished run. */
    record Result(int exit, String stdout, String stderr) {
        List<String> errLines() {
            return stderr.lines().filter(l -> !l.isBlank()).toList();
        }

        @Override
        public String toString() {
            return "exit " + exit + "\n--- stdout\n" + stdout + "--- stderr\n" + stderr;
        }
    }

    /** Runs to completion with stdin closed. */
    static Result run(Path dir, String... args) throws IOException, InterruptedException {
        Running r = start(dir, args);
        r.closeStdin();
        return r.waitFor();
    }

    static Running start(Path dir, String... args) throws IOException {
        return start(dir, List.of(), args);
    }

    /** Runs to completion with stdin closed, with extra JVM options. */
    static Result runWithJvm(Path dir, List<String> jvmOptions, String... args) throws IOException, InterruptedException {
        Running r = start(dir, jvmOptions, args);
        r.closeStdin();
        return r.waitFor();
    }

    static Running start(Path dir, List<String> jvmOptions, String... args) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command(jvmOptions, args)).directory(dir.toFile());
        pb.environment().remove("COLUMNS");
        return new Running(pb.start());
    }

    /** A running CLI: stdout lines as they come, stderr collected, stdin writable. */
    static final class Running implements AutoCloseable {
        final Process process;
        private final Writer stdin;
        private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        private final StringBuffer out = new StringBuffer();
        private final StringBuffer err = new StringBuffer();
        private final Thread outReader;
        private final Thread errReader;

        Running(Process process) {
            this.process = process;
            this.stdin = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
            outReader = pump(new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8)), out, true);
            errReader = pump(new BufferedReader(new InputStreamReader(process.getErrorStream(), StandardCharsets.UTF_8)), err, false);
        }

        private Thread pump(BufferedReader reader, StringBuffer sink, boolean queue) {
            Thread t = new Thread(() -> {
                try (reader) {
                    for (String line; (line = reader.readLine()) != null; ) {
                        sink.append(line).append('\n');
                        if (queue) {
                            lines.add(line);
                        }
                    }
                } catch (IOException ignored) {
                    // process gone
                }
                if (queue) {
                    lines.add("<EOF>");
                }
            });
            t.setDaemon(true);
            t.start();
            return t;
        }

        long pid() {
            return process.pid();
        }

        /** The next stdout line (or "<EOF>"); fails after the timeout. */
        String nextLine() throws InterruptedException {
            String l = lines.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS);
            if (l == null) {
                throw new AssertionError("no output within " + TIMEOUT_SECONDS + " s; stderr so far: " + err);
            }
            return l;
        }

        /** Waits for a stdout line containing {@code text} and returns it. */
        String awaitLine(String text) throws InterruptedException {
            while (true) {
                String l = nextLine();
                if (l.contains(text)) {
                    return l;
                }
                if (l.equals("<EOF>")) {
                    throw new AssertionError("ended without a line containing '" + text + "'; stdout: " + out + " stderr: " + err);
                }
            }
        }

        String send(String line) throws IOException, InterruptedException {
            stdin.write(line + "\n");
            stdin.flush();
            return nextLine();
        }

        void closeStdin() throws IOException {
            stdin.close();
        }

        void signal(String name) throws IOException, InterruptedException {
            Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(pid())).inheritIO().start();
            if (kill.waitFor() != 0) {
                throw new AssertionError("kill -" + name + " failed");
            }
        }

        Result waitFor() throws InterruptedException {
            if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new AssertionError("handoff did not exit within " + TIMEOUT_SECONDS + " s; stdout: " + out + " stderr: " + err);
            }
            outReader.join(10_000);
            errReader.join(10_000);
            return new Result(process.exitValue(), out.toString(), err.toString());
        }

        String stdoutSoFar() {
            return out.toString();
        }

        String stderrSoFar() {
            return err.toString();
        }

        @Override
        public void close() {
            if (process.isAlive()) {
                process.destroyForcibly();
            }
        }
    }
}
