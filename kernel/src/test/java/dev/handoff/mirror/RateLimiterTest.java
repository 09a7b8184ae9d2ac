package dev.handoff.mirror;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class RateLimiterTest {
    @Test
    void unlimitedNeverWaits() {
        RateLimiter r = new RateLimiter(0);
        r.consume(1L << 40);
        assertThat(r.delay(0)).isZero();
    }

    @Test
    void waitsForTheNextSliceOnceTheBudgetIsSpent() {
        RateLimiter r = new RateLimiter(10_000_000); // 1 MB per 100 ms slice
        long now = 1_000;
        assertThat(r.delay(now)).isZero();
        r.consume(600_000);
        assertThat(r.delay(now)).isZero();
        r.consume(600_000); // may overrun once
        assertThat(r.delay(now)).isEqualTo(RateLimiter.SLICE_NANOS);
        assertThat(r.delay(now + RateLimiter.SLICE_NANOS)).isZero();
    }

    @Test
    void speedChangesTakeEffect() {
        RateLimiter r = new RateLimiter(1000);
        r.delay(0);
        r.consume(1000);
        assertThat(r.delay(1)).isPositive();
        r.setSpeed(0);
        assertThat(r.delay(1)).isZero();
    }
}
