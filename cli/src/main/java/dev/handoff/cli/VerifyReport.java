package dev.handoff.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Locale;

/**
 * The machine outputs of {@code handoff verify}: a JUnit XML report (one test case per check, as CI
 * servers read them) and a report for people in Markdown or HTML (the verdict table, and for each
 * failed check its clause, its smallest failing seed, what was seen and the command that replays
 * it). Files are written whole or not at all (a temporary file beside, then a rename).
 *
 * @param arguments the target's arguments, as the replay command repeats them
 * @param scope     what was checked (the scratch copy, the export's first bytes, the class)
 * @param verdicts  one per check, in the order run
 * @param elapsed   the whole run's time
 */
record VerifyReport(String arguments, String scope, List<Verdict> verdicts, Duration elapsed) {

    /** The command that replays a failed check's seed. */
    String replay(Verdict v) {
        return "handoff verify " + arguments + " --check " + v.check().id() + " --seed " + v.failure().seed();
    }

    boolean passed() {
        return verdicts.stream().allMatch(v -> v.status() == Verdict.Status.PASSED
                || v.status() == Verdict.Status.SKIPPED);
    }

    long count(Verdict.Status status) {
        return verdicts.stream().filter(v -> v.status() == status).count();
    }

    /**
     * JUnit XML: a test suite named for the target, a test case per check (class name: the
     * check's group), a failure with the seed, what was seen and the replay command, skipped for a
     * check the target cannot support, an error for one the budget left unrun.
     */
    String junitXml() {
        StringBuilder x = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        x.append("<testsuite name=\"").append(xml("handoff verify " + arguments)).append("\" tests=\"")
                .append(verdicts.size()).append("\" failures=\"").append(count(Verdict.Status.FAILED))
                .append("\" errors=\"").append(count(Verdict.Status.NOT_RUN)).append("\" skipped=\"")
                .append(count(Verdict.Status.SKIPPED)).append("\" time=\"").append(seconds(elapsed))
                .append("\" timestamp=\"").append(Instant.now().truncatedTo(ChronoUnit.SECONDS)).append("\">\n");
        x.append("  <properties>\n    <property name=\"target\" value=\"").append(xml(arguments))
                .append("\"/>\n    <property name=\"on\" value=\"").append(xml(scope)).append("\"/>\n  </properties>\n");
        for (Verdict v : verdicts) {
            x.append("  <testcase classname=\"handoff.verify.").append(xml(v.check().group().name().toLowerCase(Locale.ROOT)))
                    .append("\" name=\"").append(xml(v.check().id())).append("\" time=\"").append(seconds(v.time()))
                    .append('"');
            switch (v.status()) {
                case PASSED -> x.append("/>\n");
                case FAILED -> x.append(">\n    <failure type=\"").append(v.check().id()).append("\" message=\"")
                        .append(xml("seed " + v.failure().seed() + ": " + firstLine(v.failure().detail())))
                        .append("\">").append(xml(v.check().clause() + "\n\nseed " + v.failure().seed() + ": "
                                + v.failure().detail() + "\n\nreplay: " + replay(v)))
                        .append("</failure>\n  </testcase>\n");
                case SKIPPED -> x.append(">\n    <skipped message=\"").append(xml(v.reason())).append("\"/>\n  </testcase>\n");
                case NOT_RUN -> x.append(">\n    <error type=\"not-run\" message=\"").append(xml("not run: " + v.reason()))
                        .append("\"/>\n  </testcase>\n");
            }
        }
        return x.append("</testsuite>\n").toString();
    }

    /** The report for people, in Markdown. */
    String markdown() {
        StringBuilder m = new StringBuilder();
        m.append("# handoff verify: ").append(passed() ? "passed" : "FAILED").append("\n\n");
        m.append("- target: `handoff verify ").append(arguments).append("`\n");
        m.append("- on: ").append(scope).append('\n');
        m.append("- ").append(summary()).append(", in ").append(seconds(elapsed)).append(" s\n\n");
        m.append("| group | check | verdict | seeds | time | note |\n|---|---|---|---:|---:|---|\n");
        for (Verdict v : verdicts) {
            m.append("| ").append(v.check().group().title()).append(" | `").append(v.check().id()).append("` | ")
                    .append(v.status() == Verdict.Status.FAILED ? "**FAILED**" : v.status().word).append(" | ")
                    .append(seedsCell(v)).append(" | ").append(timeCell(v)).append(" | ")
                    .append(cell(note(v))).append(" |\n");
        }
        for (Verdict v : verdicts) {
            if (v.status() == Verdict.Status.FAILED) {
                m.append("\n## `").append(v.check().id()).append("` failed\n\n");
                m.append("The clause: ").append(v.check().clause()).append("\n\n");
                m.append("Smallest failing seed: ").append(v.failure().seed()).append(" (after ").append(v.seeds())
                        .append(v.seeds() == 1 ? " seed" : " seeds").append(")\n\n");
                m.append("```\n").append(v.failure().detail().replace("```", "'''")).append("\n```\n\n");
                m.append("Replay:\n\n```\n").append(replay(v)).append("\n```\n");
            }
        }
        return m.toString();
    }

    /** The report for people, as one HTML page with no outside resources. */
    String html() {
        StringBuilder h = new StringBuilder();
        h.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>handoff verify: ")
                .append(passed() ? "passed" : "FAILED").append("</title>\n<style>\n")
                .append("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}")
                .append("td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}")
                .append(".failed{background:#fdd;font-weight:bold}.passed{background:#dfd}")
                .append(".skipped,.not-run{background:#eee}pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap}\n")
                .append("</style>\n</head>\n<body>\n");
        h.append("<h1>handoff verify: ").append(passed() ? "passed" : "FAILED").append("</h1>\n<ul>\n");
        h.append("<li>target: <code>handoff verify ").append(html(arguments)).append("</code></li>\n");
        h.append("<li>on: ").append(html(scope)).append("</li>\n");
        h.append("<li>").append(summary()).append(", in ").append(seconds(elapsed)).append(" s</li>\n</ul>\n");
        h.append("<table>\n<tr><th>group</th><th>check</th><th>verdict</th><th>seeds</th><th>time</th><th>note</th></tr>\n");
        for (Verdict v : verdicts) {
            String css = v.status().name().toLowerCase(Locale.ROOT).replace('_', '-');
            h.append("<tr><td>").append(html(v.check().group().title())).append("</td><td><code>")
                    .append(html(v.check().id())).append("</code></td><td class=\"").append(css).append("\">")
                    .append(html(v.status().word)).append("</td><td>").append(seedsCell(v)).append("</td><td>")
                    .append(timeCell(v)).append("</td><td>").append(html(note(v))).append("</td></tr>\n");
        }
        h.append("</table>\n");
        for (Verdict v : verdicts) {
            if (v.status() == Verdict.Status.FAILED) {
                h.append("<h2 id=\"").append(html(v.check().id())).append("\"><code>").append(html(v.check().id()))
                        .append("</code> failed</h2>\n");
                h.append("<p>The clause: ").append(html(v.check().clause())).append("</p>\n");
                h.append("<p>Smallest failing seed: ").append(v.failure().seed()).append("</p>\n");
                h.append("<pre>").append(html(v.failure().detail())).append("</pre>\n");
                h.append("<p>Replay:</p>\n<pre>").append(html(replay(v))).append("</pre>\n");
            }
        }
        return h.append("</body>\n</html>\n").toString();
    }

    String summary() {
        long notRun = count(Verdict.Status.NOT_RUN);
        return count(Verdict.Status.PASSED) + " passed, " + count(Verdict.Status.FAILED) + " failed, "
                + count(Verdict.Status.SKIPPED) + " skipped" + (notRun > 0 ? ", " + notRun + " not run (budget)" : "");
    }

    /** Writes {@code text} to {@code file} whole: a temporary file in its directory, then a rename. */
    static void write(Path file, String text) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        Path tmp = Files.createTempFile(dir, "." + file.getFileName(), ".tmp");
        try {
            Files.writeString(tmp, text, StandardCharsets.UTF_8);
            try {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static String note(Verdict v) {
        return switch (v.status()) {
            case FAILED -> "seed " + v.failure().seed() + ": " + firstLine(v.failure().detail());
            case SKIPPED, NOT_RUN -> v.reason();
            case PASSED -> v.reason() == null ? "" : v.reason();
        };
    }

    private static String seedsCell(Verdict v) {
        return v.status() == Verdict.Status.SKIPPED || v.status() == Verdict.Status.NOT_RUN ? "-" : String.valueOf(v.seeds());
    }

    private static String timeCell(Verdict v) {
        return v.status() == Verdict.Status.NOT_RUN ? "-" : seconds(v.time()) + " s";
    }

    private static String firstLine(String text) {
        return text.lines().findFirst().orElse("");
    }

    private static String seconds(Duration d) {
        return String.format(Locale.ROOT, "%.3f", d.toMillis() / 1000.0);
    }

    private static String cell(String text) {
        return text.replace("|", "\\|").replace("\n", " ");
    }

    private static String xml(String text) {
        StringBuilder out = new StringBuilder();
        for (char c : text.toCharArray()) {
            switch (c) {
                case '&' -> out.append("&amp;");
                case '<' -> out.append("&lt;");
                case '>' -> out.append("&gt;");
                case '"' -> out.append("&quot;");
                default -> {
                    if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') {
                        out.append('?');
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.toString();
    }

    private static String html(String text) {
        return xml(text);
    }
}
