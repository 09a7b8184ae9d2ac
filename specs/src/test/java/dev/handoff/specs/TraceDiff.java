package dev.handoff.specs;

import java.util.List;
import java.util.Objects;

/**
 * What a step changed in one variable, at the finest grain the two values share: a record's
 * changed fields, a function's or sequence's changed entries, or else the whole new value.
 * {@code gs[g1].pc} changing from "idle" to "bgSource" is {@code gs.pc = "bgSource"} under guest g1's
 * lifeline; {@code src = <<<<1, 1>>>>} becoming {@code <<<<2, 1>>>>} is {@code src[1][1] = 2}.
 */
final class TraceDiff {
    private TraceDiff() {
    }

    /** Appends {@code path = value} for each change from {@code before} to {@code after}. */
    static void diff(String path, TlaValue before, TlaValue after, List<String> out) {
        if (Objects.equals(before, after)) {
            return;
        }
        if (before instanceof TlaValue.Rec b && after instanceof TlaValue.Rec a
                && b.fields().keySet().equals(a.fields().keySet())) {
            a.fields().forEach((k, v) -> diff(path + "." + k, b.fields().get(k), v, out));
        } else if (before instanceof TlaValue.Fn b && after instanceof TlaValue.Fn a
                && b.entries().keySet().equals(a.entries().keySet())) {
            a.entries().forEach((k, v) -> diff(path + "[" + k + "]", b.entries().get(k), v, out));
        } else if (before instanceof TlaValue.Seq b && after instanceof TlaValue.Seq a
                && b.items().size() == a.items().size() && !a.items().isEmpty()) {
            for (int i = 0; i < a.items().size(); i++) {
                diff(path + "[" + (i + 1) + "]", b.items().get(i), a.items().get(i), out);
            }
        } else {
            out.add(path + " = " + after.text());
        }
    }
}
