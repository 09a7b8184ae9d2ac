package dev.handoff.properties.ownership;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.handoff.properties.sim.PropertyViolation;
import dev.handoff.properties.sim.Seeds;

/**
 * Fuzzer bytes decode into an ownership scenario ({@link OwnershipScenario#decode}) checked by
 * {@link OwnershipSimulation}. Corpus: {@code src/test/resources/dev/handoff/properties/ownership/
 * OwnershipFuzzTestInputs/ownership/}. Fuzz: {@code mvn -B -pl properties verify -Pfuzz
 * -Dtest='OwnershipFuzzTest#ownership'} (after installing the kernel).
 */
class OwnershipFuzzTest {

    @FuzzTest(maxDuration = "60s")
    void ownership(byte[] input) {
        OwnershipScenario s = OwnershipScenario.decode(input);
        try {
            new OwnershipSimulation(s).run();
        } catch (PropertyViolation v) {
            throw Seeds.report("ownership fuzz input", -1, v, "size " + s.size() + ", header " + s.headerBytes(),
                    s.actions(), actions -> OwnershipSimulationTest.check(s.withActions(actions)),
                    "mvn -B -pl properties verify -Dtest='OwnershipFuzzTest#ownership' (replays the crash file)");
        }
    }
}
