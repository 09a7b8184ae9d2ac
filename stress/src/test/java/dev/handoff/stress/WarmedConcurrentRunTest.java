package dev.handoff.stress;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the warm-up lets through: only Lincheck's bare hang report, never a failure of the block. */
class WarmedConcurrentRunTest {
    @Test
    void onlyTheBareHangReportCountsAsAnInvocationPastItsLimit() {
        assertTrue(WarmedConcurrentRun.isHangWithoutTrace(new AssertionError("\n= Concurrent test has hung =\n")));
        assertFalse(WarmedConcurrentRun.isHangWithoutTrace(new AssertionError(
                "\n= Concurrent test has hung =\n\nThe following interleaving leads to a deadlock:\n| main |")));
        assertFalse(WarmedConcurrentRun.isHangWithoutTrace(new AssertionError("\n= Concurrent test failed =\n")));
        assertFalse(WarmedConcurrentRun.isHangWithoutTrace(new AssertionError()));
    }

    @Test
    void aFailureOfTheBlockInTheWarmUpFailsTheRun() {
        AssertionError e = assertThrows(AssertionError.class, () -> WarmedConcurrentRun.run(3, () -> {
            throw new AssertionError("the block failed");
        }));
        assertTrue(e.getMessage().contains("the block failed"), e.getMessage());
    }
}
