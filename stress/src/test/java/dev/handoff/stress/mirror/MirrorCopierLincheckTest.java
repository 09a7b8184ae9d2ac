package dev.handoff.stress.mirror;

import org.jetbrains.lincheck.datastructures.ModelCheckingOptions;
import org.junit.jupiter.api.Test;

/**
 * Guest writes and copier steps on a two-chunk mirror whose copies all succeed; see
 * {@link MirrorCopierScenario} for the operations, the checks and the broken variants caught.
 * Rerun: {@code mvn -pl kernel,stress -am verify -Djcstress.skip -Dstress.test=MirrorCopierLincheckTest}
 */
public class MirrorCopierLincheckTest extends MirrorCopierScenario {
    public MirrorCopierLincheckTest() {
        super(false);
    }

    @Test
    void guestWritesAndCopierStepsKeepCleanChunksInSync() {
        new ModelCheckingOptions()
                .iterations(ITERATIONS)
                .invocationsPerIteration(INVOCATIONS)
                .threads(2)
                .actorsPerThread(3)
                .sequentialSpecification(GuestDiskModel.class)
                .minimizeFailedScenario(false)
                .check(getClass());
    }
}
