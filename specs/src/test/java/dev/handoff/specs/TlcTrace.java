package dev.handoff.specs;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The counterexample in TLC's output, as states: each with the action that led to it (the
 * operator's name, or the source position TLC gives when the step is not a named operator)
 * and its variables' values. A liveness counterexample ends in a loop ({@code Back to state N})
 * or in stuttering.
 *
 * @param states     the states, the first one initial (its action is {@code null})
 * @param loopsBackTo for a lasso, the number of the state the last step returns to; 0 otherwise
 * @param loopAction  the action of that last step, or {@code null}
 * @param stutters    whether the behaviour ends by stuttering forever
 */
record TlcTrace(List<State> states, int loopsBackTo, Action loopAction, boolean stutters) {

    /**
     * The step into a state: the operator TLC names, or {@code null} with the position of an
     * inline action ({@code <Next line 999, col 26 to line 999, col 75 of module MirrorCopy>}).
     */
    record Action(String name, String module, int line, int column, int endLine, int endColumn) {
    }

    /** One state of the counterexample: its number (from 1), how it was reached, its variables. */
    record State(int number, Action action, Map<String, TlaValue> vars) {
    }

    private static final Pattern STATE = Pattern.compile("^State (\\d+): (.*)$");
    private static final Pattern BACK = Pattern.compile("^Back to state (\\d+): (.*)$");
    private static final Pattern ACTION = Pattern.compile(
            "^<(\\w+)? ?line (\\d+), col (\\d+) to line (\\d+), col (\\d+) of module (\\w+)>$");
    private static final Pattern VAR = Pattern.compile("^/\\\\ (\\w+) = (.*)$");

    /** Reads the first counterexample in {@code output}; fails if there is none. */
    static TlcTrace parse(String output) {
        List<State> states = new ArrayList<>();
        int loop = 0;
        Action loopAction = null;
        boolean stutters = false;
        int number = -1;
        Action action = null;
        Map<String, TlaValue> vars = null;
        String var = null;
        StringBuilder value = new StringBuilder();
        for (String line : output.split("\\R", -1)) {
            Matcher state = STATE.matcher(line);
            Matcher back = BACK.matcher(line);
            Matcher v = VAR.matcher(line);
            if (state.matches() || back.matches() || (line.isBlank() && vars != null)
                    || line.startsWith("Finished") || line.matches("^\\d+ states generated.*")) {
                if (var != null) {
                    vars.put(var, TlaValue.parse(value.toString()));
                    var = null;
                }
                if (vars != null) {
                    states.add(new State(number, action, vars));
                    vars = null;
                }
                if (state.matches()) {
                    if (state.group(2).equals("Stuttering")) {
                        stutters = true;
                        break;
                    }
                    number = Integer.parseInt(state.group(1));
                    action = state.group(2).equals("<Initial predicate>") ? null : action(state.group(2));
                    vars = new LinkedHashMap<>();
                } else if (back.matches()) {
                    loop = Integer.parseInt(back.group(1));
                    loopAction = action(back.group(2));
                    break;
                } else if (!states.isEmpty() && !line.isBlank()) {
                    break;
                }
            } else if (vars != null && v.matches()) {
                if (var != null) {
                    vars.put(var, TlaValue.parse(value.toString()));
                }
                var = v.group(1);
                value.setLength(0);
                value.append(v.group(2));
            } else if (var != null) {
                value.append('\n').append(line);
            }
        }
        if (states.isEmpty()) {
            throw new IllegalArgumentException("no counterexample in TLC's output");
        }
        return new TlcTrace(List.copyOf(states), loop, loopAction, stutters);
    }

    private static Action action(String text) {
        Matcher m = ACTION.matcher(text.strip());
        if (!m.matches()) {
            throw new IllegalArgumentException("not an action: " + text);
        }
        return new Action(m.group(1), m.group(6), Integer.parseInt(m.group(2)), Integer.parseInt(m.group(3)),
                Integer.parseInt(m.group(4)), Integer.parseInt(m.group(5)));
    }
}
