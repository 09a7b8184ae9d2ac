package dev.handoff.properties.mirror;

import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.ErrorPolicy;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.SyncMode;
import dev.handoff.properties.sim.PropertyViolation;
import dev.handoff.properties.sim.Seeds;
import org.junit.jupiter.api.Test;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Runs the mirror simulator ({@link MirrorSimulation}, which lists the properties) on many seeds.
 *
 * <p>Catches (see {@code MirrorBrokenVariantTest} and the mutant catalog): lost updates from
 * marking before writing or clearing after reading, overlapping copies, READY or a pivot with a
 * copy in flight, an {@code ignore} policy that clears the chunk, a pivot without the target
 * flush, wrong error actions, a copier that stalls.
 *
 * <p>Rerun one seed: {@code mvn -B -pl properties -am verify -Dhandoff.failIfNoTests=false
 * -Dsurefire.failIfNoSpecifiedTests=false -Dtest=MirrorSimulationTest -Dhandoff.seed=S} (add {@code -Dhandoff.trace=true} for every
 * task and event); a soak: {@code -Dhandoff.seeds=100000 -Dhandoff.firstSeed=N}.
 */
class MirrorSimulationTest {
    static final int DEFAULT_SEEDS = 4_000;
    static final int MAX_ACTIONS = 400;


    static MirrorScenario scenario(long seed) {
        return MirrorScenario.generate(seed, MAX_ACTIONS, true);
    }

    /** Runs one scenario; returns its violation or null. */
    static PropertyViolation check(MirrorScenario s) {
        try {
            new MirrorSimulation(s).run();
            return null;
        } catch (PropertyViolation v) {
            return v;
        }
    }

    /** Runs one seed and, if it fails, throws the shrunk report with its replay command. */
    static MirrorSimulation.Result runSeed(long seed) {
        MirrorScenario s = scenario(seed);
        try {
            return new MirrorSimulation(s).run();
        } catch (PropertyViolation v) {
            throw Seeds.report("mirror simulation", seed, v, s.config().toString(), s.actions(),
                    actions -> check(s.withActions(actions)), Seeds.replayCommand("MirrorSimulationTest", seed));
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
        Map<JobState, Integer> outcomes = new EnumMap<>(JobState.class);
        int pivoted = 0;
        int crashed = 0;
        int ready = 0;
        int withErrors = 0;
        int pending = 0;
        long tasks = 0;
        long blocked = 0;
        long skipped = 0;
        long t0 = System.nanoTime();
        for (long seed = first; seed < first + n; seed++) {
            MirrorSimulation.Result r = runSeed(seed);
            outcomes.merge(r.outcome(), 1, Integer::sum);
            pivoted += r.pivoted() ? 1 : 0;
            crashed += r.crashed() ? 1 : 0;
            ready += r.reachedReady() ? 1 : 0;
            withErrors += r.errors() > 0 ? 1 : 0;
            pending += r.wasPending() ? 1 : 0;
            tasks += r.tasks();
            blocked += r.blockedGuestOps();
            skipped += r.skippedGuestOps();
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.out.printf("mirror simulation: %d seeds in %.1f s (%.0f seeds/s, %d tasks); outcomes %s; "
                + "pivoted %d, reached READY %d, with errors %d, crashed %d, PENDING %d; guest operations that waited in the job %d,"
                + " skipped %d%n", n, seconds, n / seconds, tasks, outcomes, pivoted, ready, withErrors, crashed, pending,
                blocked, skipped);
        if (n >= 500) {
            // The generator must keep reaching the interesting endings, or the seeds prove little.
            assertThat(pivoted).as("runs that pivoted").isGreaterThan(n / 10);
            assertThat(ready).as("runs that reached READY").isGreaterThan(n / 3);
            assertThat(withErrors).as("runs with ERROR events").isGreaterThan(n / 10);
            assertThat(outcomes.getOrDefault(JobState.FAILED, 0)).as("runs that FAILED").isGreaterThan(n / 50);
            assertThat(outcomes.getOrDefault(JobState.CANCELLED, 0)).as("runs CANCELLED").isGreaterThan(n / 50);
            assertThat(crashed).as("runs that crashed").isGreaterThan(n / 50);
            assertThat(pending).as("runs that waited in PENDING (auto-finalize off)").isGreaterThan(n / 20);
            assertThat(blocked).as("guest operations that waited at the gate or for a claim").isGreaterThan(n / 10);
        }
    }

    /**
     * DESIGN §2.6: write-blocking converges whatever the guest's write rate. A guest rewrites the
     * last chunks of the disk, whole, as fast as it can: every task of the job runs inside one of
     * its writes (nested in the source write, while it holds the claims of those chunks), so the
     * copier can never claim them. The job must still reach READY while the guest writes, since
     * the guest's own writes leave those chunks clean. (A copier-only convergence would starve.)
     */
    @Test
    void aWriteBlockingGuestRewritingOneDirtyChunkAsFastAsItCanCannotKeepTheJobFromReady() {
        for (long seed = 1; seed <= HOT_CHUNK_SEEDS; seed++) {
            MirrorScenario s = hotChunk(seed);
            MirrorSimulation.Result r;
            try {
                r = new MirrorSimulation(s).run();
            } catch (PropertyViolation v) {
                throw new AssertionError("hot-chunk seed " + seed + ": " + v.getMessage() + "\n" + s, v);
            }
            assertThat(r.readyBeforeHeal()).as("READY while the guest still rewrites its chunk; seed %d:%n%s", seed, s)
                    .isTrue();
        }
    }

    static final int HOT_CHUNK_SEEDS = 200;

    /** Write-blocking, sync FULL, no faults; the guest rewrites the last one or two chunks, whole, with every task nested. */
    static MirrorScenario hotChunk(long seed) {
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
        int shift = r.nextInt(3);
        int g = 512 << shift;
        int bufChunks = 1 + r.nextInt(3);
        int chunks = bufChunks + 2 + r.nextInt(10);
        int tail = r.nextInt(3) == 0 ? 1 + r.nextInt(g - 1) : 0;
        MirrorScenario.Config config = new MirrorScenario.Config(r.nextLong(), shift, chunks, tail, bufChunks,
                1 + r.nextInt(bufChunks), 0, SyncMode.FULL, CopyMode.WRITE_BLOCKING, ErrorPolicy.REPORT,
                ErrorPolicy.REPORT, r.nextBoolean(), r.nextInt(3) == 0 ? 0 : r.nextInt(2_000));
        int hot = r.nextBoolean() ? 1 : 2; // beyond the chunks start() claims
        long off = (long) (chunks - hot) * g;
        int len = (int) (config.size() - off);
        List<MirrorScenario.Action> actions = new java.util.ArrayList<>();
        actions.add(new MirrorScenario.Command(MirrorScenario.Cmd.START));
        for (int i = 0; i < 8 * chunks; i++) {
            MirrorScenario.Fill fill = r.nextInt(5) == 0 ? MirrorScenario.Fill.WRITE_ZEROES : MirrorScenario.Fill.PATTERN;
            int nest = 7 | (r.nextBoolean() ? 8 : 0) | (r.nextInt(16) << 4); // seven tasks, before or after the data lands
            actions.add(new MirrorScenario.Write(off, len, fill, nest));
        }
        return new MirrorScenario(config, actions);
    }

    @Test
    void regressionSeedsStillPass() {
        List<Long> seeds = Seeds.regression(MirrorSimulationTest.class, "mirror-regression-seeds.txt");
        for (long seed : seeds) {
            runSeed(seed);
        }
    }

    private static String outcome(MirrorScenario s) {
        try {
            return new MirrorSimulation(s).run().toString();
        } catch (PropertyViolation v) {
            return v.getMessage();
        }
    }

    @Test
    void aSeedReplaysToTheSameRun() {
        for (long seed = 1; seed <= 20; seed++) {
            MirrorScenario s = scenario(seed);
            assertThat(outcome(s)).isEqualTo(outcome(s));
            assertThat(MirrorScenario.decode(s.encode())).isEqualTo(s);
        }
    }
}
