package dev.handoff.mirror;

import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

class InFlightChunksTest {
    @Test
    void aChunkHasAtMostOneClaim() {
        InFlightChunks c = new InFlightChunks(200);
        assertThat(c.tryClaim(130)).isTrue();
        assertThat(c.tryClaim(130)).isFalse();
        assertThat(c.isClaimed(130)).isTrue();
        c.release(130, 130);
        assertThat(c.tryClaim(130)).isTrue();
    }

    @Test
    void blockingClaimWaitsForTheHolderToRelease() throws Exception {
        InFlightChunks c = new InFlightChunks(10);
        assertThat(c.tryClaim(5)).isTrue();
        CountDownLatch claimed = new CountDownLatch(1);
        Thread guest = new Thread(() -> {
            c.claim(4, 6);
            claimed.countDown();
        });
        guest.start();
        assertThat(claimed.await(100, TimeUnit.MILLISECONDS)).isFalse();
        assertThat(c.isClaimed(4)).isTrue(); // ascending: it holds 4 while it waits for 5
        c.release(5, 5);
        assertThat(claimed.await(5, TimeUnit.SECONDS)).isTrue();
        guest.join();
        assertThat(c.anyClaimed(4, 6)).isTrue();
        c.release(4, 6);
        assertThat(c.anyClaimed(0, 9)).isFalse();
    }
}
