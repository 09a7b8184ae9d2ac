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
    void waitsUntilTheBytesChargedToTheSliceFitTheSpeed() {
        RateLimiter r = new RateLimiter(10_000_000); // 1 MB per 100 ms slice
        long now = 1_000;
        assertThat(r.delay(now)).isZero();
        r.consume(600_000);
        assertThat(r.delay(now)).isZero();
        r.consume(600_000); // may start with budget left, and overruns it: 1.2 MB take 120 ms
        assertThat(r.delay(now)).isEqualTo(RateLimiter.SLICE_NANOS * 12 / 10);
        assertThat(r.delay(now + RateLimiter.SLICE_NANOS)).isEqualTo(RateLimiter.SLICE_NANOS / 5);
        assertThat(r.delay(now + RateLimiter.SLICE_NANOS * 12 / 10)).isZero();
    }

    @Test
    void anOperationLargerThanTheBudgetWaitsAsLongAsItsBytesTakeAtTheSpeed() {
        RateLimiter r = new RateLimiter(2_000_000); // 200 KB per slice; a 1 MiB copy takes 524 ms
        assertThat(r.delay(0)).isZero();
        r.consume(1 << 20);
        assertThat(r.delay(1)).isEqualTo((1L << 20) * 1_000_000_000L / 2_000_000 - 1);
    }

    @Test
    void operationsLargerThanTheBudgetNeverCopyFasterThanTheSpeed() {
        long speed = 2_000_000;
        long op = 1 << 20;
        RateLimiter r = new RateLimiter(speed);
        long now = 0;
        long copied = 0;
        long seconds = 20;
        while (now < seconds * 1_000_000_000L) {
            long wait = r.delay(now);
            if (wait > 0) {
                now += wait; // the copier waits for the timer, then asks again
                continue;
            }
            r.consume(op);
            copied += op;
            now += 1_000_000; // each copy takes 1 ms of device time
        }
        // At most the speed over the run, plus the one operation that may start at its end.
        assertThat(copied).isLessThanOrEqualTo(speed * seconds + op);
        assertThat(copied).isGreaterThan(speed * seconds * 9 / 10); // and not much slower
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
