package dev.handoff.cli;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** The demo's table of checks: each claim, its result, ok or FAILED; printed at the end. Not thread-safe. */
final class DemoReport {
    private final PrintStream out;
    private final List<String[]> rows = new ArrayList<>();
    private final List<String> failures = new ArrayList<>();

    DemoReport(PrintStream out) {
        this.out = out;
    }

    /** A checked claim. */
    void check(String check, boolean ok, String result) {
        rows.add(new String[] {check, result, ok ? "ok" : "FAILED"});
        if (!ok) {
            failures.add(check + ": " + result);
        }
    }

    /** A line for information, always ok. */
    void note(String what, String result) {
        rows.add(new String[] {what, result, "ok"});
    }

    boolean passed() {
        return failures.isEmpty();
    }

    void print(double seconds) {
        out.println();
        int w = rows.stream().mapToInt(r -> r[0].length()).max().orElse(10);
        out.println(String.format(Locale.ROOT, "%-" + w + "s  %-6s %s", "check", "", "result"));
        for (String[] r : rows) {
            out.println(String.format(Locale.ROOT, "%-" + w + "s  %-6s %s", r[0], r[2], r[1]));
        }
        out.println();
        if (failures.isEmpty()) {
            out.println(String.format(Locale.ROOT, "demo passed in %.1f s", seconds));
        } else {
            out.flush();
            System.err.println("handoff demo: FAILED: " + failures.get(0));
        }
        out.flush();
    }
}
