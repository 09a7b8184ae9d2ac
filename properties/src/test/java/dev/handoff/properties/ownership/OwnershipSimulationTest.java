package dev.handoff.properties.ownership;

import dev.handoff.properties.sim.PropertyViolation;
import dev.handoff.properties.sim.Seeds;
import org.junit.jupiter.api.Test;


import static org.assertj.core.api.Assertions.assertThat;

/**
 * Runs the ownership simulator ({@link OwnershipSimulation}, which lists the properties) on many
 * seeds. Each property is shown able to fail by the broken variants of {@code OwnedImage} in the
 * mutant catalog ({@code mutants/catalog.json}), each of which must fire its named property here.
 *
 * <p>Rerun one seed: {@code mvn -B -pl properties -am verify -Dtest=OwnershipSimulationTest
 * -Dhandoff.seed=S -Dsurefire.failIfNoSpecifiedTests=false -Dhandoff.failIfNoTests=false}.
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

    static OwnershipSimulation.Outcome runSeed(long seed) {
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
        long faults = 0;
        long powerLosses = 0;
        long t0 = System.nanoTime();
        for (long seed = first; seed < first + n; seed++) {
            OwnershipSimulation.Outcome o = runSeed(seed);
            activations += o.activations();
            faults += o.faultsFired();
            powerLosses += o.powerLosses();
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.out.printf("ownership simulation: %d seeds in %.1f s (%.0f seeds/s), %d activations, %d faults fired,"
                + " %d power losses%n", n, seconds, n / seconds, activations, faults, powerLosses);
        assertThat(activations).as("activations across the seeds").isGreaterThan(n);
        assertThat(faults).as("injected faults that fired across the seeds").isGreaterThan(n / 4);
        assertThat(powerLosses).as("power losses across the seeds").isGreaterThan(n / 4);
    }

    @Test
    void regressionSeedsStillPass() {
        for (long seed : Seeds.regression(OwnershipSimulationTest.class, "ownership-regression-seeds.txt")) {
            runSeed(seed);
        }
    }
}
