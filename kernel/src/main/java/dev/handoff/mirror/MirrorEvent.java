package dev.handoff.mirror;

import dev.handoff.device.DeviceException;

/**
 * Something the job tells its listeners. Every event carries a sequence number, starting at 1
 * and increasing by one per event of the job; listeners see events in that order, one at a time.
 */
public sealed interface MirrorEvent {

    /** Position of this event in the job's event stream. */
    long sequence();

    /** The job's state changed. */
    record StateChanged(long sequence, JobState from, JobState to) implements MirrorEvent {
    }

    /** The target caught up with the source for the first time: the job is in phase 2. */
    record Ready(long sequence, long offset, long length) implements MirrorEvent {
    }

    /**
     * The target is consistent with the source: if {@code pivoted}, the guest now uses the
     * target; otherwise (cancel after READY) the target equals a past state of the source and the
     * guest stays on the source.
     */
    record Completed(long sequence, long offset, long length, boolean pivoted) implements MirrorEvent {
    }

    /** The job stopped before the target was consistent; the target may not be usable. */
    record Cancelled(long sequence, long offset, long length) implements MirrorEvent {
    }

    /** The job failed; the guest stays on the source and the target may not be consistent. */
    record Failed(long sequence, long offset, long length, String reason) implements MirrorEvent {
    }

    /**
     * An I/O error in the job ({@code side} SOURCE for reads of the source, TARGET for writes to
     * the target) and the {@code action} the error policy took.
     */
    record Error(long sequence, Side side, Operation operation, ErrorAction action, long offset, long length,
            DeviceException cause) implements MirrorEvent {
    }

    /** Which device failed. */
    enum Side { SOURCE, TARGET }

    /** Which operation failed. */
    enum Operation { READ, WRITE, WRITE_ZEROES, FLUSH }
}
