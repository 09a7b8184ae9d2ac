package dev.handoff.properties.mirror;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.handoff.properties.sim.PropertyViolation;
import dev.handoff.properties.sim.Seeds;

/**
 * Coverage-guided search over the same simulators: the fuzzer's bytes decode into a mirror
 * scenario ({@link MirrorScenario#decode}) or a bitmap operation sequence, and every property of
 * {@link MirrorSimulation} / {@link DirtyBitmapModel} is checked.
 *
 * <p>{@code mvn verify} replays the committed corpus in
 * {@code src/test/resources/dev/handoff/properties/mirror/MirrorFuzzTestInputs/<method>/} (generated runs
 * plus every crash ever found). Fuzzing, for {@code fuzz.duration} per target (30 s unless
 * {@code -Dfuzz.duration=} says otherwise):
 * <pre>
 * mvn -B -q -pl properties -am install -DskipTests
 * mvn -B -pl properties verify -Pfuzz -Dtest='MirrorFuzzTest#mirror'
 * </pre>
 * A crash is written next to the corpus; commit it with the fix. The failure message holds the
 * decoded, shrunk action list.
 */
class MirrorFuzzTest {

    @FuzzTest(maxDuration = "60s")
    void mirror(byte[] input) {
        MirrorScenario s = MirrorScenario.decode(input);
        try {
            new MirrorSimulation(s).run();
        } catch (PropertyViolation v) {
            throw Seeds.report("mirror fuzz input", -1, v, s.config().toString(), s.actions(),
                    actions -> MirrorSimulationTest.check(s.withActions(actions)),
                    "mvn -B -pl properties verify -Dtest='MirrorFuzzTest#mirror' (replays the crash file)");
        }
    }

    @FuzzTest(maxDuration = "60s")
    void bitmap(byte[] input) {
        DirtyBitmapModel.check(DirtyBitmapModel.REAL, input);
    }
}
