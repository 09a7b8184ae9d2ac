package dev.handoff.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.testkit.Check;
import dev.handoff.testkit.CheckFailure;
import dev.handoff.testkit.Checks;
import dev.handoff.testkit.DeviceFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.opentest4j.TestAbortedException;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code handoff verify}: the test kit's checks (the {@code BlockDevice} contract: sequential,
 * concurrent, fault behaviour) on a device class from the user's jar, a raw image or an NBD
 * export, with a verdict per check. Exit 0 when no check failed and every check ran.
 */
@Command(name = "verify", usageHelpWidth = 100,
        description = {"Check a block device against Handoff's device contract (the test kit): one thread and many,"
                + " power loss where the device can simulate one, DeviceException kinds and faults of a backing device.",
            "An image or an NBD export is checked through its first 4 MiB: on a scratch copy beside the image, or with"
                    + " the export's bytes saved and written back, unless --destructive.",
            "Exit 0 when no check failed (a check the target cannot support is reported as skipped), 1 when one failed"
                    + " or the budget left one unrun."})
final class VerifyCommand implements Callable<Integer> {

    static final class Target {
        @Option(names = "--device", paramLabel = "CLASS", required = true,
                description = "A dev.handoff.testkit.DeviceFactory (a DeviceKit subclass is one) or a BlockDevice with a"
                        + " constructor taking the size, from --classpath.")
        String deviceClass;

        @Option(names = "--image", paramLabel = "FILE", required = true,
                description = "A raw image (a file, or a block device with --destructive).")
        Path image;

        @Option(names = "--nbd", paramLabel = "URI", required = true,
                description = "An NBD export: nbd://HOST:PORT/NAME or nbd+unix:///NAME?socket=PATH.")
        String nbd;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Target target;

    @Option(names = "--classpath", paramLabel = "PATH",
            description = "Jars and directories holding --device CLASS and what it needs (separated by '"
                    + "${sys:path.separator}').")
    String classpath;

    @Option(names = "--destructive",
            description = "Let the checks overwrite the first 4 MiB of the image or export itself (no scratch copy, nothing"
                    + " written back).")
    boolean destructive;

    @Option(names = "--seeds", paramLabel = "N",
            description = "Seeds for each check that draws at random (default: each check's own, 2 to 5).")
    Integer seeds;

    @Option(names = "--seed", paramLabel = "S", description = "Run seed S only (what a failure's replay line sets).")
    Long seed;

    @Option(names = "--check", paramLabel = "ID", split = ",",
            description = "Run these checks only (comma-separated ids, as the table names them).")
    List<String> only;

    @Option(names = "--budget", paramLabel = "DURATION",
            description = "Start no seed after this long (e.g. 90s, 5m, 1h); every check still runs its first seed"
                    + " unless the budget is gone before it starts.")
    String budget;

    @Option(names = "--json", description = "Print one JSON object instead of the table.")
    boolean json;

    @Option(names = "--junit-xml", paramLabel = "FILE",
            description = "Also write a JUnit XML report: one test case per check, a failure with the smallest failing"
                    + " seed and its replay command.")
    Path junitXml;

    @Option(names = "--report", paramLabel = "FILE",
            description = "Also write a report for people: FILE.md (Markdown) or FILE.html, the verdict table and each"
                    + " failure's seed, message and replay command.")
    Path report;

    @Override
    public Integer call() throws Exception {
        Duration limit = budget == null ? null : parseDuration(budget);
        if (seeds != null && seeds < 1) {
            throw new CliException(ExitCodes.USAGE, "--seeds must be at least 1, got " + seeds);
        }
        if (seeds != null && seed != null) {
            throw new CliException(ExitCodes.USAGE, "--seeds and --seed exclude each other");
        }
        List<Check> checks = selected();
        checkOutput("--junit-xml", junitXml);
        checkOutput("--report", report);
        if (report != null && reportFormat(report) == null) {
            throw new CliException(ExitCodes.USAGE, "--report: " + report + " must end in .md or .html");
        }
        if (target.deviceClass == null && classpath != null) {
            throw new CliException(ExitCodes.USAGE, "--classpath is for --device");
        }
        if (target.deviceClass != null && destructive) {
            throw new CliException(ExitCodes.USAGE, "--destructive is for --image and --nbd");
        }
        VerifyTarget t;
        if (target.deviceClass != null) {
            if (classpath == null) {
                throw new CliException(ExitCodes.USAGE, "--device needs --classpath (the jar that holds " + target.deviceClass + ")");
            }
            t = VerifyTarget.ofClass(target.deviceClass, classpath);
        } else if (target.image != null) {
            t = VerifyTarget.ofImage(target.image, destructive);
        } else {
            t = VerifyTarget.ofNbd(target.nbd, destructive);
        }
        List<Verdict> verdicts;
        long start = System.nanoTime();
        try (t) {
            verdicts = run(t.factory(), checks, limit);
        }
        VerifyReport result = new VerifyReport(t.arguments(), t.scope(), verdicts, since(start));
        if (json) {
            System.out.println(Json.line(json(result)));
        } else {
            printTable(result);
        }
        if (junitXml != null) {
            VerifyReport.write(junitXml, result.junitXml());
        }
        if (report != null) {
            VerifyReport.write(report, reportFormat(report).equals("html") ? result.html() : result.markdown());
        }
        return result.passed() ? ExitCodes.OK : ExitCodes.FAILED;
    }

    /** "md" or "html" by the file's extension, or null. */
    static String reportFormat(Path file) {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        return name.endsWith(".md") || name.endsWith(".markdown") ? "md"
                : name.endsWith(".html") || name.endsWith(".htm") ? "html" : null;
    }

    /** An output file must be writable where it is named, which is said before any check runs. */
    private static void checkOutput(String option, Path file) throws CliException {
        if (file == null) {
            return;
        }
        Path dir = file.toAbsolutePath().getParent();
        if (Files.isDirectory(file)) {
            throw new CliException(ExitCodes.USAGE, option + ": " + file + " is a directory");
        }
        if (dir == null || !Files.isDirectory(dir)) {
            throw new CliException(ExitCodes.USAGE, option + ": no directory " + dir + " to write " + file.getFileName() + " in");
        }
        if (!Files.isWritable(dir)) {
            throw new CliException(ExitCodes.USAGE, option + ": cannot write in " + dir);
        }
    }

    private List<Check> selected() throws CliException {
        if (only == null) {
            return Checks.all();
        }
        List<Check> checks = new ArrayList<>();
        for (String id : only) {
            Check c = Checks.byId(id.strip()).orElseThrow(() -> new CliException(ExitCodes.USAGE, "--check: no check "
                    + id + " (there are " + String.join(", ", Checks.all().stream().map(Check::id).toList()) + ")"));
            checks.add(c);
        }
        return checks;
    }

    private List<Verdict> run(DeviceFactory factory, List<Check> checks, Duration budget) {
        long start = System.nanoTime();
        long deadline = budget == null ? Long.MAX_VALUE : start + budget.toNanos();
        boolean interactive = System.console() != null && !json;
        List<Verdict> verdicts = new ArrayList<>();
        int n = 0;
        for (Check check : checks) {
            n++;
            long[] toRun = seedsOf(check);
            long checkStart = System.nanoTime();
            int ran = 0;
            Verdict verdict = null;
            for (long s : toRun) {
                if (System.nanoTime() > deadline) {
                    break;
                }
                if (interactive) {
                    System.err.printf(Locale.ROOT, "\r[%d/%d] %s seed %d of %d ...\033[K", n, checks.size(), check.id(),
                            ran + 1, toRun.length);
                }
                try {
                    check.run(factory, s, Duration.ofSeconds(60));
                    ran++;
                } catch (CheckFailure f) {
                    ran++;
                    verdict = new Verdict(check, Verdict.Status.FAILED, ran, since(checkStart), f, null);
                    break;
                } catch (TestAbortedException skipped) {
                    verdict = new Verdict(check, Verdict.Status.SKIPPED, 0, since(checkStart), null, skipped.getMessage());
                    break;
                }
            }
            if (verdict == null) {
                verdict = ran == 0 ? new Verdict(check, Verdict.Status.NOT_RUN, 0, Duration.ZERO, null, "the budget ran out")
                        : new Verdict(check, Verdict.Status.PASSED, ran, since(checkStart), null,
                                ran < toRun.length ? "the budget ran out after " + ran + " of " + toRun.length + " seeds" : null);
            }
            verdicts.add(verdict);
        }
        if (interactive) {
            System.err.print("\r\033[K");
        }
        return verdicts;
    }

    private long[] seedsOf(Check check) {
        if (seed != null) {
            return new long[] {seed};
        }
        int count = check.defaultSeeds() == 1 ? 1 : seeds != null ? seeds : check.defaultSeeds();
        long[] all = new long[count];
        for (int i = 0; i < count; i++) {
            all[i] = i + 1;
        }
        return all;
    }

    private static Duration since(long start) {
        return Duration.ofNanos(System.nanoTime() - start);
    }

    private void printTable(VerifyReport result) {
        List<Verdict> verdicts = result.verdicts();
        System.out.println("verify " + result.arguments());
        System.out.println("  on " + result.scope());
        System.out.println();
        int width = verdicts.stream().mapToInt(v -> v.check().id().length()).max().orElse(10);
        String format = "%-20s %-" + width + "s  %-8s %5s %8s  %s";
        System.out.println(String.format(Locale.ROOT, format, "group", "check", "verdict", "seeds", "time", "").stripTrailing());
        for (Verdict v : verdicts) {
            String note = switch (v.status()) {
                case FAILED -> "seed " + v.failure().seed() + ": see below";
                case SKIPPED, NOT_RUN -> v.reason();
                case PASSED -> v.reason() == null ? "" : v.reason();
            };
            System.out.println(String.format(Locale.ROOT, format, v.check().group().title(), v.check().id(), v.status().word,
                    v.status() == Verdict.Status.SKIPPED || v.status() == Verdict.Status.NOT_RUN ? "-" : String.valueOf(v.seeds()),
                    v.status() == Verdict.Status.NOT_RUN ? "-" : String.format(Locale.ROOT, "%.1f s", v.time().toMillis() / 1000.0),
                    note).stripTrailing());
        }
        System.out.println();
        System.out.println(result.summary());
        for (Verdict v : verdicts) {
            if (v.status() == Verdict.Status.FAILED) {
                System.out.println();
                System.out.println(v.failure().getMessage().lines().findFirst().orElse(""));
                System.out.println("  replay: " + result.replay(v));
            }
        }
    }

    private ObjectNode json(VerifyReport result) {
        ObjectNode o = Json.object();
        o.put("target", result.arguments());
        o.put("on", result.scope());
        o.put("passed", result.passed());
        ArrayNode a = o.putArray("checks");
        for (Verdict v : result.verdicts()) {
            ObjectNode c = a.addObject();
            c.put("id", v.check().id());
            c.put("group", v.check().group().title());
            c.put("verdict", v.status().name().toLowerCase(Locale.ROOT).replace('_', '-'));
            c.put("seeds", v.seeds());
            c.put("seconds", v.time().toMillis() / 1000.0);
            if (v.reason() != null) {
                c.put("reason", v.reason());
            }
            if (v.failure() != null) {
                ObjectNode f = c.putObject("failure");
                f.put("seed", v.failure().seed());
                f.put("message", v.failure().detail());
                f.put("replay", result.replay(v));
            }
        }
        return o;
    }

    /** 90s, 5m, 1h, 1h30m, or an ISO-8601 duration. */
    static Duration parseDuration(String text) throws CliException {
        String t = text.strip().toLowerCase(Locale.ROOT);
        try {
            if (t.startsWith("p")) {
                return positive(Duration.parse(t.toUpperCase(Locale.ROOT)), text);
            }
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d+)(ms|h|m|s)").matcher(t);
            Duration d = Duration.ZERO;
            int end = 0;
            while (m.find() && m.start() == end) {
                long n = Long.parseLong(m.group(1));
                d = d.plus(switch (m.group(2)) {
                    case "h" -> Duration.ofHours(n);
                    case "m" -> Duration.ofMinutes(n);
                    case "s" -> Duration.ofSeconds(n);
                    default -> Duration.ofMillis(n);
                });
                end = m.end();
            }
            if (end == 0 || end != t.length()) {
                throw new CliException(ExitCodes.USAGE, "--budget: not a duration: '" + text + "' (write 90s, 5m, 1h30m)");
            }
            return positive(d, text);
        } catch (java.time.format.DateTimeParseException | ArithmeticException | NumberFormatException e) {
            throw new CliException(ExitCodes.USAGE, "--budget: not a duration: '" + text + "' (write 90s, 5m, 1h30m)");
        }
    }

    private static Duration positive(Duration d, String text) throws CliException {
        if (d.isZero() || d.isNegative()) {
            throw new CliException(ExitCodes.USAGE, "--budget must be positive, got '" + text + "'");
        }
        return d;
    }
}
