import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Runs the broken-variant catalog (mutants/catalog.json; the format is in mutants/README.md).
 *
 * <p>Copies the work tree (tracked and untracked, not ignored files) to a scratch directory and
 * builds it once, offline. Then, for each variant: copies the kernel's production sources, applies
 * the variant's patch ({@code git apply --check} first: a patch that no longer applies, or no
 * longer compiles, is STALE), compiles them, and runs each of the variant's checks with the
 * patched classes first on the class path. A variant is CAUGHT when every one of its checks fails;
 * otherwise it SURVIVED. Exits 0 only if every variant is caught.
 *
 * <p>Usage (from the repository root): {@code java mutants/RunCatalog.java [--only id,id] [--keep]}
 */
public final class RunCatalog {
    /** jcstress flags for a catalog check: one short fork per JVM mode, enough for every harness here. */
    static final List<String> JCSTRESS_FLAGS = List.of("-f", "1", "-fsm", "1", "-iters", "1", "-time", "200",
            "-sc", "false", "-jvmArgs", "-Xmx256m");
    static final long CHECK_TIMEOUT_MINUTES = 10;

    enum Verdict { CAUGHT, SURVIVED, STALE, ERROR }

    record Check(String kind, String module, String select, String test, List<String> args) {
        String describe() {
            return kind.equals("jcstress") ? "jcstress -t " + test : "junit " + module + " " + select;
        }
    }

    record Variant(String id, Path patch, String invariant, List<Check> checks) {
    }

    record Result(Variant variant, Verdict verdict, String detail, long millis) {
    }

    public static void main(String[] args) throws Exception {
        Path root = Path.of("").toAbsolutePath();
        Set<String> only = new LinkedHashSet<>();
        boolean keep = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--only" -> only.addAll(Arrays.asList(args[++i].split(",")));
                case "--keep" -> keep = true;
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                        + "; usage: java mutants/RunCatalog.java [--only id,id] [--keep]");
            }
        }
        List<Variant> variants = load(root.resolve("mutants/catalog.json"));
        if (!only.isEmpty()) {
            variants = variants.stream().filter(v -> only.contains(v.id())).collect(Collectors.toList());
        }
        Path scratch = Files.createTempDirectory("handoff-mutants-");
        long start = System.nanoTime();
        System.out.println("catalog: " + variants.size() + " variants; scratch " + scratch);

        Path base = scratch.resolve("base");
        copyWorkTree(root, base);
        Set<String> modules = new LinkedHashSet<>(List.of("kernel", "stress"));
        for (Variant v : variants) {
            for (Check c : v.checks()) {
                if (c.kind().equals("junit")) {
                    modules.add(c.module());
                }
            }
        }
        long t = System.nanoTime();
        int built = run(base, base.resolve("build.log"), List.of("mvn", "-o", "-q", "-B", "-pl", String.join(",", modules),
                "-am", "package", "-DskipTests", "-Djcstress.skip=true", "dependency:build-classpath",
                "-Dmdep.includeScope=test", "-Dmdep.outputFile=target/test-classpath.txt"));
        if (built != 0) {
            System.out.println("the unpatched tree does not build; see " + base.resolve("build.log"));
            System.exit(2);
        }
        System.out.printf("built the unpatched tree in %d s%n", seconds(t));

        List<Result> results = new ArrayList<>();
        for (Variant v : variants) {
            Result r = runVariant(base, scratch.resolve("variants").resolve(v.id()), v);
            results.add(r);
            System.out.printf("%-34s %-8s %4d s  %s%n", v.id(), r.verdict(), r.millis() / 1000, r.detail());
        }

        long caught = results.stream().filter(r -> r.verdict() == Verdict.CAUGHT).count();
        System.out.println();
        System.out.printf("%d of %d variants caught (%d survived, %d stale, %d errors) in %d s%n", caught, results.size(),
                count(results, Verdict.SURVIVED), count(results, Verdict.STALE), count(results, Verdict.ERROR),
                seconds(start));
        if (!keep && caught == results.size()) {
            deleteTree(scratch);
        } else {
            System.out.println("logs kept in " + scratch);
        }
        System.exit(caught == results.size() ? 0 : 1);
    }

    static Result runVariant(Path base, Path dir, Variant v) throws Exception {
        long t = System.nanoTime();
        Files.createDirectories(dir);
        copyTree(base.resolve("kernel/src/main"), dir.resolve("kernel/src/main"));
        List<String> applyCheck = List.of("git", "apply", "--check", v.patch().toString());
        if (run(dir, dir.resolve("apply.log"), applyCheck) != 0) {
            return new Result(v, Verdict.STALE, "patch no longer applies: " + firstLine(dir.resolve("apply.log")), millis(t));
        }
        run(dir, dir.resolve("apply.log"), List.of("git", "apply", v.patch().toString()));
        Path classes = dir.resolve("classes");
        List<String> javac = new ArrayList<>(List.of(tool("javac"), "-nowarn", "-Xlint:none", "--release", "17", "-d",
                classes.toString()));
        try (Stream<Path> s = Files.walk(dir.resolve("kernel/src/main/java"))) {
            s.filter(p -> p.toString().endsWith(".java")).forEach(p -> javac.add(p.toString()));
        }
        if (run(dir, dir.resolve("javac.log"), javac) != 0) {
            return new Result(v, Verdict.STALE, "patched kernel does not compile: see " + dir.resolve("javac.log"), millis(t));
        }
        List<String> survived = new ArrayList<>();
        List<String> errors = new ArrayList<>();
        int n = 0;
        for (Check c : v.checks()) {
            Path log = dir.resolve("check-" + (++n) + ".log");
            int code;
            if (c.kind().equals("jcstress")) {
                List<String> cmd = new ArrayList<>(List.of(tool("java"), "-Djava.io.tmpdir=" + dir, "-cp",
                        classes + ":" + base.resolve("stress/target/jcstress.jar"), "org.openjdk.jcstress.Main",
                        "-t", "\\." + c.test() + "$", "-r", dir.resolve("jcstress-report-" + n).toString()));
                cmd.addAll(c.args() != null ? c.args() : JCSTRESS_FLAGS);
                code = run(dir, log, cmd);
                String out = Files.readString(log);
                if (code != 0 && out.contains("[FAILED]")) {
                    continue; // caught: a FORBIDDEN outcome was observed
                }
                if (code == 0) {
                    survived.add(c.describe());
                } else {
                    errors.add(c.describe() + " exited " + code + " without a failed test (" + log + ")");
                }
            } else if (c.kind().equals("junit")) {
                String selector = c.select().contains("#") ? "--select-method=" + c.select() : "--select-class=" + c.select();
                code = run(dir, log, List.of(tool("java"), "-Djava.io.tmpdir=" + dir, "-cp", junitClasspath(base, classes, c.module()),
                        "org.junit.platform.console.ConsoleLauncher", "execute", selector, "--fail-if-no-tests",
                        "--disable-banner", "--disable-ansi-colors", "--details=summary"));
                if (code == 1) {
                    continue; // caught: the test failed
                }
                if (code == 0) {
                    survived.add(c.describe());
                } else {
                    errors.add(c.describe() + " exited " + code + " (" + log + ")");
                }
            } else {
                errors.add("unknown check kind " + c.kind());
            }
        }
        if (!errors.isEmpty()) {
            return new Result(v, Verdict.ERROR, String.join("; ", errors), millis(t));
        }
        if (!survived.isEmpty()) {
            return new Result(v, Verdict.SURVIVED, "passed on the broken variant: " + String.join(", ", survived), millis(t));
        }
        return new Result(v, Verdict.CAUGHT, v.checks().stream().map(Check::describe).collect(Collectors.joining(", ")),
                millis(t));
    }

    /** The patched kernel first, then the module's own classes, then its test dependencies. */
    static String junitClasspath(Path base, Path kernelClasses, String module) throws IOException {
        List<String> cp = new ArrayList<>();
        cp.add(kernelClasses.toString());
        cp.add(base.resolve(module).resolve("target/test-classes").toString());
        if (!module.equals("kernel")) {
            cp.add(base.resolve(module).resolve("target/classes").toString());
        }
        Set<String> deps = new LinkedHashSet<>();
        for (String m : List.of(module, "stress")) { // stress's list brings the console launcher
            Path f = base.resolve(m).resolve("target/test-classpath.txt");
            if (Files.exists(f)) {
                for (String e : Files.readString(f).trim().split(":")) {
                    if (!e.isEmpty() && !e.endsWith("kernel/target/classes")) {
                        deps.add(e);
                    }
                }
            }
        }
        cp.addAll(deps);
        return String.join(":", cp);
    }

    /* ---- Processes and files ---- */

    static int run(Path dir, Path log, List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start();
        if (!p.waitFor(CHECK_TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            Files.writeString(log, "\ntimed out after " + CHECK_TIMEOUT_MINUTES + " minutes\n",
                    java.nio.file.StandardOpenOption.APPEND);
            return 124;
        }
        return p.exitValue();
    }

    static String tool(String name) {
        return Path.of(System.getProperty("java.home"), "bin", name).toString();
    }

    static void copyWorkTree(Path root, Path to) throws IOException, InterruptedException {
        Path list = Files.createTempFile("handoff-files-", ".txt");
        try {
            if (run(root, list, List.of("git", "ls-files", "-co", "--exclude-standard")) != 0) {
                throw new IOException("git ls-files failed: " + Files.readString(list));
            }
            for (String f : Files.readAllLines(list, StandardCharsets.UTF_8)) {
                Path src = root.resolve(f);
                if (Files.isRegularFile(src)) {
                    Path dst = to.resolve(f);
                    Files.createDirectories(dst.getParent());
                    Files.copy(src, dst, StandardCopyOption.COPY_ATTRIBUTES);
                }
            }
        } finally {
            Files.deleteIfExists(list);
        }
    }

    static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> s = Files.walk(from)) {
            s.forEach(p -> {
                try {
                    Path dst = to.resolve(from.relativize(p).toString());
                    if (Files.isDirectory(p)) {
                        Files.createDirectories(dst);
                    } else {
                        Files.copy(p, dst, StandardCopyOption.REPLACE_EXISTING);
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        }
    }

    static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted((a, b) -> b.getNameCount() - a.getNameCount()).collect(Collectors.toList())) {
                Files.deleteIfExists(p);
            }
        }
    }

    static String firstLine(Path log) throws IOException {
        return Files.readAllLines(log).stream().findFirst().orElse("");
    }

    static long seconds(long startNanos) {
        return (System.nanoTime() - startNanos) / 1_000_000_000L;
    }

    static long millis(long startNanos) {
        return (System.nanoTime() - startNanos) / 1_000_000L;
    }

    static long count(List<Result> results, Verdict v) {
        return results.stream().filter(r -> r.verdict() == v).count();
    }

    /* ---- The catalog ---- */

    @SuppressWarnings("unchecked")
    static List<Variant> load(Path catalog) throws IOException {
        Map<String, Object> doc = (Map<String, Object>) new Json(Files.readString(catalog)).value();
        List<Variant> variants = new ArrayList<>();
        Set<String> ids = new LinkedHashSet<>();
        for (Object o : (List<Object>) doc.get("variants")) {
            Map<String, Object> m = (Map<String, Object>) o;
            String id = (String) m.get("id");
            if (!ids.add(id)) {
                throw new IllegalArgumentException("duplicate variant id " + id);
            }
            List<Check> checks = new ArrayList<>();
            for (Object c : (List<Object>) m.get("checks")) {
                Map<String, Object> cm = (Map<String, Object>) c;
                List<String> args = cm.containsKey("args") ? ((List<Object>) cm.get("args")).stream()
                        .map(String::valueOf).collect(Collectors.toList()) : null;
                checks.add(new Check((String) cm.get("kind"), (String) cm.getOrDefault("module", "stress"),
                        (String) cm.get("select"), (String) cm.get("test"), args));
            }
            if (checks.isEmpty()) {
                throw new IllegalArgumentException(id + ": a variant needs at least one check");
            }
            variants.add(new Variant(id, catalog.getParent().resolve((String) m.get("patch")).toAbsolutePath(),
                    (String) m.get("invariant"), checks));
        }
        return variants;
    }

    /** Just enough JSON for the catalog: objects, arrays, strings, numbers, booleans, null. */
    static final class Json {
        private final String s;
        private int i;

        Json(String s) {
            this.s = s;
        }

        Object value() {
            skip();
            char c = s.charAt(i);
            if (c == '{') {
                Map<String, Object> m = new LinkedHashMap<>();
                i++;
                skip();
                if (s.charAt(i) == '}') {
                    i++;
                    return m;
                }
                while (true) {
                    skip();
                    String k = string();
                    skip();
                    expect(':');
                    m.put(k, value());
                    skip();
                    if (s.charAt(i) == ',') {
                        i++;
                    } else {
                        expect('}');
                        return m;
                    }
                }
            }
            if (c == '[') {
                List<Object> l = new ArrayList<>();
                i++;
                skip();
                if (s.charAt(i) == ']') {
                    i++;
                    return l;
                }
                while (true) {
                    l.add(value());
                    skip();
                    if (s.charAt(i) == ',') {
                        i++;
                    } else {
                        expect(']');
                        return l;
                    }
                }
            }
            if (c == '"') {
                return string();
            }
            int start = i;
            while (i < s.length() && ",}] \n\r\t".indexOf(s.charAt(i)) < 0) {
                i++;
            }
            String word = s.substring(start, i);
            return switch (word) {
                case "true" -> Boolean.TRUE;
                case "false" -> Boolean.FALSE;
                case "null" -> null;
                default -> Double.valueOf(word);
            };
        }

        private String string() {
            expect('"');
            StringBuilder b = new StringBuilder();
            while (s.charAt(i) != '"') {
                char c = s.charAt(i++);
                if (c == '\\') {
                    char e = s.charAt(i++);
                    switch (e) {
                        case 'n' -> b.append('\n');
                        case 't' -> b.append('\t');
                        case 'u' -> {
                            b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                            i += 4;
                        }
                        default -> b.append(e);
                    }
                } else {
                    b.append(c);
                }
            }
            i++;
            return b.toString();
        }

        private void expect(char c) {
            if (s.charAt(i) != c) {
                throw new IllegalArgumentException("catalog: expected '" + c + "' at offset " + i);
            }
            i++;
        }

        private void skip() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                i++;
            }
        }
    }
}
