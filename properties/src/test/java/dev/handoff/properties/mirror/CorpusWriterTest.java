package dev.handoff.properties.mirror;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * Regenerates the committed seed corpora of {@link MirrorFuzzTest} from generated scenarios (so the
 * fuzzer starts from runs that reach READY, pivot, fail and crash). Off unless
 * {@code -Dhandoff.writeCorpus=true}; run from the module directory.
 */
class CorpusWriterTest {

    @Test
    void writeSeedCorpus() throws IOException {
        Assumptions.assumeTrue(Boolean.getBoolean("handoff.writeCorpus"), "-Dhandoff.writeCorpus=true writes the corpus");
        Path base = Path.of("src/test/resources/dev/handoff/properties/mirror/MirrorFuzzTestInputs");
        Path mirror = Files.createDirectories(base.resolve("mirror"));
        for (long seed = 1; seed <= 24; seed++) {
            MirrorScenario s = MirrorScenario.generate(seed * 7919, 160, false);
            Files.write(mirror.resolve("generated-" + seed), s.encode());
        }
        Path bitmap = Files.createDirectories(base.resolve("bitmap"));
        SplittableRandom r = new SplittableRandom(5);
        for (int i = 1; i <= 8; i++) {
            byte[] b = new byte[5 + 9 * (20 + r.nextInt(200))];
            r.nextBytes(b);
            Files.write(bitmap.resolve("generated-" + i), b);
        }
    }
}
