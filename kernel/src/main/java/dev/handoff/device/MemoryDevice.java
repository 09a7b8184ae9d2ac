package dev.handoff.device;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * A sparse in-memory device: bytes live in 1 MiB segments allocated on first non-zero write, so
 * a large device that is mostly zeroes costs little. Unallocated segments read as zeroes;
 * {@link #discard} and {@link #writeZeroes} of whole segments drop them.
 *
 * <p>Concurrency: segments are published with a compare-and-set on the segment table
 * ({@link AtomicReferenceArray#compareAndSet}, volatile semantics) and read with
 * {@link AtomicReferenceArray#get} (volatile), so a segment's zeroed array is visible before any
 * byte written into it. Bytes themselves are plain array accesses: as on a disk, concurrent
 * overlapping reads and writes give unspecified bytes, and visibility of a completed write to a
 * later read relies on the happens-before the caller establishes between the two.
 */
public final class MemoryDevice implements BlockDevice {
    static final int SEGMENT_SHIFT = 20;
    static final int SEGMENT_SIZE = 1 << SEGMENT_SHIFT;
    private static final long SEGMENT_MASK = SEGMENT_SIZE - 1;

    private final long size;
    private final AtomicReferenceArray<byte[]> segments;
    private volatile boolean closed;

    /** An all-zero device of {@code size} bytes. */
    public MemoryDevice(long size) {
        if (size < 0) {
            throw new IllegalArgumentException("device size must be >= 0, got " + size);
        }
        long count = (size + SEGMENT_MASK) >>> SEGMENT_SHIFT;
        if (count > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("device size " + size + " is too large for a memory device");
        }
        this.size = size;
        this.segments = new AtomicReferenceArray<>((int) count);
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        ensureOpen();
        BlockDevice.checkRange(offset, dst.remaining(), size);
        long pos = offset;
        while (dst.hasRemaining()) {
            int index = (int) (pos >>> SEGMENT_SHIFT);
            int within = (int) (pos & SEGMENT_MASK);
            int n = Math.min(dst.remaining(), SEGMENT_SIZE - within);
            byte[] segment = segments.get(index);
            if (segment == null) {
                putZeroes(dst, n);
            } else {
                dst.put(segment, within, n);
            }
            pos += n;
        }
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        ensureOpen();
        BlockDevice.checkRange(offset, src.remaining(), size);
        long pos = offset;
        while (src.hasRemaining()) {
            int index = (int) (pos >>> SEGMENT_SHIFT);
            int within = (int) (pos & SEGMENT_MASK);
            int n = Math.min(src.remaining(), SEGMENT_SIZE - within);
            src.get(segment(index), within, n);
            pos += n;
        }
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        ensureOpen();
        BlockDevice.checkRange(offset, length, size);
        zero(offset, length);
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        ensureOpen();
        BlockDevice.checkRange(offset, length, size);
        zero(offset, length);
    }

    @Override
    public void flush() throws DeviceException {
        ensureOpen();
    }

    @Override
    public void close() {
        closed = true;
    }

    /** Unallocated segments are holes: the next allocated segment at or after {@code offset}. */
    @Override
    public long nextData(long offset) throws DeviceException {
        ensureOpen();
        BlockDevice.checkRange(offset, 0, size);
        for (long pos = offset; pos < size; pos = ((pos >>> SEGMENT_SHIFT) + 1) << SEGMENT_SHIFT) {
            if (segments.get((int) (pos >>> SEGMENT_SHIFT)) != null) {
                return pos;
            }
        }
        return size;
    }

    /** The next unallocated segment at or after {@code offset}. */
    @Override
    public long nextHole(long offset) throws DeviceException {
        ensureOpen();
        BlockDevice.checkRange(offset, 0, size);
        for (long pos = offset; pos < size; pos = ((pos >>> SEGMENT_SHIFT) + 1) << SEGMENT_SHIFT) {
            if (segments.get((int) (pos >>> SEGMENT_SHIFT)) == null) {
                return pos;
            }
        }
        return size;
    }

    /** Bytes of memory held by allocated segments. */
    public long allocatedBytes() {
        long total = 0;
        for (int i = 0; i < segments.length(); i++) {
            if (segments.get(i) != null) {
                total += SEGMENT_SIZE;
            }
        }
        return total;
    }

    private void zero(long offset, long length) {
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            int index = (int) (pos >>> SEGMENT_SHIFT);
            int within = (int) (pos & SEGMENT_MASK);
            int n = (int) Math.min(end - pos, SEGMENT_SIZE - within);
            if (n == SEGMENT_SIZE) {
                // Whole segment: drop it; it reads as zeroes again. A write racing with this on the
                // same segment overlaps the zeroed range, so either order is a valid outcome.
                segments.set(index, null);
            } else {
                byte[] segment = segments.get(index);
                if (segment != null) {
                    Arrays.fill(segment, within, within + n, (byte) 0);
                }
            }
            pos += n;
        }
    }

    private byte[] segment(int index) {
        byte[] segment;
        byte[] fresh = null;
        while ((segment = segments.get(index)) == null) {
            if (fresh == null) {
                fresh = new byte[SEGMENT_SIZE];
            }
            // CAS publishes the zeroed array; a loser adopts the winner's array on the next get.
            if (segments.compareAndSet(index, null, fresh)) {
                return fresh;
            }
        }
        return segment;
    }

    private static void putZeroes(ByteBuffer dst, int n) {
        int end = dst.position() + n;
        if (dst.hasArray()) {
            int base = dst.arrayOffset() + dst.position();
            Arrays.fill(dst.array(), base, base + n, (byte) 0);
            dst.position(end);
        } else {
            while (dst.position() + 8 <= end) {
                dst.putLong(0L);
            }
            while (dst.position() < end) {
                dst.put((byte) 0);
            }
        }
    }

    private void ensureOpen() throws DeviceException {
        if (closed) {
            throw new DeviceException(DeviceException.Kind.CLOSED, "memory device is closed");
        }
    }
}
