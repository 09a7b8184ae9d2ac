package dev.handoff.specs;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * A TLC counterexample as a PlantUML sequence diagram: one lifeline per actor and per piece of
 * state ({@link Cast}), one arrow per step from the lifeline that acts to each lifeline whose state
 * the step changed, labelled with the state's number, the spec's action, the Java it models and
 * the values that changed. The first state is a note over every lifeline; the violation closes
 * the diagram; the loop of a liveness counterexample is a group that repeats forever.
 *
 * <p>The text depends only on the trace, the spec's text and the cast: TLC's counterexamples are
 * deterministic (one worker, a fixed fingerprint function), so a committed diagram is stale
 * exactly when this text changes.
 */
final class SequenceDiagram {
    /** Widest line of a label or note, in characters, before it wraps. */
    private static final int WIDTH = 72;
    /** Stands for the first and last lifeline shown until the body is written. */
    private static final String SPAN = "\u0000span\u0000";

    private SequenceDiagram() {
    }

    /**
     * @param title    the diagram's title
     * @param trace    TLC's counterexample
     * @param spec     the spec's text (action names, Java, the property's meaning)
     * @param cast     the lifelines
     * @param property the violated invariant or property
     * @param kind     "invariant", "action property" or "temporal property"
     */
    static String render(String title, TlcTrace trace, SpecSource spec, Cast cast, String property, String kind) {
        List<TlcTrace.State> states = trace.states();
        TlcTrace.State first = states.get(0);
        List<Cast.Lifeline> lifelines = cast.lifelines(first);
        StringBuilder header = new StringBuilder();
        StringBuilder out = new StringBuilder();
        header.append("@startuml\n");
        header.append("' Generated from TLC's counterexample by the specs module (ModelsTest); do not edit.\n");
        header.append("skinparam shadowing false\n");
        header.append("title ").append(escape(title)).append('\n');
        Set<String> used = new LinkedHashSet<>();

        out.append("note over ").append(SPAN).append('\n');
        out.append("**1** initial state\n");
        Map<String, List<String>> byLifeline = new LinkedHashMap<>();
        for (Map.Entry<String, TlaValue> e : first.vars().entrySet()) {
            if (cast.hidden().contains(e.getKey())) {
                continue;
            }
            if (cast.processVars().contains(e.getKey()) && !cast.owners().containsKey(e.getKey())
                    && e.getValue() instanceof TlaValue.Fn fn) {
                fn.entries().forEach((k, v) -> byLifeline.computeIfAbsent(k, x -> new ArrayList<>())
                        .add(e.getKey() + " = " + v.text()));
            } else {
                String owner = cast.owner(e.getKey(), null);
                byLifeline.computeIfAbsent(owner == null ? "ghost" : owner, x -> new ArrayList<>())
                        .add(e.getKey() + " = " + e.getValue().text());
            }
        }
        for (Cast.Lifeline l : lifelines) {
            List<String> values = byLifeline.remove(l.id());
            if (values != null) {
                used.add(l.id());
                out.append(wrap(escape(l.label() + ": " + String.join("; ", values)), "  ")).append('\n');
            }
        }
        byLifeline.forEach((k, values) -> out.append(wrap(escape(k + ": " + String.join("; ", values)), "  "))
                .append('\n'));
        out.append("end note\n");

        for (int i = 1; i < states.size(); i++) {
            if (trace.loopsBackTo() > 0 && states.get(i).number() == trace.loopsBackTo() + 1) {
                out.append("group loop [repeats forever from state ").append(trace.loopsBackTo()).append("]\n");
            }
            step(out, used, states.get(i - 1), states.get(i), states.get(i).action(),
                    String.valueOf(states.get(i).number()), spec, cast, first);
        }
        TlcTrace.State last = states.get(states.size() - 1);
        if (trace.loopsBackTo() > 0) {
            TlcTrace.State back = states.get(trace.loopsBackTo() - 1);
            step(out, used, last, back, trace.loopAction(), "back to " + back.number(), spec, cast, first);
            out.append("end\n");
        }

        out.append("note over ").append(SPAN).append(" #FFE0E0\n");
        String meaning = spec.comment(property);
        if (kind.equals("invariant")) {
            out.append("**").append(property).append("** (invariant) is false in state ").append(last.number())
                    .append('\n');
        } else if (kind.equals("action property")) {
            out.append("**").append(property).append("** (action property) is false of the step into state ")
                    .append(last.number()).append('\n');
        } else if (trace.stutters()) {
            out.append("**").append(property).append("** (temporal property) never holds: after state ")
                    .append(last.number()).append(" nothing happens, forever\n");
        } else {
            out.append("**").append(property).append("** (temporal property) never holds: states ")
                    .append(trace.loopsBackTo()).append(" to ").append(last.number()).append(" repeat forever\n");
        }
        if (!meaning.isEmpty()) {
            out.append(prose(escape(meaning))).append('\n');
        }
        out.append("end note\n");
        out.append("@enduml\n");
        // Only the lifelines that hold state or take part in a step, in the cast's order.
        List<Cast.Lifeline> shown = lifelines.stream().filter(l -> used.contains(l.id())).toList();
        for (Cast.Lifeline l : shown) {
            header.append(l.kind()).append(" \"").append(l.label()).append("\" as ").append(l.id()).append('\n');
        }
        String span = shown.get(0).id() + ", " + shown.get(shown.size() - 1).id();
        return header + out.toString().replace(SPAN, span);
    }

    /** One step: arrows from the actor to each lifeline it changed, and notes for its own state. */
    private static void step(StringBuilder out, Set<String> used, TlcTrace.State from, TlcTrace.State to, TlcTrace.Action action,
                             String number, SpecSource spec, Cast cast, TlcTrace.State first) {
        String name = spec.actionOf(action, cast.containers());
        Map<String, List<String>> changes = new LinkedHashMap<>();
        Set<String> changedProcesses = new LinkedHashSet<>();
        List<String> ghosts = new ArrayList<>();
        for (Map.Entry<String, TlaValue> e : to.vars().entrySet()) {
            String var = e.getKey();
            TlaValue before = from.vars().get(var);
            if (cast.hidden().contains(var) || Objects.equals(before, e.getValue())) {
                continue;
            }
            if (cast.ghosts().contains(var)) {
                ghosts.add(var + " = " + e.getValue().text());
                continue;
            }
            boolean perProcess = cast.processVars().contains(var) && !cast.owners().containsKey(var);
            if (perProcess && before instanceof TlaValue.Fn b && e.getValue() instanceof TlaValue.Fn a
                    && b.entries().keySet().equals(a.entries().keySet())) {
                for (String key : a.entries().keySet()) {
                    List<String> diffs = new ArrayList<>();
                    TraceDiff.diff(var, b.entries().get(key), a.entries().get(key), diffs);
                    if (!diffs.isEmpty()) {
                        changedProcesses.add(key);
                        changes.computeIfAbsent(key, k -> new ArrayList<>()).addAll(diffs);
                    }
                }
            } else {
                String owner = cast.owner(var, null);
                List<String> diffs = new ArrayList<>();
                TraceDiff.diff(var, before, e.getValue(), diffs);
                changes.computeIfAbsent(owner == null ? "ghost" : owner, k -> new ArrayList<>()).addAll(diffs);
            }
        }
        String actor = cast.actor(name);
        if (actor.equals(Cast.PROCESS)) {
            actor = changedProcesses.isEmpty() ? cast.processes(first).get(0) : changedProcesses.iterator().next();
        }
        String java = spec.java(name);
        String head = "**" + number + "** " + name + (java == null || java.equals("environment") ? "" : " (" + java + ")");
        used.add(actor);
        used.addAll(changes.keySet());
        used.remove("ghost");
        List<String> own = changes.remove(actor);
        List<String> order = cast.lifelines(first).stream().map(Cast.Lifeline::id).toList();
        List<String> others = new ArrayList<>(changes.keySet());
        others.remove("ghost");
        others.sort(Comparator.comparingInt(order::indexOf));
        if (changes.containsKey("ghost")) {
            ghosts.addAll(0, changes.get("ghost"));
        }
        if (others.isEmpty()) {
            out.append(actor).append(" -> ").append(actor).append(" : ").append(label(head, own)).append('\n');
        } else {
            boolean firstArrow = true;
            for (String target : others) {
                out.append(actor).append(" -> ").append(target).append(" : ")
                        .append(label(firstArrow ? head : null, changes.get(target))).append('\n');
                firstArrow = false;
            }
            if (own != null && !own.isEmpty()) {
                out.append("hnote over ").append(actor).append(" : ").append(label(null, own)).append('\n');
            }
        }
        if (!ghosts.isEmpty()) {
            out.append("rnote over ").append(actor).append(" #FFF0C0 : ").append(label("ghost", ghosts)).append('\n');
        }
    }

    /** A message label: the head, then the changes, PlantUML's {@code \n} between lines. */
    private static String label(String head, List<String> lines) {
        List<String> all = new ArrayList<>();
        if (head != null) {
            all.add(head);
        }
        if (lines != null) {
            for (String l : lines) {
                all.addAll(List.of(wrap(escape(l), "  ").split("\n")));
            }
        }
        return String.join("\\n", all);
    }

    /** Keeps PlantUML from reading a value's characters as markup. */
    static String escape(String text) {
        return text.replace("~", "~~").replace("<", "~<").replace("__", "~__").replace("--", "~--").replace("//", "~//")
                .replace("\"\"", "~\"\"");
    }

    /** Breaks prose between words so that no line is wider than {@link #WIDTH} plus a word. */
    static String prose(String text) {
        StringBuilder out = new StringBuilder();
        int length = 0;
        for (String word : text.split(" ")) {
            if (length > 0 && length + word.length() > WIDTH + 16) {
                out.append('\n');
                length = 0;
            } else if (length > 0) {
                out.append(' ');
                length++;
            }
            out.append(word);
            length += word.length();
        }
        return out.toString();
    }

    /** Breaks {@code text} after ", " or "; " so that no line is much wider than {@link #WIDTH}. */
    static String wrap(String text, String indent) {
        List<String> parts = new ArrayList<>();
        int start = 0;
        for (int j = 0; j + 1 < text.length(); j++) {
            if ((text.charAt(j) == ',' || text.charAt(j) == ';') && text.charAt(j + 1) == ' ') {
                parts.add(text.substring(start, j + 2));
                start = j + 2;
                j++;
            }
        }
        parts.add(text.substring(start));
        StringBuilder out = new StringBuilder();
        int length = 0;
        for (String part : parts) {
            if (length > indent.length() && length + part.length() > WIDTH) {
                out.setLength(out.length() - 1);
                out.append('\n').append(indent);
                length = indent.length();
            }
            out.append(part);
            length += part.length();
        }
        return out.toString();
    }
}
