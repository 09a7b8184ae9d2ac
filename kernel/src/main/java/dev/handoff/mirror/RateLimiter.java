package dev.handoff.mirror;

/**
 * The copy speed limit: a budget of {@code speed / 10} bytes per 100 ms slice. An operation may
 * start while the slice has budget left, even one larger than what is left (so an operation
 * larger than the whole budget still runs); the bytes it takes beyond the budget stretch the
 * slice, so the next operation waits until the bytes charged to the slice fit the speed: a slice
 * that was charged {@code n} budgets ends {@code n} slice lengths after it began. The average
 * rate over any run of slices is then at most {@code speed}, whatever the size of an operation
 * (QEMU's block-job rate limit behaves the same). Not thread-safe: guarded by the job's lock.
 */
final class RateLimiter {
    static final long SLICE_NANOS = 100_000_000L;

    private long speed;
    private long sliceStart;
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
            sliceStart = now;
            sliceEnd = now + SLICE_NANOS;
            used = 0;
            return 0;
        }
        return used < budget() ? 0 : sliceEnd - now;
    }

    /** Charges {@code bytes} to the current slice, stretching it by what overruns the budget. */
    void consume(long bytes) {
        used += bytes;
        long budget = budget();
        if (speed != 0 && used > budget) {
            // used / budget slices' worth of bytes: the slice lasts that many slice lengths
            // (in double: used * SLICE_NANOS overflows a long past ~92 GB).
            sliceEnd = sliceStart + (long) ((double) used / budget * SLICE_NANOS);
        }
    }

    private long budget() {
        return Math.max(1, speed / (1_000_000_000L / SLICE_NANOS));
    }
}
