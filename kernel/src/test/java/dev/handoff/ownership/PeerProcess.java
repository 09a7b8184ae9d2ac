package dev.handoff.ownership;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** Drives an {@link OwnershipPeer} in a second JVM, started with this JVM's java and class path. */
final class PeerProcess implements AutoCloseable {
    /**
     * This JVM's class path, with the kernel's classes and tests where they are: Surefire runs the
     * kernel's tests on the module path (the kernel is a named module, its tests patched into it),
     * and the peer takes them all on its class path.
     */
    private static String classPath() {
        java.util.LinkedHashSet<String> entries = new java.util.LinkedHashSet<>();
        for (String property : List.of("java.class.path", "jdk.module.path")) {
            String value = System.getProperty(property, "");
            for (String e : value.split(java.io.File.pathSeparator)) {
                if (!e.isEmpty()) {
                    entries.add(e);
                }
            }
        }
        for (Class<?> c : List.of(OwnedImage.class, OwnershipPeer.class)) {
            try {
                entries.add(Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString());
            } catch (java.net.URISyntaxException e) {
                throw new IllegalStateException(e);
            }
        }
        return String.join(java.io.File.pathSeparator, entries);
    }

    private static final long TIMEOUT_SECONDS = 30;

    private final Process process;
    private final Writer stdin;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();

    PeerProcess(Path image, String ownerId) throws IOException, InterruptedException {
        this(image, ownerId, List.of());
    }

    /** A peer started with extra JVM options (say, -Dhandoff.ownership.trace=LOG). */
    PeerProcess(Path image, String ownerId, List<String> jvmOptions) throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> command = new java.util.ArrayList<>(List.of(java, "-Xshare:auto", "-XX:TieredStopAtLevel=1"));
        command.addAll(jvmOptions);
        command.addAll(List.of("-cp", classPath(), OwnershipPeer.class.getName(),
                image.toString(), ownerId));
        process = new ProcessBuilder(command)
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        stdin = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
        Thread reader = new Thread(() -> {
            try (BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = out.readLine()) != null; ) {
                    lines.add(line);
                }
            } catch (IOException ignored) {
                // the process died: the next expect() times out or sees EOF
            }
            lines.add("EOF");
        }, "peer-stdout");
        reader.setDaemon(true);
        reader.start();
        String ready = next();
        if (!ready.startsWith("READY")) {
            throw new IllegalStateException("peer did not start: " + ready);
        }
    }

    /** Sends one command and returns the peer's answer line. */
    String send(String command) throws IOException, InterruptedException {
        stdin.write(command + "\n");
        stdin.flush();
        return next();
    }

    long pid() {
        return process.pid();
    }

    /** kill -9. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            throw new IllegalStateException("peer did not die");
        }
    }

    private String next() throws InterruptedException {
        String line = lines.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        if (line == null) {
            throw new IllegalStateException("peer did not answer within " + TIMEOUT_SECONDS + " s");
        }
        return line;
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            try {
                kill();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
