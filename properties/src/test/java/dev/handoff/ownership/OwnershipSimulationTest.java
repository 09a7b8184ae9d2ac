package dev.handoff.ownership;

import dev.handoff.sim.PropertyViolation;
import dev.handoff.sim.Seeds;
import org.junit.jupiter.api.Test;


import static org.assertj.core.api.Assertions.assertThat;

/**
 * Runs the ownership simulator ({@link OwnershipSimulation}, which lists the properties) on many
 * seeds. Each property is shown able to fail by the broken variants of {@code OwnedImage} in the
 * mutant catalog ({@code mutants/catalog.json}), each of which must fire its named property here.
 *
 * <p>Rerun one seed: {@code mvn -B -q -pl kernel -am install -DskipTests && mvn -B -pl properties
 * verify -Dtest=OwnershipSimulationTest -Dhandoff.seed=S}.
 */
class OwnershipSimulationTest {
    static final int DEFAULT_SEEDS = 2_000;
    static final int MAX_ACTIONS = 120;

    static OwnershipScenario scenario(long seed) {
        return OwnershipScenario.generate(seed, MAX_ACTIONS, seed % 4 == 0);
    }

    static PropertyViolation check(OwnershipScenario s) {
        try {
            new OwnershipSimulation(s).run();
            return null;
        } catch (PropertyViolation v) {
            return v;
        }
    }

    static int runSeed(long seed) {
        OwnershipScenario s = scenario(seed);
        try {
            return new OwnershipSimulation(s).run();
        } catch (PropertyViolation v) {
            throw Seeds.report("ownership simulation", seed, v, "size " + s.size() + ", header " + s.headerBytes(),
                    s.actions(), actions -> check(s.withActions(actions)),
                    Seeds.replayCommand("OwnershipSimulationTest", seed));
        }
    }

    @Test
    void everySeedKeepsEveryProperty() {
        Long only = Seeds.single();
        if (only != null) {
            runSeed(only);
            return;
        }
        int n = Seeds.count(DEFAULT_SEEDS);
        long first = Seeds.first();
        long activations = 0;
        long t0 = System.nanoTime();
        for (long seed = first; seed < first + n; seed++) {
            activations += runSeed(seed);
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.out.printf("ownership simulation: %d seeds in %.1f s (%.0f seeds/s), %d activations%n", n, seconds,
                n / seconds, activations);
        assertThat(activations).as("activations across the seeds").isGreaterThan(n);
    }

    @Test
    void regressionSeedsStillPass() {
        for (long seed : Seeds.regression(OwnershipSimulationTest.class, "ownership-regression-seeds.txt")) {
            runSeed(seed);
        }
    }
}
