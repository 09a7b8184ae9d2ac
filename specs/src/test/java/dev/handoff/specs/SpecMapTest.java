package dev.handoff.specs;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The spec-to-code map cannot drift (specs/README.md). Each action of {@code MirrorCopy.tla},
 * {@code Ownership.tla}, {@code PersistentBitmap.tla}, {@code GuestGate.tla} (and {@code LeasedOwnership.tla}, of the
 * coordination module) names the Java it models in its comment with tags
 * <pre>(* @java Class.method:FIRST-LAST "anchor" *)</pre>
 * and this test fails when a named class or method no longer exists in the kernel's sources, when
 * the anchor (a piece of the statement the action is) is no longer in that method, or when the
 * line range is no longer the anchor's statement; when an action of the spec's next-state relation
 * has no tag (environment actions, which are no code, say {@code @env}; a step only a broken
 * variant takes says {@code @bug-only}); and when the map in
 * specs/README.md differs from the tags, or names a {@code Class.method} that does not exist.
 *
 * <p>After a kernel change that moves lines: {@code mvn -pl specs test -Dtest=SpecMapTest
 * -Dspecs.map.update=true} rewrites the line ranges and the README's map from the anchors (it
 * still fails on a missing method or anchor: those need a person).
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class SpecMapTest {
    private static final Path SPECS = Path.of(System.getProperty("specs.dir", ".")).toAbsolutePath();
    private static final Path KERNEL = SPECS.resolveSibling("kernel").resolve("src/main/java");
    /** LeasedOwnership.tla models the coordination module's code. */
    private static final Path COORDINATION = SPECS.resolveSibling("coordination").resolve("src/main/java");
    private static final boolean UPDATE = Boolean.getBoolean("specs.map.update");
    private static final Pattern TAG = Pattern.compile(
            "@java (\\w+)\\.(\\w+):(\\d+)-(\\d+) \"((?:[^\"\\\\]|\\\\.)*)\"");
    private static final Pattern DEF = Pattern.compile("^(\\w+)(\\([^)]*\\))? ==", Pattern.MULTILINE);
    /** The definitions whose disjuncts are the spec's actions. */
    static final Map<String, List<String>> NEXT_CHAIN = Map.of(
            "MirrorCopy", List.of("GuestSteps", "CopySteps", "Tasks", "Management", "Next"),
            "Ownership", List.of("Continue", "Start", "Next"),
            "PersistentBitmap", List.of("Next"),
            "GuestGate", List.of("Next"),
            "LeasedOwnership", List.of("Continue", "Start", "Next"));
    private static final Set<String> NOT_ACTIONS = Set.of("GuestSteps", "CopySteps", "Tasks", "Management",
            "Next", "Continue", "Start", "Pump", "Mgmt", "NewWrites", "Chunks", "Tokens");

    /** A tag: where in the spec, and what it names. */
    record Tag(String spec, String action, String cls, String method, int first, int last, String anchor) {
        String render(int f, int l) {
            return "@java " + cls + "." + method + ":" + f + "-" + l + " \"" + anchor.replace("\"", "\\\"") + "\"";
        }
    }

    @Test
    void everyActionNamesJavaThatExistsAtTheLinesItSays() throws IOException {
        List<String> problems = check(SPECS, KERNEL, UPDATE);
        problems.addAll(check(SPECS, COORDINATION, UPDATE, List.of("LeasedOwnership")));
        if (!problems.isEmpty()) {
            fail(problems.size() + " problem(s) in the spec-to-code map"
                    + (UPDATE ? "" : " (line moves: rerun with -Dspecs.map.update=true)") + ":\n  "
                    + String.join("\n  ", problems));
        }
    }

    /**
     * The problems of the map of the specs under {@code specs} (its {@code tla/} and README.md)
     * against the kernel sources under {@code kernel}; with {@code update}, rewrites the line
     * ranges and the README's map first, and reports only what needs a person.
     */
    static List<String> check(Path specs, Path kernel, boolean update) throws IOException {
        return check(specs, kernel, update, List.of("MirrorCopy", "Ownership", "PersistentBitmap", "GuestGate"));
    }

    /**
     * As {@link #check(Path, Path, boolean)} for the specs {@code specNames}, whose actions name
     * code under {@code kernel} (the kernel's specs) or the coordination module's sources
     * (LeasedOwnership); each has its own map in the README.
     */
    static List<String> check(Path specs, Path kernel, boolean update, List<String> specNames) throws IOException {
        List<String> problems = new ArrayList<>();
        Map<String, String> updatedSpecs = new LinkedHashMap<>();
        StringBuilder map = new StringBuilder();
        for (String spec : specNames) {
            Path file = specs.resolve("tla").resolve(spec).resolve(spec + ".tla");
            String text = Files.readString(file, StandardCharsets.UTF_8);
            Map<String, List<Tag>> tags = tagsByAction(spec, text);
            Set<String> env = envActions(text);
            for (String action : actions(spec, text)) {
                if (!tags.containsKey(action) && !env.contains(action)) {
                    problems.add(spec + ": action " + action + " has no @java tag (or @env for an environment action)");
                }
            }
            String updated = text;
            map.append("\n### ").append(spec).append("\n\n| spec action | Java (lines) |\n|---|---|\n");
            for (Map.Entry<String, List<Tag>> e : tags.entrySet()) {
                List<String> cells = new ArrayList<>();
                for (Tag t : e.getValue()) {
                    int[] at = locate(kernel, t, problems);
                    if (at == null) {
                        cells.add("`" + t.cls() + "." + t.method() + "` (missing)");
                        continue;
                    }
                    if (at[0] != t.first() || at[1] != t.last()) {
                        if (!update) {
                            problems.add(spec + "." + t.action() + ": " + t.cls() + "." + t.method() + " \"" + t.anchor()
                                    + "\" is now at lines " + at[0] + "-" + at[1] + ", not " + t.first() + "-" + t.last());
                        }
                        updated = updated.replace(t.render(t.first(), t.last()), t.render(at[0], at[1]));
                    }
                    cells.add("`" + t.cls() + "." + t.method() + "` " + at[0] + "-" + at[1]);
                }
                map.append("| `").append(e.getKey()).append("` | ").append(String.join(", ", cells)).append(" |\n");
            }
            if (!updated.equals(text)) {
                updatedSpecs.put(file.toString(), updated);
            }
        }
        Path readme = specs.resolve("README.md");
        String readmeText = Files.readString(readme, StandardCharsets.UTF_8);
        // The kernel's specs and the coordination module's each have a map of their own in the README.
        boolean kernelMap = specNames.contains("MirrorCopy");
        String begin = kernelMap ? "<!-- spec-to-code map: generated by SpecMapTest -->\n"
                : "<!-- spec-to-code map of the coordination module: generated by SpecMapTest -->\n";
        String end = kernelMap ? "<!-- end of the spec-to-code map -->" : "<!-- end of the coordination module's map -->";
        int b = readmeText.indexOf(begin);
        int e = readmeText.indexOf(end);
        if (b < 0 || e < b) {
            problems.add("specs/README.md has no spec-to-code map between the markers " + begin.trim() + " and " + end);
        } else {
            String current = readmeText.substring(b + begin.length(), e);
            String wanted = map.toString().substring(1) + "\n";
            if (!current.equals(wanted)) {
                if (update) {
                    Files.writeString(readme, readmeText.substring(0, b + begin.length()) + wanted + readmeText.substring(e),
                            StandardCharsets.UTF_8);
                } else {
                    problems.add("specs/README.md's spec-to-code map differs from the specs' tags");
                }
            }
        }
        if (update) {
            for (Map.Entry<String, String> u : updatedSpecs.entrySet()) {
                Files.writeString(Path.of(u.getKey()), u.getValue(), StandardCharsets.UTF_8);
            }
        }
        return problems;
    }

    /**
     * Every {@code Class.method} that specs/README.md names exists: a class of any module's main or
     * test sources, and a method declared in it (names that are no class of this project are left
     * alone).
     */
    @Test
    void everyClassMethodTheSpecsReadmeNamesExists() throws IOException {
        String readme = Files.readString(SPECS.resolve("README.md"), StandardCharsets.UTF_8);
        Matcher m = Pattern.compile("`(\\w+)\\.(\\w+)`").matcher(readme);
        Set<String> missing = new TreeSet<>();
        while (m.find()) {
            String cls = m.group(1);
            String method = m.group(2);
            if (!Character.isUpperCase(cls.charAt(0)) || !Character.isLowerCase(method.charAt(0))) {
                continue;
            }
            Path source = anySource(cls);
            if (source != null && methodSpans(Files.readString(source, StandardCharsets.UTF_8), method).isEmpty()) {
                missing.add(cls + "." + method);
            }
        }
        assertTrue(missing.isEmpty(), "specs/README.md names methods that do not exist: " + missing);
    }

    /* ---- The check can fail: run on a copy of the specs and the kernel, each broken one way ---- */

    @Test
    void aStatementThatMovedIsReportedAtItsNewLinesAndTheUpdateRewritesThem(@TempDir Path tmp) throws IOException {
        Path[] copy = copyOfSpecsAndKernel(tmp);
        Path filter = source(copy[1], "MirrorFilter");
        Files.writeString(filter, "// one more line\n" + Files.readString(filter, StandardCharsets.UTF_8));
        List<String> problems = check(copy[0], copy[1], false);
        assertThat(problems).anyMatch(p -> p.startsWith("MirrorCopy.WbClear: MirrorFilter.writeBlocking")
                && p.contains("is now at lines"));
        assertThat(problems).contains("specs/README.md's spec-to-code map differs from the specs' tags");
        assertThat(check(copy[0], copy[1], true)).isEmpty();
        assertThat(check(copy[0], copy[1], false)).as("after the update").isEmpty();
    }

    @Test
    void aStatementThatIsGoneIsReported(@TempDir Path tmp) throws IOException {
        Path[] copy = copyOfSpecsAndKernel(tmp);
        Path filter = source(copy[1], "MirrorFilter");
        Files.writeString(filter, Files.readString(filter, StandardCharsets.UTF_8)
                .replace("cleared = bitmap.clearCovered(offset, length);", "cleared = false;"));
        assertThat(check(copy[0], copy[1], true)).anyMatch(p -> p.startsWith("MirrorCopy.WbClear:")
                && p.contains("is no longer in MirrorFilter.writeBlocking"));
    }

    @Test
    void anActionWithoutATagIsReported(@TempDir Path tmp) throws IOException {
        Path[] copy = copyOfSpecsAndKernel(tmp);
        Path spec = copy[0].resolve("tla/MirrorCopy/MirrorCopy.tla");
        Files.writeString(spec, Files.readString(spec, StandardCharsets.UTF_8)
                .replaceAll("\\(\\* @java MirrorFilter\\.writeBlocking:\\d+-\\d+ \"cleared = [^\\n]*\\n", "")
                .replaceAll("\\(\\* @java DirtyBitmap\\.clearCovered:[^\\n]*\\n", ""));
        assertThat(check(copy[0], copy[1], true)).contains("MirrorCopy: action WbClear has no @java tag (or @env for an"
                + " environment action)");
    }

    /** Copies of specs/ (tla/ and README.md) and of the kernel's main sources under {@code tmp}. */
    private static Path[] copyOfSpecsAndKernel(Path tmp) throws IOException {
        Path specs = tmp.resolve("specs");
        Path kernel = tmp.resolve("kernel");
        copyTree(SPECS.resolve("tla"), specs.resolve("tla"));
        Files.copy(SPECS.resolve("README.md"), specs.resolve("README.md"));
        copyTree(KERNEL, kernel);
        return new Path[] {specs, kernel};
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (Stream<Path> files = Files.walk(from)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Path t = to.resolve(from.relativize(f).toString());
                if (Files.isDirectory(f)) {
                    Files.createDirectories(t);
                } else {
                    Files.copy(f, t);
                }
            }
        }
    }

    private static Map<String, List<Tag>> tagsByAction(String spec, String text) {
        Map<String, List<Tag>> tags = new LinkedHashMap<>();
        List<String> pendingTags = new ArrayList<>();
        for (String line : text.split("\n", -1)) {
            if (line.startsWith("(*")) {
                Matcher t = TAG.matcher(line);
                while (t.find()) {
                    pendingTags.add(t.group(0));
                }
                continue;
            }
            Matcher d = DEF.matcher(line);
            if (d.find() && !pendingTags.isEmpty()) {
                for (String raw : pendingTags) {
                    Matcher t = TAG.matcher(raw);
                    t.find();
                    tags.computeIfAbsent(d.group(1), k -> new ArrayList<>()).add(new Tag(spec, d.group(1), t.group(1),
                            t.group(2), Integer.parseInt(t.group(3)), Integer.parseInt(t.group(4)),
                            t.group(5).replace("\\\"", "\"")));
                }
            }
            if (!line.isBlank() && !line.startsWith("RECURSIVE ")) {
                pendingTags.clear();
            }
        }
        return tags;
    }

    /** Actions that model no kernel code: the environment's ({@code @env}) and broken variants' ({@code @bug-only}). */
    private static Set<String> envActions(String text) {
        Set<String> env = new LinkedHashSet<>();
        boolean pending = false;
        for (String line : text.split("\n", -1)) {
            if (line.startsWith("(*")) {
                pending |= line.contains("@env") || line.contains("@bug-only");
                continue;
            }
            Matcher d = DEF.matcher(line);
            if (d.find() && pending) {
                env.add(d.group(1));
            }
            if (!line.isBlank() && !line.startsWith("RECURSIVE ")) {
                pending = false;
            }
        }
        return env;
    }

    /** The operators the spec's next-state relation is made of. */
    private static Set<String> actions(String spec, String text) {
        Set<String> names = new LinkedHashSet<>();
        for (String def : NEXT_CHAIN.get(spec)) {
            Matcher m = Pattern.compile("^" + def + "(\\([^)]*\\))? ==(.*?)(?=^\\S|\\z)", Pattern.MULTILINE | Pattern.DOTALL)
                    .matcher(text);
            assertTrue(m.find(), spec + ": no definition " + def);
            Matcher call = Pattern.compile("\\b([A-Z]\\w*)\\b").matcher(m.group(2));
            while (call.find()) {
                String n = call.group(1);
                if (!NOT_ACTIONS.contains(n) && text.contains("\n" + n) && isOperator(text, n)) {
                    names.add(n);
                }
            }
        }
        return names;
    }

    private static boolean isOperator(String text, String name) {
        return Pattern.compile("^" + name + "(\\([^)]*\\))? ==", Pattern.MULTILINE).matcher(text).find();
    }

    /** The anchor's statement in the named method, as [first, last] lines; null (with a problem) if gone. */
    private static int[] locate(Path kernel, Tag t, List<String> problems) throws IOException {
        Path source = source(kernel, t.cls());
        if (source == null) {
            problems.add(t.spec() + "." + t.action() + ": class " + t.cls() + " not found under " + kernel);
            return null;
        }
        String code = Files.readString(source, StandardCharsets.UTF_8);
        List<int[]> spans = methodSpans(code, t.method());
        if (spans.isEmpty()) {
            problems.add(t.spec() + "." + t.action() + ": method " + t.cls() + "." + t.method() + " not found");
            return null;
        }
        String[] lines = code.split("\n", -1);
        for (int[] span : spans) {
            for (int i = span[0]; i <= span[1]; i++) {
                if (lines[i - 1].contains(t.anchor())) {
                    int last = i;
                    while (last < span[1] && !statementEnds(lines[last - 1])) {
                        last++;
                    }
                    return new int[] {i, last};
                }
            }
        }
        problems.add(t.spec() + "." + t.action() + ": \"" + t.anchor() + "\" is no longer in " + t.cls() + "."
                + t.method());
        return null;
    }

    private static boolean statementEnds(String line) {
        String s = line.replaceAll("//.*$", "").trim();
        return s.endsWith(";") || s.endsWith("{") || s.endsWith("}");
    }

    /** A class's source in any module's main or test sources, or null. */
    private static Path anySource(String cls) throws IOException {
        try (Stream<Path> modules = Files.list(SPECS.getParent())) {
            for (Path module : (Iterable<Path>) modules.sorted()::iterator) {
                for (String kind : List.of("main", "test")) {
                    Path java = module.resolve("src").resolve(kind).resolve("java");
                    if (Files.isDirectory(java)) {
                        Path found = source(java, cls);
                        if (found != null) {
                            return found;
                        }
                    }
                }
            }
        }
        return null;
    }

    private static final Map<Path, Map<String, Path>> SOURCES = new ConcurrentHashMap<>();

    /** The source of class {@code cls} under {@code root}, or null (the tree is listed once). */
    private static Path source(Path root, String cls) throws IOException {
        Map<String, Path> byName = SOURCES.get(root);
        if (byName == null) {
            byName = new HashMap<>();
            try (Stream<Path> files = Files.walk(root)) {
                for (Path f : (Iterable<Path>) files::iterator) {
                    String n = f.getFileName().toString();
                    if (n.endsWith(".java")) {
                        byName.putIfAbsent(n.substring(0, n.length() - 5), f);
                    }
                }
            }
            SOURCES.put(root, byName);
        }
        return byName.get(cls);
    }

    /** The line spans (1-based, inclusive) of the declarations of {@code method} in {@code code}. */
    static List<int[]> methodSpans(String code, String method) {
        List<int[]> spans = new ArrayList<>();
        Pattern decl = Pattern.compile("^\\s+(?:(?:public|protected|private|static|final|synchronized|default)\\s+)*"
                + "(?:<[^>]+>\\s+)?[\\w.<>\\[\\], ?]+\\s+" + method + "\\s*\\(", Pattern.MULTILINE);
        Matcher m = decl.matcher(code);
        while (m.find()) {
            int open = code.indexOf('{', m.end());
            int semi = code.indexOf(';', m.end());
            if (open < 0 || (semi >= 0 && semi < open)) {
                continue; // an abstract or interface declaration
            }
            int depth = 0;
            int i = open;
            for (; i < code.length(); i++) {
                char c = code.charAt(i);
                if (c == '{') {
                    depth++;
                } else if (c == '}' && --depth == 0) {
                    break;
                }
            }
            spans.add(new int[] {lineOf(code, m.start() + 1), lineOf(code, i)});
        }
        return spans;
    }

    private static int lineOf(String code, int index) {
        int line = 1;
        for (int i = 0; i < index && i < code.length(); i++) {
            if (code.charAt(i) == '\n') {
                line++;
            }
        }
        return line;
    }

    @Test
    void theMethodFinderFindsMethodsAndNotCalls() {
        String code = "class A {\n    void a() {\n        b();\n    }\n\n    private static int b() {\n        return 1;\n    }\n}\n";
        assertEquals(1, methodSpans(code, "a").size());
        assertEquals(2, methodSpans(code, "a").get(0)[0]);
        assertEquals(4, methodSpans(code, "a").get(0)[1]);
        assertEquals(6, methodSpans(code, "b").get(0)[0]);
        assertTrue(methodSpans(code, "c").isEmpty());
    }
}
