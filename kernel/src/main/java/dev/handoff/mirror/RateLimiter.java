package dev.handoff.mirror;

/**
 * The copy speed limit: a budget of {@code speed / 10} bytes per 100 ms slice. An operation may
 * overrun the slice's budget once (so an operation larger than the budget still runs); the next
 * operation then waits for the next slice. Not thread-safe: guarded by the job's lock.
 */
final class RateLimiter {
    static final long SLICE_NANOS = 100_000_000L;

    private long speed;
    private long sliceEnd;
    private boolean started;
    private long used;

    RateLimiter(long speed) {
        this.speed = speed;
    }

    long speed() {
        return speed;
    }

    void setSpeed(long bytesPerSecond) {
        this.speed = bytesPerSecond;
    }

    /** Nanoseconds to wait before the next operation may start; 0 = now. */
    long delay(long now) {
        if (speed == 0) {
            return 0;
        }
        if (!started || now - sliceEnd >= 0) {
            started = true;
            sliceEnd = now + SLICE_NANOS;
            used = 0;
            return 0;
        }
        return used < budget() ? 0 : sliceEnd - now;
    }

    /** Charges {@code bytes} to the current slice. */
    void consume(long bytes) {
        used += bytes;
    }

    private long budget() {
        return Math.max(1, speed / (1_000_000_000L / SLICE_NANOS));
    }
}
