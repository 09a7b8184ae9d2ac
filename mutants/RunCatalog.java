import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.StringWriter;
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
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;

/**
 * Runs the broken-variant catalog (mutants/catalog.json; the format is in mutants/README.md).
 *
 * <p>Copies the work tree (tracked and untracked, not ignored files) to a scratch directory and
 * builds it once, offline (or, with {@code --prebuilt}, uses the work tree's own build). Then, for
 * each variant: copies the production sources of the modules its patch touches, applies the patch
 * ({@code git apply --check} first: a patch that no longer applies, or no longer compiles, is
 * STALE), compiles them, and runs the variant's checks with the patched classes first on the class
 * path: every JUnit check of one module in one launcher, every jcstress check in one jcstress JVM
 * (which runs alone: other variants' JUnit checks wait for it).
 * A check fires only when the test it names fails and, where the entry names what must fire
 * ({@code expect}), that failure shows it (a simulation property, a jcstress outcome); a variant is
 * CAUGHT when every one of its checks fired. Exits 0 only if every variant is caught.
 *
 * <p>Usage (from the repository root): {@code java mutants/RunCatalog.java [--only id,id]
 * [--fast | --slow] [--jobs N] [--prebuilt] [--keep] [--timings FILE]}: {@code --fast} runs the
 * variants marked {@code "fast"} (mvn verify runs them), {@code --slow} the others; {@code --prebuilt}
 * uses the work tree's own build instead of building a scratch copy; {@code --timings} writes one
 * line per variant and phase (seconds, and the load average as it started). {@code --table} prints
 * the README's table of variants and exits.
 *
 * <p>What keeps it cheap (CI runs it after {@code mvn verify}, within a 25-minute budget on 2
 * cores): patched sources are compiled by this JVM's own javac (no JVM start per variant), the
 * patched files alone where that is the module's compilation ({@link #compilePatched}); a
 * simulation check stops at its first failing seed, does not shrink it ({@code -Dhandoff.shrink=false}),
 * and runs at most the variant's {@code seeds}; a jcstress JVM probes the machine while other
 * variants' JUnit checks run (each probe's answer memoized for the run: {@link #writeProbeHome}), and waits at a gate (a line on its stdin) until it may run its
 * actors alone; each jcstress check runs for the shortest {@code -time} measured to catch its
 * variant.
 */
public final class RunCatalog {
    /**
     * jcstress flags for a catalog check: one short fork per JVM mode; {@code -time} is the check's
     * own ({@code "time"}, measured to catch its variant in three runs out of three) or this default.
     */
    static final List<String> JCSTRESS_FLAGS = List.of("-f", "1", "-fsm", "1", "-iters", "1", "-sc", "false",
            "-jvmArgs", "-Xmx256m");
    static final int JCSTRESS_DEFAULT_TIME_MS = 200;
    /**
     * Runs a jcstress check may take: a race is a matter of chance, so a check whose forbidden
     * outcome was not seen runs again, up to this many runs in all. Seeing it once proves the
     * variant broken (a correct kernel never shows it: mvn verify's jcstress pass checks that).
     */
    static final int JCSTRESS_RUNS = 3;
    /**
     * JVM flags of a JUnit check's launcher: a check runs for seconds, so C1 alone compiles what it
     * needs sooner than tiered compilation does, and one serial GC thread leaves the other core to
     * the other variant.
     */
    static final List<String> JUNIT_JVM_FLAGS = List.of("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
            "-Dhandoff.shrink=false");
    /** The line the gated jcstress JVM prints when it has probed the machine and waits to run actors. */
    static final String GATE_LINE = "@@handoff-catalog: probed, waiting to run actors";
    static final long CHECK_TIMEOUT_MINUTES = 10;
    /** Modules whose production sources a patch may touch, in build order. */
    static final List<String> PATCHABLE = List.of("kernel", "nbd", "coordination", "cli");
    static final Pattern PATCHED_FILE = Pattern.compile("^\\+\\+\\+ b/([a-z]+)/src/main/java/", Pattern.MULTILINE);

    enum Verdict { CAUGHT, SURVIVED, MISFIRED, STALE, ERROR }

    record Check(String kind, String module, String select, String test, String expect, List<String> args,
            Integer time) {
        String describe() {
            String what = kind.equals("jcstress") ? "jcstress " + test : "junit " + module + " " + select;
            return expect == null ? what : what + " [" + expect + "]";
        }
    }

    record Variant(String id, Path patch, String invariant, List<Check> checks, boolean fast, Integer seeds,
            String tla) {
    }

    record Result(Variant variant, Verdict verdict, String detail, long millis, String phases) {
    }

    /** What one check did on the broken variant. */
    enum Fired { NAMED, OTHER, PASSED, ERROR }

    record Outcome(Check check, Fired fired, String detail) {
    }

    public static void main(String[] args) throws Exception {
        Path root = Path.of("").toAbsolutePath();
        Set<String> only = new LinkedHashSet<>();
        boolean keep = false;
        boolean fast = false;
        boolean slow = false;
        boolean prebuilt = false;
        boolean table = false;
        Path timings = null;
        int jobs = 2;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--only" -> only.addAll(Arrays.asList(args[++i].split(",")));
                case "--keep" -> keep = true;
                case "--fast" -> fast = true;
                case "--slow" -> slow = true;
                case "--prebuilt" -> prebuilt = true;
                case "--jobs" -> jobs = Integer.parseInt(args[++i]);
                case "--timings" -> timings = Path.of(args[++i]).toAbsolutePath();
                case "--table" -> table = true;
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                        + "; usage: java mutants/RunCatalog.java [--only id,id] [--fast | --slow] [--jobs N] [--prebuilt]"
                        + " [--keep] [--timings FILE] [--table]");
            }
        }
        List<Variant> variants = load(root.resolve("mutants/catalog.json"));
        if (table) {
            printTable(variants);
            return;
        }
        if (!only.isEmpty()) {
            Set<String> known = variants.stream().map(Variant::id).collect(Collectors.toSet());
            for (String id : only) {
                if (!known.contains(id)) {
                    throw new IllegalArgumentException("no variant " + id + " in mutants/catalog.json");
                }
            }
            variants = variants.stream().filter(v -> only.contains(v.id())).collect(Collectors.toList());
        }
        if (fast) {
            variants = variants.stream().filter(Variant::fast).collect(Collectors.toList());
        }
        if (slow) { // the rest: mvn verify already ran the fast subset
            variants = variants.stream().filter(v -> !v.fast()).collect(Collectors.toList());
        }
        Path scratch = Files.createTempDirectory("handoff-mutants-");
        long start = System.nanoTime();
        String loadAtStart = loadAverage();
        System.out.println("catalog: " + variants.size() + " variants, " + jobs + " at a time; load average " + loadAtStart
                + "; scratch " + scratch);

        Set<String> modules = new LinkedHashSet<>(List.of("kernel", "stress"));
        for (Variant v : variants) {
            modules.addAll(patchedModules(v));
            for (Check c : v.checks()) {
                if (c.kind().equals("junit")) {
                    modules.add(c.module());
                }
            }
        }
        Path base;
        if (prebuilt) {
            base = root; // the caller built every module (mvn verify does; see mutants/pom.xml)
        } else {
            base = scratch.resolve("base");
            copyWorkTree(root, base);
            long t = System.nanoTime();
            int built = run(base, base.resolve("build.log"), List.of("mvn", "-o", "-q", "-B", "-pl",
                    String.join(",", modules), "-am", "package", "-DskipTests", "-Djcstress.skip=true"));
            if (built != 0) {
                System.out.println("the unpatched tree does not build; see " + base.resolve("build.log"));
                System.exit(2);
            }
            System.out.printf("built the unpatched tree in %d s%n", seconds(t));
        }
        for (String m : modules) {
            if (!Files.exists(base.resolve(m).resolve("target/test-classpath.txt"))) {
                System.out.println("missing " + m + "/target/test-classpath.txt: build the module first (mvn -pl " + m
                        + " -am package -DskipTests)");
                System.exit(2);
            }
        }

        // Two variants at a time by default, but a jcstress JVM runs alone: its actors need both
        // cores to race, and a JUnit launcher beside them makes a real race rare enough to miss.
        ReentrantReadWriteLock jcstress = new ReentrantReadWriteLock(true);
        Path gate = compileGate(base, scratch.resolve("gate"));
        Path probeHome = writeProbeHome(scratch.resolve("probe-jvm"));
        ExecutorService pool = Executors.newFixedThreadPool(jobs);
        List<Future<Result>> futures = new ArrayList<>();
        Path finalBase = base;
        Path finalTimings = timings;
        if (timings != null) {
            Files.writeString(timings, "# variant\tphase\tseconds\tload average at start\n");
        }
        for (Variant v : variants) {
            futures.add(pool.submit(() -> {
                Result r = runVariant(finalBase, scratch.resolve("variants").resolve(v.id()), v, jcstress, gate,
                        probeHome);
                synchronized (System.out) {
                    System.out.printf("%-38s %-8s %4d s  %s%n", v.id(), r.verdict(), r.millis() / 1000, r.detail());
                    if (finalTimings != null) {
                        Files.writeString(finalTimings, r.phases(), java.nio.file.StandardOpenOption.APPEND);
                    }
                }
                return r;
            }));
        }
        List<Result> results = new ArrayList<>();
        for (Future<Result> f : futures) {
            results.add(f.get());
        }
        pool.shutdown();

        long caught = results.stream().filter(r -> r.verdict() == Verdict.CAUGHT).count();
        System.out.println();
        for (Result r : results) {
            if (r.verdict() != Verdict.CAUGHT) {
                System.out.printf("NOT CAUGHT: %s %s: %s%n", r.variant().id(), r.verdict(), r.detail());
            }
        }
        System.out.printf("%d of %d variants caught (%d survived, %d misfired, %d stale, %d errors) in %d s"
                + " (load average %s at the start, %s at the end)%n", caught, results.size(),
                count(results, Verdict.SURVIVED), count(results, Verdict.MISFIRED), count(results, Verdict.STALE),
                count(results, Verdict.ERROR), seconds(start), loadAtStart, loadAverage());
        if (!keep && caught == results.size()) {
            deleteTree(scratch);
        } else {
            System.out.println("logs kept in " + scratch);
        }
        System.exit(caught == results.size() ? 0 : 1);
    }

    /** The modules whose production sources the variant's patch touches, in build order. */
    static List<String> patchedModules(Variant v) throws IOException {
        Set<String> touched = new LinkedHashSet<>();
        Matcher m = PATCHED_FILE.matcher(Files.readString(v.patch()));
        while (m.find()) {
            touched.add(m.group(1));
        }
        for (String t : touched) {
            if (!PATCHABLE.contains(t)) {
                throw new IllegalArgumentException(v.id() + ": a patch may touch only " + PATCHABLE
                        + " production sources, not " + t);
            }
        }
        if (touched.isEmpty()) {
            throw new IllegalArgumentException(v.id() + ": the patch touches no production source");
        }
        return PATCHABLE.stream().filter(touched::contains).collect(Collectors.toList());
    }

    static Result runVariant(Path base, Path dir, Variant v, ReentrantReadWriteLock cpu, Path gate, Path probeHome)
            throws Exception {
        long t = System.nanoTime();
        Phases phases = new Phases(v.id());
        Files.createDirectories(dir);
        List<String> patched = patchedModules(v);
        for (String m : patched) {
            copyTree(base.resolve(m).resolve("src/main"), dir.resolve(m).resolve("src/main"));
        }
        if (run(dir, dir.resolve("apply.log"), List.of("git", "apply", "--check", v.patch().toString())) != 0) {
            return new Result(v, Verdict.STALE, "patch no longer applies: " + firstLine(dir.resolve("apply.log")), millis(t),
                    phases.done());
        }
        run(dir, dir.resolve("apply.log"), List.of("git", "apply", v.patch().toString()));
        Path classes = dir.resolve("classes");
        for (String m : patched) {
            if (!compilePatched(base, dir, m, patchedSources(v, m), classes)) {
                return new Result(v, Verdict.STALE, "patched " + m + " does not compile: see "
                        + dir.resolve("javac-" + m + ".log"), millis(t), phases.done());
            }
        }
        phases.mark("patch and compile");
        List<Outcome> outcomes = new ArrayList<>();
        Map<String, List<Check>> junitByModule = new LinkedHashMap<>();
        List<Check> jcstressDefault = new ArrayList<>();
        for (Check c : v.checks()) {
            if (c.kind().equals("junit")) {
                junitByModule.computeIfAbsent(c.module(), k -> new ArrayList<>()).add(c);
            } else if (c.kind().equals("jcstress") && c.args() == null) {
                jcstressDefault.add(c);
            } else if (c.kind().equals("jcstress")) {
                outcomes.addAll(runJcstress(base, dir, classes, List.of(c), c.args(), cpu, gate, probeHome));
                phases.mark("jcstress " + c.test());
            } else {
                outcomes.add(new Outcome(c, Fired.ERROR, "unknown check kind " + c.kind()));
            }
        }
        for (Map.Entry<String, List<Check>> e : junitByModule.entrySet()) {
            cpu.readLock().lock();
            try {
                outcomes.addAll(runJunit(base, dir, classes, e.getKey(), e.getValue(), v.seeds()));
            } finally {
                cpu.readLock().unlock();
            }
            phases.mark("junit " + e.getKey() + " (" + e.getValue().size() + " checks)");
        }
        if (!jcstressDefault.isEmpty()) {
            // One JVM for all of them, at the longest time any of them needs.
            int time = jcstressDefault.stream().mapToInt(c -> c.time() == null ? JCSTRESS_DEFAULT_TIME_MS : c.time())
                    .max().getAsInt();
            List<String> flags = new ArrayList<>(JCSTRESS_FLAGS);
            flags.addAll(List.of("-time", String.valueOf(time)));
            List<Check> pending = jcstressDefault;
            for (int run = 1; run <= JCSTRESS_RUNS && !pending.isEmpty(); run++) {
                List<Outcome> got = runJcstress(base, dir.resolve("run-" + run), classes, pending, flags, cpu, gate,
                        probeHome);
                phases.mark("jcstress " + pending.stream().map(Check::test).distinct()
                        .collect(Collectors.joining(",")) + " (-time " + time + ", run " + run + ")");
                pending = new ArrayList<>();
                for (Outcome o : got) {
                    if (o.fired() == Fired.PASSED && run < JCSTRESS_RUNS) {
                        pending.add(o.check()); // not seen this time: once more
                    } else {
                        outcomes.add(o);
                    }
                }
            }
        }
        List<String> errors = describe(outcomes, Fired.ERROR);
        List<String> passed = describe(outcomes, Fired.PASSED);
        List<String> other = describe(outcomes, Fired.OTHER);
        if (!errors.isEmpty()) {
            return new Result(v, Verdict.ERROR, String.join("; ", errors), millis(t), phases.done());
        }
        if (!passed.isEmpty()) {
            return new Result(v, Verdict.SURVIVED, "passed on the broken variant: " + String.join("; ", passed), millis(t),
                    phases.done());
        }
        if (!other.isEmpty()) {
            return new Result(v, Verdict.MISFIRED, "failed, but not by the named check: " + String.join("; ", other),
                    millis(t), phases.done());
        }
        return new Result(v, Verdict.CAUGHT, v.checks().stream().map(Check::describe).collect(Collectors.joining(", ")),
                millis(t), phases.done());
    }

    /** The files of module {@code m} that the variant's patch changes, relative to the module's src/main/java. */
    static List<String> patchedSources(Variant v, String m) throws IOException {
        List<String> files = new ArrayList<>();
        Matcher f = Pattern.compile("^\\+\\+\\+ b/" + m + "/src/main/java/(\\S+\\.java)$", Pattern.MULTILINE)
                .matcher(Files.readString(v.patch()));
        while (f.find()) {
            files.add(f.group(1));
        }
        return files;
    }

    /**
     * Compiles the patched module {@code m} into {@code classes}, which comes before the module's
     * own build on every class path a check runs with. First the patched files alone, against the
     * build's classes: that is the whole module's compilation whenever the patch leaves the
     * non-private face of every class it recompiles as the build has it (the same supertypes,
     * non-private fields with the same constant values, non-private methods), since the other
     * classes were compiled against exactly that face. If it does not (or the files alone do not
     * compile), the partial output is deleted and the module's every source is compiled, as one
     * module build would: a patch that changes a constant or a signature others use is compiled
     * with them, and one that breaks their compilation is STALE.
     */
    static boolean compilePatched(Path base, Path dir, String m, List<String> files, Path classes) throws IOException {
        Path src = dir.resolve(m).resolve("src/main/java");
        Path built = base.resolve(m).resolve("target/classes");
        Path partial = dir.resolve("partial-" + m);
        String cp = classes + ":" + moduleClasspath(base, m);
        Files.createDirectories(partial);
        if (javac(cp, partial, files.stream().map(f -> src.resolve(f).toString()).collect(Collectors.toList()),
                dir.resolve("javac-" + m + ".partial.log")) && sameFaceAsBuilt(partial, built)) {
            copyTree(partial, classes);
            deleteTree(partial);
            return true;
        }
        deleteTree(partial);
        List<String> sources;
        try (Stream<Path> s = Files.walk(src)) {
            sources = s.filter(p -> p.toString().endsWith(".java")).map(Path::toString).collect(Collectors.toList());
        }
        return javac(cp, classes, sources, dir.resolve("javac-" + m + ".log"));
    }

    /** True if every class file under {@code out} that the build also has shows the build's non-private face. */
    static boolean sameFaceAsBuilt(Path out, Path built) throws IOException {
        List<Path> produced;
        try (Stream<Path> s = Files.walk(out)) {
            produced = s.filter(p -> p.toString().endsWith(".class")).collect(Collectors.toList());
        }
        for (Path c : produced) {
            Path old = built.resolve(out.relativize(c).toString());
            // A class the build lacks (a new anonymous class) is used by the recompiled classes only.
            if (Files.exists(old) && !ClassFace.of(c).equals(ClassFace.of(old))) {
                return false;
            }
        }
        return true;
    }

    /**
     * What other classes compile against in a class file: access flags, name, supertypes, the
     * non-private fields (with their constant values, which javac copies into the classes that use
     * them) and the non-private methods (with what they throw), as one string. Private members (lambda bodies among them)
     * are left out: only the class itself and its nestmates, compiled from the same source file,
     * reach them.
     */
    static final class ClassFace {
        private final java.io.DataInputStream in;
        private Object[] pool;

        private ClassFace(byte[] bytes) {
            in = new java.io.DataInputStream(new java.io.ByteArrayInputStream(bytes));
        }

        static String of(Path classFile) throws IOException {
            return new ClassFace(Files.readAllBytes(classFile)).read();
        }

        private String read() throws IOException {
            if (in.readInt() != 0xCAFEBABE) {
                throw new IOException("not a class file");
            }
            in.readUnsignedShort();
            in.readUnsignedShort();
            pool = new Object[in.readUnsignedShort()];
            for (int i = 1; i < pool.length; i++) {
                int tag = in.readUnsignedByte();
                switch (tag) {
                    case 1 -> pool[i] = in.readUTF();
                    case 3 -> pool[i] = "int " + in.readInt();
                    case 4 -> pool[i] = "float " + Float.floatToRawIntBits(in.readFloat());
                    case 5 -> pool[i++] = "long " + in.readLong();
                    case 6 -> pool[i++] = "double " + Double.doubleToRawLongBits(in.readDouble());
                    case 7, 8, 16, 19, 20 -> pool[i] = new int[] {in.readUnsignedShort()};
                    case 9, 10, 11, 12, 17, 18 -> pool[i] = new int[] {in.readUnsignedShort(), in.readUnsignedShort()};
                    case 15 -> pool[i] = new int[] {in.readUnsignedByte(), in.readUnsignedShort()};
                    default -> throw new IOException("constant pool tag " + tag);
                }
            }
            StringBuilder face = new StringBuilder();
            face.append(in.readUnsignedShort()).append(' ').append(classAt(in.readUnsignedShort()));
            int sup = in.readUnsignedShort();
            face.append(" extends ").append(sup == 0 ? "-" : classAt(sup)).append(" implements");
            for (int n = in.readUnsignedShort(); n > 0; n--) {
                face.append(' ').append(classAt(in.readUnsignedShort()));
            }
            face.append('\n').append(members(true)).append(members(false));
            return face.toString();
        }

        /** The non-private fields or methods, sorted, each with its constant value if it has one. */
        private String members(boolean fields) throws IOException {
            List<String> out = new ArrayList<>();
            for (int n = in.readUnsignedShort(); n > 0; n--) {
                int access = in.readUnsignedShort();
                String member = access + " " + pool[in.readUnsignedShort()] + " " + pool[in.readUnsignedShort()];
                for (int a = in.readUnsignedShort(); a > 0; a--) {
                    String attribute = (String) pool[in.readUnsignedShort()];
                    byte[] body = new byte[in.readInt()];
                    in.readFully(body);
                    if (fields && attribute.equals("ConstantValue")) {
                        Object value = pool[u2(body, 0)];
                        member += " = " + (value instanceof int[] ref ? "string " + pool[ref[0]] : value);
                    } else if (!fields && attribute.equals("Exceptions")) { // callers compile against throws
                        member += " throws";
                        for (int e = 0; e < u2(body, 0); e++) {
                            member += " " + classAt(u2(body, 2 + 2 * e));
                        }
                    }
                }
                if ((access & 0x0002) == 0) { // not ACC_PRIVATE
                    out.add(member);
                }
            }
            java.util.Collections.sort(out);
            return String.join("\n", out) + "\n--\n";
        }

        private static int u2(byte[] b, int at) {
            return ((b[at] & 0xff) << 8) | (b[at + 1] & 0xff);
        }

        private String classAt(int index) {
            return (String) pool[((int[]) pool[index])[0]];
        }
    }

    /** Wall time of each phase of one variant, with the load average as it started (for --timings). */
    static final class Phases {
        private final String id;
        private final StringBuilder lines = new StringBuilder();
        private long since = System.nanoTime();
        private String load = loadAverage();

        Phases(String id) {
            this.id = id;
        }

        void mark(String phase) {
            long now = System.nanoTime();
            lines.append(String.format("%s\t%s\t%.1f\t%s%n", id, phase, (now - since) / 1e9, load));
            since = now;
            load = loadAverage();
        }

        String done() {
            return lines.toString();
        }
    }

    /** The 1-, 5- and 15-minute load averages, as /proc/loadavg has them (or "?"). */
    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (IOException | RuntimeException e) {
            return "?";
        }
    }

    /** Compiles {@code sources} with this JVM's own javac (no JVM start per variant); false on errors. */
    static boolean javac(String classpath, Path out, List<String> sources, Path log) throws IOException {
        JavaCompiler compiler = ToolProvider.getSystemJavaCompiler();
        if (compiler == null) {
            throw new IllegalStateException("no javac in this JVM: run the catalog with a JDK");
        }
        List<String> options = new ArrayList<>(List.of("-nowarn", "-Xlint:none", "--release", "17", "-proc:none",
                "-cp", classpath, "-d", out.toString()));
        options.addAll(sources);
        java.io.ByteArrayOutputStream messages = new java.io.ByteArrayOutputStream();
        int code = compiler.run(null, OutputStream.nullOutputStream(), messages, options.toArray(new String[0]));
        Files.write(log, messages.toByteArray());
        return code == 0;
    }

    static List<String> describe(List<Outcome> outcomes, Fired which) {
        return outcomes.stream().filter(o -> o.fired() == which)
                .map(o -> o.check().describe() + (o.detail().isEmpty() ? "" : ": " + o.detail()))
                .collect(Collectors.toList());
    }

    /* ---- JUnit: every check of one module in one console launcher; verdicts from its XML report ---- */

    static List<Outcome> runJunit(Path base, Path dir, Path classes, String module, List<Check> checks, Integer seeds)
            throws IOException, InterruptedException {
        Path reports = dir.resolve("junit-" + module);
        List<String> cmd = new ArrayList<>(List.of(tool("java"), "-Djava.io.tmpdir=" + dir));
        cmd.addAll(JUNIT_JVM_FLAGS);
        if (seeds != null) {
            cmd.add("-Dhandoff.seeds=" + seeds); // from seed 1: a prefix of what mvn verify runs
            cmd.add("-Dhandoff.kit.seeds=" + seeds); // the test kit's seeded checks: seeds 1 to N
        }
        cmd.addAll(List.of("-cp",
                junitClasspath(base, classes, module), "org.junit.platform.console.ConsoleLauncher", "execute",
                "--disable-banner", "--disable-ansi-colors", "--details=summary", "--reports-dir=" + reports,
                "--config=junit.jupiter.execution.timeout.default=2m"));
        for (Check c : checks) {
            cmd.add(c.select().contains("#") ? "--select-method=" + c.select() : "--select-class=" + c.select());
        }
        Path log = dir.resolve("junit-" + module + ".log");
        int code = run(dir, log, cmd);
        List<Outcome> out = new ArrayList<>();
        Path xml = reports.resolve("TEST-junit-jupiter.xml");
        if (!Files.exists(xml) && code != 124) {
            // The launcher ended before it wrote a report and not by our timeout: the JVM did not
            // get to a verdict (a test server's port taken by a check running beside it, a JVM that
            // could not start). That is no verdict on the variant, so the checks run once more; the
            // first run's log is kept beside the second's.
            Files.move(log, dir.resolve("junit-" + module + ".first.log"), StandardCopyOption.REPLACE_EXISTING);
            code = run(dir, log, cmd);
        }
        if (!Files.exists(xml)) {
            for (Check c : checks) {
                out.add(new Outcome(c, Fired.ERROR, "the launcher exited " + code + " without a report (" + log + ")"));
            }
            return out;
        }
        String report = Files.readString(xml);
        for (Check c : checks) {
            String cls = c.select().contains("#") ? c.select().substring(0, c.select().indexOf('#')) : c.select();
            String method = c.select().contains("#") ? c.select().substring(c.select().indexOf('#') + 1) : null;
            int ran = 0;
            StringBuilder failures = new StringBuilder();
            Matcher m = TESTCASE.matcher(report);
            while (m.find()) {
                String name = unescape(m.group(1));
                String classname = unescape(m.group(2));
                if (!classname.equals(cls) || (method != null && !name.startsWith(method + "("))) {
                    continue;
                }
                ran++;
                String bodyText = m.group(3) == null ? "" : m.group(3);
                Matcher f = FAILURE.matcher(bodyText);
                while (f.find()) {
                    failures.append(unescape(f.group(1))).append('\n');
                }
            }
            if (ran == 0) {
                out.add(new Outcome(c, Fired.ERROR, "no such test ran (" + log + ")"));
            } else if (failures.length() == 0) {
                out.add(new Outcome(c, Fired.PASSED, ""));
            } else if (c.expect() != null && !failures.toString().contains(c.expect())) {
                out.add(new Outcome(c, Fired.OTHER, firstLineOf(failures.toString())));
            } else {
                out.add(new Outcome(c, Fired.NAMED, ""));
            }
        }
        return out;
    }

    static final Pattern TESTCASE = Pattern.compile(
            "<testcase name=\"([^\"]*)\" classname=\"([^\"]*)\"[^>]*?(?:/>|>(.*?)</testcase>)", Pattern.DOTALL);
    static final Pattern FAILURE = Pattern.compile("<(?:failure|error)[^>]*?(?:/>|>(.*?)</(?:failure|error)>)",
            Pattern.DOTALL);

    static String unescape(String s) {
        if (s == null) {
            return "";
        }
        return s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'")
                .replace("&#10;", "\n").replace("&amp;", "&");
    }

    static String firstLineOf(String s) {
        String line = s.strip().lines().findFirst().orElse("");
        return line.length() > 200 ? line.substring(0, 200) + "..." : line;
    }

    /* ---- jcstress: every check of a variant in one JVM; verdicts from its console output ---- */

    static List<Outcome> runJcstress(Path base, Path dir, Path classes, List<Check> checks, List<String> flags,
            ReentrantReadWriteLock cpu, Path gate, Path probeHome) throws IOException, InterruptedException {
        String tests = checks.stream().map(Check::test).distinct().collect(Collectors.joining("|"));
        String tag = checks.size() == 1 ? checks.get(0).test() : "all";
        Files.createDirectories(dir);
        Path log = dir.resolve("jcstress-" + tag + ".log");
        Path work = dir.resolve("jcstress-" + tag);
        Files.createDirectories(work);
        List<String> cmd = new ArrayList<>(List.of(tool("java"), "-Djava.io.tmpdir=" + dir, "-cp",
                gate + ":" + classes + ":" + base.resolve("stress/target/jcstress.jar"), GATE_CLASS,
                "-t", "\\.(" + tests + ")$", "-r", work.resolve("report").toString()));
        cmd.addAll(flags);
        int code = runGated(work, log, cmd, Map.of(PROBE_HOME_VARIABLE, probeHome.toString()), cpu);
        String out = Files.readString(log);
        List<Outcome> result = new ArrayList<>();
        for (Check c : checks) {
            String section = jcstressSection(out, c.test());
            if (section == null) {
                result.add(new Outcome(c, code == 0 ? Fired.PASSED : Fired.ERROR,
                        code == 0 ? "" : "jcstress exited " + code + " with no result for it (" + log + ")"));
                continue;
            }
            if (section.startsWith("[ERROR]")) {
                result.add(new Outcome(c, Fired.ERROR, "the harness itself crashed (" + log + ")"));
                continue;
            }
            List<String> forbidden = forbiddenSeen(section);
            if (forbidden.isEmpty()) {
                result.add(new Outcome(c, Fired.OTHER, "FAILED without a forbidden outcome (" + log + ")"));
            } else if (c.expect() != null && forbidden.stream().noneMatch(l -> l.contains(c.expect()))) {
                result.add(new Outcome(c, Fired.OTHER, "forbidden: " + String.join(" | ", forbidden)));
            } else {
                result.add(new Outcome(c, Fired.NAMED, ""));
            }
        }
        return result;
    }

    /**
     * Runs a gated jcstress JVM: it probes the machine (a minute of JVM starts on a loaded machine)
     * holding no lock, while other variants' JUnit checks run; at the gate it waits for a line on its
     * stdin, which it gets once this thread holds the write lock, so that its actors run alone.
     */
    static int runGated(Path dir, Path log, List<String> cmd, Map<String, String> env, ReentrantReadWriteLock cpu)
            throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process p = pb.start();
        boolean locked = false;
        try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
             java.io.Writer logw = Files.newBufferedWriter(log)) {
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(CHECK_TIMEOUT_MINUTES);
            Thread watchdog = new Thread(() -> {
                try {
                    if (!p.waitFor(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                        p.descendants().forEach(ProcessHandle::destroyForcibly);
                        p.destroyForcibly();
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            watchdog.setDaemon(true);
            watchdog.start();
            String line;
            while ((line = out.readLine()) != null) {
                logw.write(line);
                logw.write('\n');
                if (line.equals(GATE_LINE) && !locked) {
                    logw.flush();
                    cpu.writeLock().lock();
                    locked = true;
                    p.getOutputStream().write('\n');
                    p.getOutputStream().flush();
                }
            }
            p.waitFor();
            if (System.nanoTime() - deadline > 0) {
                logw.write("\ntimed out after " + CHECK_TIMEOUT_MINUTES + " minutes\n");
                return 124;
            }
            return p.exitValue();
        } finally {
            if (locked) {
                cpu.writeLock().unlock();
            }
        }
    }

    static final String GATE_CLASS = "HandoffCatalogGate";
    /**
     * The environment variable that tells the gate where the memoizing probe JVM home is (not a
     * system property: jcstress passes the gate JVM's own flags on to the JVMs that run actors).
     */
    static final String PROBE_HOME_VARIABLE = "HANDOFF_CATALOG_PROBE_HOME";

    /**
     * Before it runs any actor, every jcstress JVM probes the JVM it will fork: about twenty JVM
     * starts, each with one more flag, kept when that JVM exits 0 (about 8 s on an idle machine,
     * twice that under the catalog's load, for each of some thirty variants). The answers depend
     * on the JDK and the flags only, so one catalog run asks each question once: while it probes,
     * the gate points jcstress (which starts {@code java.home/bin/java}) at this home, whose
     * {@code bin/java} answers a command line it has seen exit 0 (the same flags; the class path and
     * {@code java.io.tmpdir}, which differ per variant, left out) with 0 at once and runs the real
     * {@code java} for any other, remembering a 0. A probe that failed is asked again next time.
     * Everything else in the home links to the real JDK's (the gate's JVM reads its {@code lib} lazily).
     * The gate points jcstress back at the real JDK before it forks the JVMs that run the actors.
     */
    static Path writeProbeHome(Path home) throws IOException {
        Path bin = Files.createDirectories(home.resolve("bin"));
        Files.createDirectories(home.resolve("passed"));
        // The rest of the home is the real JDK's: the gate's own JVM reads java.home/lib lazily.
        Path jdk = Path.of(System.getProperty("java.home"));
        try (Stream<Path> entries = Files.list(jdk)) {
            for (Path e : entries.filter(e -> !e.getFileName().toString().equals("bin")).collect(Collectors.toList())) {
                Files.createSymbolicLink(home.resolve(e.getFileName().toString()), e);
            }
        }
        Path java = bin.resolve("java");
        Files.writeString(java, """
                #!/usr/bin/env bash
                # jcstress's JVM probe, memoized for one catalog run (RunCatalog.writeProbeHome).
                passed="$(dirname "$0")/../passed"
                key=$(printf '%%s\\n' "$@" | awk 'skip { skip = 0; next } $0 == "-cp" || $0 == "-classpath" { skip = 1; next }
                  /^-Djava\\.io\\.tmpdir=/ { next } { print }' | md5sum | cut -d' ' -f1)
                [ -f "$passed/$key" ] && exit 0
                %s "$@" && { : > "$passed/$key"; exit 0; }
                """.formatted(tool("java")));
        java.toFile().setExecutable(true);
        return home;
    }

    /**
     * jcstress's own main, with a gate: when jcstress has probed the machine and is about to run
     * actors (it prints "Detecting CPU topology", on its main thread, which then forks the test
     * JVMs), the gate prints {@link #GATE_LINE} and waits for a line on stdin. Until then it has
     * pointed {@code java.home} at the memoizing probe home ({@link #writeProbeHome}), if it was given one.
     */
    static final String GATE_SOURCE = """
            public final class HandoffCatalogGate {
                public static void main(String[] args) throws Exception {
                    String javaHome = System.getProperty("java.home");
                    String probeHome = System.getenv("%s");
                    if (probeHome != null) {
                        System.setProperty("java.home", probeHome);
                    }
                    java.io.PrintStream real = System.out;
                    java.io.BufferedReader in = new java.io.BufferedReader(new java.io.InputStreamReader(System.in));
                    System.setOut(new java.io.PrintStream(new java.io.OutputStream() {
                        private final java.io.ByteArrayOutputStream line = new java.io.ByteArrayOutputStream();
                        private boolean passed;

                        @Override
                        public synchronized void write(int b) throws java.io.IOException {
                            real.write(b);
                            if (b != '\\n') {
                                line.write(b);
                                return;
                            }
                            String s = line.toString();
                            line.reset();
                            if (!passed && s.contains("Detecting CPU topology")) {
                                passed = true;
                                System.setProperty("java.home", javaHome);
                                real.println("%s");
                                real.flush();
                                in.readLine();
                            }
                        }
                    }, true));
                    org.openjdk.jcstress.Main.main(args);
                }
            }
            """.formatted(PROBE_HOME_VARIABLE, GATE_LINE);

    /** Compiles the gate against the build's jcstress jar; returns its class directory. */
    static Path compileGate(Path base, Path dir) throws IOException {
        Files.createDirectories(dir);
        Path src = dir.resolve(GATE_CLASS + ".java");
        Files.writeString(src, GATE_SOURCE);
        if (!javac(base.resolve("stress/target/jcstress.jar").toString(), dir, List.of(src.toString()),
                dir.resolve("javac.log"))) {
            throw new IllegalStateException("the jcstress gate does not compile: see " + dir.resolve("javac.log"));
        }
        return dir;
    }

    /**
     * The console block jcstress prints for a test that did not pass ({@code [FAILED] pkg.Test} or
     * {@code [ERROR] pkg.Test}, up to the next blank-line-separated block), or null if it passed.
     */
    static String jcstressSection(String out, String test) {
        Matcher m = Pattern.compile("\\[(FAILED|ERROR)\\] [\\w.$]*\\." + Pattern.quote(test) + "\\b").matcher(out);
        if (!m.find()) {
            return null;
        }
        int end = out.indexOf("\n  [", m.end());
        int alt = out.indexOf("\n\n\n", m.end());
        int stop = end < 0 ? (alt < 0 ? out.length() : alt) : (alt < 0 ? end : Math.min(end, alt));
        return out.substring(m.start(), stop);
    }

    /** Rows of a result table whose expectation is FORBIDDEN and whose sample count is not zero. */
    static List<String> forbiddenSeen(String section) {
        List<String> rows = new ArrayList<>();
        for (String line : section.split("\n")) {
            Matcher m = FORBIDDEN_ROW.matcher(line);
            if (m.find() && !m.group(1).replace(",", "").equals("0")) {
                rows.add(line.strip());
            }
        }
        return rows;
    }

    static final Pattern FORBIDDEN_ROW = Pattern.compile("\\s([\\d,]+)\\s+[\\d.<%]+\\s+Forbidden\\s", Pattern.CASE_INSENSITIVE);

    /* ---- Class paths ---- */

    /** A module's classes and its test dependencies, as its build wrote them. */
    static String moduleClasspath(Path base, String module) throws IOException {
        List<String> cp = new ArrayList<>();
        cp.add(base.resolve(module).resolve("target/classes").toString());
        for (String e : Files.readString(base.resolve(module).resolve("target/test-classpath.txt")).trim().split(":")) {
            if (!e.isEmpty()) {
                cp.add(e);
            }
        }
        return String.join(":", cp);
    }

    /** The patched classes first, then the module's test classes and classes, then its test dependencies. */
    static String junitClasspath(Path base, Path patched, String module) throws IOException {
        Set<String> cp = new LinkedHashSet<>();
        cp.add(patched.toString());
        cp.add(base.resolve(module).resolve("target/test-classes").toString());
        cp.add(base.resolve(module).resolve("target/classes").toString());
        for (String m : List.of(module, "stress")) { // stress's list brings the console launcher
            for (String e : Files.readString(base.resolve(m).resolve("target/test-classpath.txt")).trim().split(":")) {
                if (!e.isEmpty()) {
                    cp.add(e);
                }
            }
        }
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

    /** The README's table of variants, generated from the catalog. */
    static void printTable(List<Variant> variants) {
        System.out.println("| id | invariant it breaks | caught by |");
        System.out.println("|---|---|---|");
        for (Variant v : variants) {
            List<String> checks = new ArrayList<>();
            for (Check c : v.checks()) {
                if (c.kind().equals("jcstress")) {
                    checks.add("jcstress `" + c.test() + "` (\"" + c.expect() + "\")");
                } else {
                    String sel = c.select().substring(c.select().lastIndexOf('.') + 1);
                    checks.add("`" + sel + "`" + (c.expect() == null ? "" : " `" + c.expect() + "`"));
                }
            }
            if (v.tla() != null) {
                checks.add("TLC `" + Path.of(v.tla()).getFileName().toString().replace(".cfg", "") + "`");
            }
            System.out.printf("| %s%s | %s | %s |%n", v.id(), v.fast() ? " (fast)" : "", v.invariant(),
                    String.join("; ", checks));
        }
    }

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
                Integer time = cm.containsKey("time") ? ((Number) cm.get("time")).intValue() : null;
                Check check = new Check((String) cm.get("kind"), (String) cm.getOrDefault("module", "stress"),
                        (String) cm.get("select"), (String) cm.get("test"), (String) cm.get("expect"), args, time);
                if (check.kind().equals("junit") && !check.select().contains("#") && check.expect() == null) {
                    throw new IllegalArgumentException(id + ": a check of a whole test class must name what must fire"
                            + " (\"expect\"): " + check.select());
                }
                if (check.kind().equals("jcstress") && check.expect() == null) {
                    throw new IllegalArgumentException(id + ": a jcstress check must name the forbidden outcome that"
                            + " must be seen (\"expect\"): " + check.test());
                }
                checks.add(check);
            }
            if (checks.isEmpty()) {
                throw new IllegalArgumentException(id + ": a variant needs at least one check");
            }
            if (!id.matches("[a-z0-9]+(-[a-z0-9]+)*") || !m.get("patch").equals("patches/" + id + ".patch")) {
                throw new IllegalArgumentException(id + ": ids are kebab-case and name their patch, patches/" + id
                        + ".patch");
            }
            if (m.containsKey("tla")) {
                // The TLC model of the same bug carries the same name: MC<Spec>_<CamelCaseOfId>_bug.cfg, where
                // a first word of the id that the spec's name ends with may be left out (MCGuestGate_EntryChecks...
                // for gate-entry-checks-...).
                String tla = (String) m.get("tla");
                String[] words = id.split("-");
                String camel = Arrays.stream(words).map(w -> Character.toUpperCase(w.charAt(0)) + w.substring(1))
                        .collect(Collectors.joining());
                String first = camel.substring(0, words[0].length());
                String rest = camel.substring(first.length());
                boolean named = tla.endsWith("_" + camel + "_bug.cfg")
                        || (!rest.isEmpty() && tla.matches(".*/MC\\w*" + first + "_" + rest + "_bug\\.cfg"));
                if (!named) {
                    throw new IllegalArgumentException(id + ": its TLC model must be named ..._" + camel + "_bug.cfg"
                            + " (or MC<Spec>_" + rest + "_bug.cfg for a spec whose name ends with " + first + "), not "
                            + tla);
                }
                if (!Files.exists(catalog.getParent().resolve(tla))) {
                    System.out.println("warning: " + id + ": no TLC model " + tla);
                }
            }
            Integer seeds = m.containsKey("seeds") ? ((Number) m.get("seeds")).intValue() : null;
            variants.add(new Variant(id, catalog.getParent().resolve((String) m.get("patch")).toAbsolutePath(),
                    (String) m.get("invariant"), checks, Boolean.TRUE.equals(m.get("fast")), seeds,
                    (String) m.get("tla")));
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
