package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class MirrorWarmUpTest {
    /** The warm-up takes the whole path a first blockdev-mirror takes, or it warms nothing. */
    @Test
    void theWarmUpRunsAWriteBlockingJobFromQmpArgumentsToReadyAndItsEnd() {
        assertThat(MirrorWarmUp.run()).isTrue();
    }
}
