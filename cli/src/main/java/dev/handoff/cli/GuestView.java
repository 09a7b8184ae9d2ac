package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;
import dev.handoff.mirror.MirrorFilter;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The demo guest's disk: the job's guest device, remembering which writes may have landed on the
 * target only (those that returned once the filter routes to the target), so that the demo can
 * compare the target with the source as it was at the pivot everywhere else.
 *
 * <p>The filter sets its route (a volatile write) before it lets held writes through the gate, so
 * a write that went to the target finds the target route when it returns; writes that went to the
 * source and return late are recorded too, which only makes the comparison skip a few more bytes
 * (the guest's own check still covers them).
 */
final class GuestView extends ForwardingBlockDevice {
    private final MirrorFilter filter;
    private final BlockDevice source;
    private final List<long[]> afterPivot = new ArrayList<>(); // guarded by itself
    private final long bytesPerSecond;
    private final long startNanos = System.nanoTime();
    private long admitted; // guarded by this: bytes let through since startNanos

    /** {@code bytesPerSecond} caps the guest's write rate over all its threads; 0 = no cap. */
    GuestView(MirrorFilter filter, BlockDevice source, long bytesPerSecond) {
        super(filter);
        this.filter = filter;
        this.source = source;
        this.bytesPerSecond = bytesPerSecond;
    }

    /** Waits until {@code length} more bytes fit the rate (a virtual clock: no burst beyond the rate). */
    private void pace(long length) throws DeviceException {
        if (bytesPerSecond <= 0) {
            return;
        }
        long due;
        synchronized (this) {
            due = startNanos + (long) (admitted * 1e9 / bytesPerSecond);
            admitted += length;
        }
        long wait = due - System.nanoTime();
        if (wait > 0) {
            try {
                java.util.concurrent.TimeUnit.NANOSECONDS.sleep(wait);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new DeviceException(DeviceException.Kind.IO_ERROR, "guest interrupted", e);
            }
        }
    }

    /** Ranges {offset, length} written by writes that returned after the pivot. */
    List<long[]> writtenAfterPivot() {
        synchronized (afterPivot) {
            return new ArrayList<>(afterPivot);
        }
    }

    private void note(long offset, long length) {
        if (filter.currentDevice() != source) {
            synchronized (afterPivot) {
                afterPivot.add(new long[] {offset, length});
            }
        }
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        long length = src.remaining();
        pace(length);
        try {
            super.write(offset, src);
        } finally {
            note(offset, length);
        }
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        pace(length);
        try {
            super.writeZeroes(offset, length);
        } finally {
            note(offset, length);
        }
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        try {
            super.discard(offset, length);
        } finally {
            note(offset, length);
        }
    }
}
