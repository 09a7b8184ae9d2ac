package dev.handoff.properties.sim;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * Which seeds a simulation test runs, and how a failure is reported.
 *
 * <ul>
 *   <li>{@code -Dhandoff.seed=S} runs seed S only (the replay command a failure prints);</li>
 *   <li>{@code -Dhandoff.seeds=N} runs N consecutive seeds from {@code -Dhandoff.firstSeed}
 *       (default 1), for soaks;</li>
 *   <li>a regression file on the test classpath lists seeds that once failed, one per line
 *       ({@code #} comments), replayed on every run;</li>
 *   <li>{@code -Dhandoff.shrink=false} reports a failing run without shrinking it (the
 *       broken-variant catalog only needs the property that fired).</li>
 * </ul>
 */
public final class Seeds {
    private static final boolean SHRINK = !"false".equals(System.getProperty("handoff.shrink", "").trim());

    private Seeds() {
    }

    /** The one seed asked for with -Dhandoff.seed, or null. */
    public static Long single() {
        String s = System.getProperty("handoff.seed", "").trim();
        return s.isEmpty() ? null : Long.parseLong(s);
    }

    /** How many seeds to run: -Dhandoff.seeds, else {@code dflt}. */
    public static int count(int dflt) {
        String s = System.getProperty("handoff.seeds", "").trim();
        return s.isEmpty() ? dflt : Integer.parseInt(s);
    }

    public static long first() {
        String s = System.getProperty("handoff.firstSeed", "").trim();
        return s.isEmpty() ? 1 : Long.parseLong(s);
    }

    /**
     * Seeds listed in a classpath resource (a regression file) beside {@code owner}. A missing file
     * is an error, not an empty list: a file left behind by a package move must not silently run
     * no regression seeds.
     */
    public static List<Long> regression(Class<?> owner, String resource) {
        List<Long> seeds = new ArrayList<>();
        try (InputStream in = owner.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("regression seed file " + resource + " is not beside "
                        + owner.getName() + " on the test classpath");
            }
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                String s = line.replaceFirst("#.*", "").trim();
                if (!s.isEmpty()) {
                    seeds.add(Long.parseLong(s));
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return seeds;
    }

    /**
     * Turns a failing run into a report: the violation, the scenario's configuration, the action
     * list shrunk to a minimal one that fails the same property, and the command that replays it.
     * {@code seed} -1 for a run that did not come from a seed (fuzzer input).
     */
    public static <A> AssertionError report(String what, long seed, PropertyViolation failure, String config,
            List<A> actions, Function<List<A>, PropertyViolation> rerun, String replay) {
        Predicate<List<A>> sameFailure = candidate -> {
            PropertyViolation v = rerun.apply(candidate);
            return v != null && v.property().equals(failure.property());
        };
        List<A> shrunk = SHRINK ? Shrinker.shrink(actions, sameFailure, 3_000) : actions;
        PropertyViolation shrunkFailure = SHRINK ? rerun.apply(shrunk) : null;
        StringBuilder b = new StringBuilder();
        b.append(what).append(seed >= 0 ? " seed " + seed : "").append(" failed: ").append(failure.getMessage())
                .append('\n');
        b.append("config: ").append(config).append('\n');
        b.append(SHRINK ? "shrunk from " + actions.size() + " to " + shrunk.size() + " actions"
                : "not shrunk (-Dhandoff.shrink=false): " + actions.size() + " actions");
        if (shrunkFailure != null) {
            b.append(", which fail with: ").append(shrunkFailure.getMessage());
        }
        b.append('\n');
        for (int i = 0; i < shrunk.size(); i++) {
            b.append(String.format("  %3d %s%n", i, shrunk.get(i)));
        }
        b.append("replay: ").append(replay).append('\n');
        AssertionError e = new AssertionError(b.toString(), failure);
        return e;
    }

    /** The replay command line for one seed of a test class in this module. */
    public static String replayCommand(String testClass, long seed) {
        return "mvn -B -pl properties -am verify -Dhandoff.failIfNoTests=false"
                + " -Dsurefire.failIfNoSpecifiedTests=false -Dtest=" + testClass + " -Dhandoff.seed=" + seed;
    }
}
