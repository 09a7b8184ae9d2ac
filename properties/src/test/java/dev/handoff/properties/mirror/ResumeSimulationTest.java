package dev.handoff.properties.mirror;

import dev.handoff.properties.sim.Seeds;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Runs the restarting simulator ({@link ResumeSimulation}, which lists the properties) on many
 * seeds, each with up to four crashes (power losses) and as many restarts, including crashes during
 * a resume and during the final drain's flush.
 *
 * <p>Rerun one seed: {@code mvn -B -pl properties -am verify -Dhandoff.failIfNoTests=false
 * -Dsurefire.failIfNoSpecifiedTests=false -Dtest=ResumeSimulationTest -Dhandoff.seed=S} (add
 * {@code -Dhandoff.trace=true} for every step); a soak: {@code -Dhandoff.seeds=100000}.
 */
class ResumeSimulationTest {
    static final int DEFAULT_SEEDS = 2_000;
    static final int MAX_CRASHES = 4;

    @Test
    void everySeedResumesAfterItsCrashesAndKeepsEveryProperty() {
        boolean trace = Boolean.getBoolean("handoff.trace");
        Long only = Seeds.single();
        if (only != null) {
            new ResumeSimulation(only, MAX_CRASHES, trace).run();
            return;
        }
        int seeds = Seeds.count(DEFAULT_SEEDS);
        long first = Seeds.first();
        long crashes = 0;
        long withCrash = 0;
        long copiedAgain = 0;
        long restarts = 0;
        long inDrain = 0;
        for (long seed = first; seed < first + seeds; seed++) {
            ResumeSimulation.Result r = new ResumeSimulation(seed, MAX_CRASHES, trace).run();
            crashes += r.crashes();
            restarts += r.restarts();
            copiedAgain += r.copiedAgain();
            inDrain += r.crashesInDrain();
            if (r.crashes() > 0) {
                withCrash++;
            }
        }
        System.out.printf("resume simulation: %d seeds, %d with a crash, %d crashes (%d in the final drain), %d restarts,"
                + " %.1f%% of the device copied again per restart on average%n", seeds, withCrash, crashes, inDrain,
                restarts, restarts == 0 ? 0.0 : 100.0 * copiedAgain / restarts / ResumeSimulation.SIZE);
        assertThat(withCrash).as("seeds whose run crashed at least once").isGreaterThanOrEqualTo(seeds * 9L / 10);
        if (seeds >= 1_000) {
            assertThat(inDrain).as("crashes during the final drain and its flush").isPositive();
        }
    }
}
