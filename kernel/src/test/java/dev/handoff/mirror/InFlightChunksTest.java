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
        assertThat(c.isClaimed(6)).isFalse(); // and nothing above 5: one CAS took only the chunks below it
        c.release(5, 5);
        assertThat(claimed.await(5, TimeUnit.SECONDS)).isTrue();
        guest.join();
        assertThat(c.anyClaimed(4, 6)).isTrue();
        c.release(4, 6);
        assertThat(c.anyClaimed(0, 9)).isFalse();
    }

    @Test
    void aRangeAcrossTwoWordsIsClaimedAndReleasedWholeWithoutTouchingItsNeighbours() {
        InFlightChunks c = new InFlightChunks(200);
        assertThat(c.tryClaim(59)).isTrue();
        assertThat(c.tryClaim(71)).isTrue();
        c.claim(60, 70); // chunks 60-63 in one word, 64-70 in the next: one CAS each
        for (long chunk = 59; chunk <= 71; chunk++) {
            assertThat(c.isClaimed(chunk)).as("chunk %d", chunk).isTrue();
        }
        c.release(60, 70);
        assertThat(c.anyClaimed(60, 70)).isFalse();
        assertThat(c.isClaimed(59)).isTrue();
        assertThat(c.isClaimed(71)).isTrue();
        assertThat(c.tryClaim(63)).isTrue();
        assertThat(c.tryClaim(64)).isTrue();
    }
}
