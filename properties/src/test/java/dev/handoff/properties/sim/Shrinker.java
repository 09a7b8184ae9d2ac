package dev.handoff.properties.sim;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * Delta debugging over an action list: removes chunks of actions, halving the chunk size down to
 * single actions, keeping every removal after which the run still fails (the predicate decides:
 * "fails with the same property"). Then drops everything after the failing action. The result is
 * 1-minimal: removing any single action makes the failure go away.
 */
public final class Shrinker {
    private Shrinker() {
    }

    /** Shrinks {@code actions}, which must fail; {@code maxRuns} bounds the work. */
    public static <A> List<A> shrink(List<A> actions, Predicate<List<A>> stillFails, int maxRuns) {
        List<A> current = new ArrayList<>(actions);
        int runs = 0;
        int chunk = Math.max(1, current.size() / 2);
        while (runs < maxRuns) {
            boolean removedAny = false;
            for (int start = 0; start < current.size() && runs < maxRuns; ) {
                int end = Math.min(current.size(), start + chunk);
                List<A> candidate = new ArrayList<>(current.subList(0, start));
                candidate.addAll(current.subList(end, current.size()));
                runs++;
                if (stillFails.test(candidate)) {
                    current = candidate;
                    removedAny = true;
                } else {
                    start = end;
                }
            }
            if (chunk == 1 && !removedAny) {
                break;
            }
            if (!removedAny) {
                chunk = Math.max(1, chunk / 2);
            }
        }
        return current;
    }
}
