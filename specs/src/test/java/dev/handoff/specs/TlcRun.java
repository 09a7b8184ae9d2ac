package dev.handoff.specs;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One run of TLC on one model, in a forked JVM: {@code tlc2.TLC.main} ends with
 * {@code System.exit}, and in-process runs would leak state from one model to the next.
 *
 * @param model          the model that was checked
 * @param exitCode       TLC's exit code (0 success, 12 invariant, 13 property, ...),
 *                       or -1 when the run was killed at its timeout
 * @param verdict        {@code success}, the name of the violated invariant or action
 *                       property, {@link #TEMPORAL} for a violated temporal property
 *                       (TLC does not name it), or {@code error: ...}
 * @param distinctStates from TLC's last "distinct states found" line, or -1
 * @param depth          from TLC's "depth of the complete state graph" line, or -1
 * @param traceLength    states in the printed counterexample (0 when none)
 * @param seconds        wall-clock time of the run
 * @param command        the command line, for the report
 * @param output         everything TLC printed
 */
record TlcRun(Model model, int exitCode, String verdict, long distinctStates, long depth,
              int traceLength, double seconds, List<String> command, String output) {

    static final String TEMPORAL = "<temporal property>";

    private static final Pattern INVARIANT = Pattern.compile(
            "^Error: Invariant (\\w+) is violated\\.", Pattern.MULTILINE);
    private static final Pattern ACTION_PROPERTY = Pattern.compile(
            "^Error: Action property (\\w+) is violated\\.", Pattern.MULTILINE);
    private static final Pattern STATES = Pattern.compile(
            "^(\\d+) states generated, (\\d+) distinct states found", Pattern.MULTILINE);
    private static final Pattern DEPTH = Pattern.compile(
            "^The depth of the complete state graph search is (\\d+)\\.", Pattern.MULTILINE);
    private static final Pattern TRACE_STATE = Pattern.compile(
            "^State \\d+: ", Pattern.MULTILINE);

    /**
     * C1 only, for TLC runs of seconds (short broken models, the trace checks): C2's
     * compile time does not pay back there. Alone on the 2-core CI machine, a 2,169-state model
     * took 1.8 s instead of 2.5 s, a 16,685-state one 3.2 s instead of 5.1 s.
     */
    static final String QUICK_JIT = "-XX:TieredStopAtLevel=1";

    /** {@code -Dspecs.tlc.tiered=true}: every TLC run compiles with C2 too, none with C1 alone. */
    static boolean tieredEverywhere() {
        return Boolean.getBoolean("specs.tlc.tiered");
    }

    /**
     * Runs TLC on {@code model}, with its metadata and temporary files under
     * {@code workDir}, and waits at most the model's timeout; with {@code quickJit}, TLC's JVM
     * compiles with C1 only ({@link #QUICK_JIT}), otherwise with tiered compilation.
     */
    static TlcRun check(Model model, Path specsDir, Path tlatoolsJar, Path workDir,
                        String heap, Integer workersOverride, boolean quickJit)
            throws IOException, InterruptedException {
        Path runDir = workDir.resolve(model.name());
        Path tmp = Files.createDirectories(runDir.resolve("tmp"));
        Path log = runDir.resolve("tlc.out");
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:+UseParallelGC",
                quickJit ? QUICK_JIT : "-XX:+TieredCompilation",
                "-Xmx" + heap,
                // TLC unpacks the standard modules into the temporary directory: one per
                // run, so that parallel runs do not race on the same files.
                "-Djava.io.tmpdir=" + tmp.toAbsolutePath(),
                "-cp", tlatoolsJar.toAbsolutePath().toString(),
                "tlc2.TLC",
                "-workers", String.valueOf(workersOverride != null ? workersOverride : model.workers()),
                // A fixed fingerprint function: TLC picks one at random otherwise, and
                // the counterexample of a liveness violation then differs from run to run.
                "-fp", "1",
                // Liveness is checked once, on the complete graph, not at intervals of
                // wall-clock time: the same violation is found however fast the machine.
                "-lncheck", "final",
                "-metadir", runDir.resolve("states").toAbsolutePath().toString(),
                "-cleanup",
                "-config", model.config(),
                model.module()));
        long start = System.nanoTime();
        Process process = new ProcessBuilder(command)
                .directory(model.directory(specsDir).toFile())
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        int exitCode;
        if (process.waitFor(model.timeoutSeconds(), TimeUnit.SECONDS)) {
            exitCode = process.exitValue();
        } else {
            process.destroyForcibly().waitFor();
            exitCode = -1;
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        String output = Files.readString(log, StandardCharsets.UTF_8);
        return new TlcRun(model, exitCode, verdict(exitCode, output), last(STATES, output, 2),
                last(DEPTH, output, 1), (int) TRACE_STATE.matcher(output).results().count(),
                seconds, command, output);
    }

    private static String verdict(int exitCode, String output) {
        if (exitCode == -1) {
            return "error: timed out";
        }
        Matcher m = INVARIANT.matcher(output);
        if (m.find()) {
            return m.group(1);
        }
        m = ACTION_PROPERTY.matcher(output);
        if (m.find()) {
            return m.group(1);
        }
        if (output.contains("Error: Temporal properties were violated.")) {
            return TEMPORAL;
        }
        if (exitCode == 0 && output.contains("Model checking completed. No error has been found.")) {
            return Model.SUCCESS;
        }
        if (output.contains("Error: Deadlock reached.")) {
            return "error: deadlock";
        }
        return "error: exit code " + exitCode;
    }

    private static long last(Pattern pattern, String output, int group) {
        long value = -1;
        Matcher m = pattern.matcher(output);
        while (m.find()) {
            value = Long.parseLong(m.group(group));
        }
        return value;
    }
}
