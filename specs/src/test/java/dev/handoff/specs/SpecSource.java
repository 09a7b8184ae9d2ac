package dev.handoff.specs;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What a counterexample's reader needs from a spec's text: each definition's comment (for an
 * invariant, what it means), the Java an action models (its first {@code @java} tag), and the
 * operator an inline step of the next-state relation applies.
 */
final class SpecSource {
    private static final Pattern DEF = Pattern.compile("^(\\w+)(\\([^)]*\\))? ==");
    private static final Pattern TAG = Pattern.compile("@java (\\w+\\.\\w+):");
    private static final Pattern ENV = Pattern.compile("@env\\b");
    private static final Pattern APPLIED = Pattern.compile("([A-Z]\\w*)\\(");

    private final List<String> lines;
    private final Map<String, String> comments = new HashMap<>();
    private final Map<String, String> java = new HashMap<>();

    private SpecSource(List<String> lines) {
        this.lines = lines;
        for (int i = 0; i < lines.size(); i++) {
            Matcher def = DEF.matcher(lines.get(i));
            if (!def.find()) {
                continue;
            }
            StringBuilder comment = new StringBuilder();
            int j = i - 1;
            while (j >= 0 && (lines.get(j).startsWith("(*") || lines.get(j).startsWith("\\*"))) {
                j--;
            }
            String tagged = null;
            for (int k = j + 1; k < i; k++) {
                String raw = lines.get(k);
                Matcher tag = TAG.matcher(raw);
                if (tag.find()) {
                    tagged = tagged == null ? tag.group(1) : tagged;
                    continue;
                }
                if (ENV.matcher(raw).find()) {
                    tagged = tagged == null ? "environment" : tagged;
                    continue;
                }
                String text = raw.replaceFirst("^\\(\\*", "").replaceFirst("\\*\\)\\s*$", "")
                        .replaceFirst("^\\\\\\*", "").strip();
                if (!text.isEmpty() && !text.matches("[-=* ]+")) {
                    comment.append(comment.length() == 0 ? "" : " ").append(text);
                }
            }
            comments.putIfAbsent(def.group(1), comment.toString().replaceAll("\\s+", " "));
            if (tagged != null) {
                java.putIfAbsent(def.group(1), tagged);
            }
        }
    }

    static SpecSource read(Path tla) throws IOException {
        return new SpecSource(Files.readAllLines(tla, StandardCharsets.UTF_8));
    }

    /** The comment above {@code name}'s definition, on one line, without tags; "" if none. */
    String comment(String name) {
        return comments.getOrDefault(name, "");
    }

    /** {@code Class.method} of the action's first {@code @java} tag, "environment", or null. */
    String java(String action) {
        return java.get(action);
    }

    /**
     * The action a step took: the operator TLC names, or for an inline step (TLC names the
     * definition it is written in, one of {@code containers} such as {@code Next}) the last
     * operator applied in its text.
     */
    String actionOf(TlcTrace.Action action, List<String> containers) {
        if (!containers.contains(action.name()) || action.line() < 1 || action.endLine() > lines.size()) {
            return action.name();
        }
        StringBuilder text = new StringBuilder();
        for (int l = action.line(); l <= action.endLine(); l++) {
            String line = lines.get(l - 1);
            int from = l == action.line() ? Math.min(line.length(), action.column() - 1) : 0;
            int to = l == action.endLine() ? Math.min(line.length(), action.endColumn()) : line.length();
            text.append(line, from, Math.max(from, to)).append(' ');
        }
        String last = action.name();
        Matcher m = APPLIED.matcher(text);
        while (m.find()) {
            last = m.group(1);
        }
        return last;
    }
}
