package dev.handoff.coordination;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/** Drives a {@link HolderMain} in its own JVM: commands on its stdin, every stdout line kept. */
final class HolderProcess implements AutoCloseable {
    static final Duration ANSWER = Duration.ofSeconds(60);

    private final String name;
    private final Process process;
    private final Writer stdin;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final List<String> all = new CopyOnWriteArrayList<>();

    HolderProcess(String name, String connect, String path, Path image, Duration session, long writeDelayMillis)
            throws IOException, InterruptedException {
        this.name = name;
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "-Xmx128m", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
                "-Djava.io.tmpdir=" + System.getProperty("java.io.tmpdir"),
                "-cp", System.getProperty("java.class.path"), HolderMain.class.getName(),
                connect, path, image.toString(), name, String.valueOf(session.toMillis()), String.valueOf(writeDelayMillis)));
        process = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        stdin = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
        Thread reader = new Thread(() -> {
            try (BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = out.readLine()) != null; ) {
                    all.add(line);
                    lines.add(line);
                }
            } catch (IOException ignored) {
                // the process died: expect() times out or sees EOF
            }
            lines.add("EOF");
        }, "holder-" + name + "-stdout");
        reader.setDaemon(true);
        reader.start();
        String ready = expect(l -> l.startsWith("ready") || l.equals("EOF"));
        if (!ready.startsWith("ready")) {
            throw new IllegalStateException("holder " + name + " did not start: " + all);
        }
    }

    /** Sends a command without waiting. */
    void send(String command) throws IOException {
        stdin.write(command + "\n");
        stdin.flush();
    }

    /** Sends a command and returns the next line that answers it (one starting with ok, ack, refused or error). */
    String call(String command) throws IOException, InterruptedException {
        send(command);
        return expect(l -> l.startsWith("ok") || l.startsWith("ack") || l.startsWith("refused") || l.startsWith("error"));
    }

    /** The next line (from now on) that matches, waiting up to {@link #ANSWER}. */
    String expect(Predicate<String> match) throws InterruptedException {
        long end = System.nanoTime() + ANSWER.toNanos();
        while (true) {
            String line = lines.poll(Math.max(1, end - System.nanoTime()), TimeUnit.NANOSECONDS);
            if (line == null) {
                throw new IllegalStateException("holder " + name + ": no expected line within " + ANSWER + "; saw " + all);
            }
            if (match.test(line)) {
                return line;
            }
            if (line.equals("EOF")) {
                throw new IllegalStateException("holder " + name + " exited; saw " + all);
            }
        }
    }

    /** Every line so far. */
    List<String> lines() {
        return List.copyOf(all);
    }

    long pid() {
        return process.pid();
    }

    /** SIGSTOP: the whole JVM stops, as in a long GC pause. */
    void pause() throws IOException, InterruptedException {
        signal("STOP");
    }

    /** SIGCONT. */
    void resume() throws IOException, InterruptedException {
        signal("CONT");
    }

    private void signal(String sig) throws IOException, InterruptedException {
        Process kill = new ProcessBuilder("kill", "-" + sig, String.valueOf(process.pid())).inheritIO().start();
        if (!kill.waitFor(10, TimeUnit.SECONDS) || kill.exitValue() != 0) {
            throw new IllegalStateException("kill -" + sig + " " + process.pid() + " failed");
        }
    }

    /** Sends quit and waits for the JVM to exit; returns every line. */
    List<String> quit() throws IOException, InterruptedException {
        send("quit");
        if (!process.waitFor(ANSWER.toSeconds(), TimeUnit.SECONDS)) {
            throw new IllegalStateException("holder " + name + " did not exit; saw " + all);
        }
        return lines();
    }

    @Override
    public void close() throws IOException, InterruptedException {
        if (process.isAlive()) {
            signal("CONT");
            process.destroyForcibly();
            process.waitFor(30, TimeUnit.SECONDS);
        }
    }

    /** The {@code t=} value of a line. */
    static long time(String line) {
        return stamp(line, "t");
    }

    /** The {@code key=} time stamp of a holder's line ({@code t=}, {@code from=}, ...). */
    static long stamp(String line, String key) {
        int i = line.indexOf(" " + key + "=");
        if (i < 0) {
            throw new IllegalArgumentException("no " + key + "= in: " + line);
        }
        int start = i + key.length() + 2;
        int end = line.indexOf(' ', start);
        String v = line.substring(start, end < 0 ? line.length() : end).replace(":", "");
        return Long.parseLong(v);
    }
}
