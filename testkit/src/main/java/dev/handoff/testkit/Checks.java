package dev.handoff.testkit;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Every check of the kit, and the run settings shared by its runners (the JUnit entry point
 * {@link DeviceKit} and {@code handoff verify}).
 *
 * <p>System properties: {@code -Dhandoff.kit.seed=S} runs seed S only (what a failure's replay
 * line sets), {@code -Dhandoff.kit.seeds=N} runs N seeds of every check that draws at random
 * (default: each check's own, 1 to 5), {@code -Dhandoff.kit.check=ID} runs that check only,
 * {@code -Dhandoff.kit.limit=SECONDS} fails a seed that runs longer (default 60).
 */
public final class Checks {
    private Checks() {
    }

    /** Every check, in the order a report lists them: sequential, concurrent, faults, mirror, ownership. */
    public static List<Check> all() {
        List<Check> all = new ArrayList<>();
        all.addAll(SequentialChecks.all());
        all.addAll(ConcurrentChecks.all());
        all.addAll(FaultChecks.all());
        all.addAll(MirrorChecks.all());
        all.addAll(OwnershipChecks.all());
        return List.copyOf(all);
    }

    /** The checks of one group. */
    public static List<Check> of(Check.Group group) {
        return all().stream().filter(c -> c.group() == group).toList();
    }

    /** The check named {@code id}. */
    public static Optional<Check> byId(String id) {
        return all().stream().filter(c -> c.id().equals(id)).findFirst();
    }

    /** The seeds to run for {@code check}: the one asked for, else 1 to N. */
    static long[] seeds(Check check) {
        String one = System.getProperty("handoff.kit.seed", "").trim();
        if (!one.isEmpty()) {
            return new long[] {Long.parseLong(one)};
        }
        String n = System.getProperty("handoff.kit.seeds", "").trim();
        int count = n.isEmpty() || check.defaultSeeds() == 1 ? check.defaultSeeds() : Integer.parseInt(n);
        long[] seeds = new long[count];
        for (int i = 0; i < count; i++) {
            seeds[i] = i + 1;
        }
        return seeds;
    }

    /** Whether the run asked for {@code check} ({@code -Dhandoff.kit.check}). */
    static boolean selected(Check check) {
        String only = System.getProperty("handoff.kit.check", "").trim();
        return only.isEmpty() || only.equals(check.id());
    }

    /** How long one seed of a check may run. */
    static Duration limit() {
        String s = System.getProperty("handoff.kit.limit", "").trim();
        return Duration.ofSeconds(s.isEmpty() ? 60 : Long.parseLong(s));
    }
}
