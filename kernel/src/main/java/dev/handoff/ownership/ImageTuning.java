package dev.handoff.ownership;

import java.util.concurrent.TimeUnit;

/**
 * The knobs of an {@link OwnedImage} that tests turn: how long a write may go on the newest epoch
 * it has seen before it re-reads the record (DESIGN §4.3), and how many of the image's first bytes
 * the header cache keeps. Production handles use {@link #DEFAULT}.
 */
record ImageTuning(long recheckNanos, int headerCacheBytes) {
    static final long DEFAULT_RECHECK_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    static final int DEFAULT_HEADER_CACHE_BYTES = 4096;
    static final ImageTuning DEFAULT = new ImageTuning(DEFAULT_RECHECK_NANOS, DEFAULT_HEADER_CACHE_BYTES);

    ImageTuning {
        if (recheckNanos < 0 || headerCacheBytes < 0) {
            throw new IllegalArgumentException("negative tuning");
        }
    }

    ImageTuning withRecheckNanos(long nanos) {
        return new ImageTuning(nanos, headerCacheBytes);
    }
}
