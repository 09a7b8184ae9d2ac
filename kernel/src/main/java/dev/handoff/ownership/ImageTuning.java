package dev.handoff.ownership;

import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * The knobs of an {@link OwnedImage} that tests turn: how long a write may go on the newest epoch
 * it has seen before it re-reads the record (DESIGN §4.3), how many of the image's first bytes
 * the header cache keeps, and the clock that measures the interval. Production handles use
 * {@link #DEFAULT} (100 ms, 4 KiB, {@link MonotonicClock#SYSTEM}).
 */
record ImageTuning(long recheckNanos, int headerCacheBytes, MonotonicClock clock) {
    static final long DEFAULT_RECHECK_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    static final int DEFAULT_HEADER_CACHE_BYTES = 4096;
    static final ImageTuning DEFAULT = new ImageTuning(DEFAULT_RECHECK_NANOS, DEFAULT_HEADER_CACHE_BYTES,
            MonotonicClock.SYSTEM);

    ImageTuning {
        if (recheckNanos < 0 || headerCacheBytes < 0) {
            throw new IllegalArgumentException("negative tuning");
        }
        Objects.requireNonNull(clock, "clock");
    }

    ImageTuning withRecheckNanos(long nanos) {
        return new ImageTuning(nanos, headerCacheBytes, clock);
    }

    ImageTuning withClock(MonotonicClock c) {
        return new ImageTuning(recheckNanos, headerCacheBytes, c);
    }
}
