package dev.handoff.properties.ownership;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Regenerates the committed seed corpus of {@link OwnershipFuzzTest} from generated scenarios (so
 * the fuzzer starts from runs with handoffs, lost locks, faults and power losses). Off unless
 * {@code -Dhandoff.writeCorpus=true}; run from the module directory.
 */
class OwnershipCorpusWriterTest {

    @Test
    void writeSeedCorpus() throws IOException {
        Assumptions.assumeTrue(Boolean.getBoolean("handoff.writeCorpus"), "-Dhandoff.writeCorpus=true writes the corpus");
        Path ownership = Files.createDirectories(
                Path.of("src/test/resources/dev/handoff/properties/ownership/OwnershipFuzzTestInputs/ownership"));
        for (long seed = 1; seed <= 16; seed++) {
            Files.write(ownership.resolve("generated-" + seed),
                    OwnershipScenario.generate(seed * 104_729, 80, seed % 4 == 0).encode());
        }
    }
}
