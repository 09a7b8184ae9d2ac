package dev.handoff.cli;

import dev.handoff.ownership.HandoffToken;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * The demo's second process: {@code handoff owner accept IMAGE --token T} in a child JVM on this
 * one's class path, driven line by line through its stdin and stdout. Every wait is bounded.
 */
final class ChildHolder implements AutoCloseable {
    private static final long TIMEOUT_SECONDS = 30;
    private final Process process;
    private final Writer stdin;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();

    private ChildHolder(Process process) {
        this.process = process;
        this.stdin = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    lines.add(line);
                }
            } catch (IOException ignored) {
                // the process ended
            }
            lines.add("EOF");
        }, "demo-child-stdout");
        reader.setDaemon(true);
        reader.start();
    }

    /** Starts the child accepting {@code image}'s handoff with {@code token} as owner {@code ownerId}. */
    static ChildHolder accept(Path image, HandoffToken token, String ownerId) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String classpath = Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
                .map(p -> Path.of(p).toAbsolutePath().toString()).collect(Collectors.joining(File.pathSeparator));
        List<String> command = List.of(java, "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-Xmx64m", "-cp", classpath,
                Main.class.getName(), "owner", "accept", image.toString(), "--token",
                token.epoch() + ":" + token.ownerId(), "--owner", ownerId);
        return new ChildHolder(new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start());
    }

    long pid() {
        return process.pid();
    }

    /** The child's next line of output ("EOF" once it ended). */
    String next() throws InterruptedException {
        String line = lines.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        if (line == null) {
            throw new IllegalStateException("the child process did not answer within " + TIMEOUT_SECONDS + " s");
        }
        return line;
    }

    /** Sends one holder command and returns the child's answer. */
    String send(String command) throws IOException, InterruptedException {
        stdin.write(command + "\n");
        stdin.flush();
        return next();
    }

    /** The child's exit code, or -1 if it did not exit in time (it is then killed). */
    int waitFor() throws InterruptedException {
        if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            return -1;
        }
        return process.exitValue();
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroyForcibly();
        }
    }
}
