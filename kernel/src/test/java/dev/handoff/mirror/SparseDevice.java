package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.MemoryDevice;
import java.nio.ByteBuffer;
import java.util.BitSet;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A sparse device for copier tests, as a file system keeps a sparse file: data lives in 4 KiB
 * blocks allocated on write, write-zeroes and discard deallocate the blocks they cover whole, and
 * {@link #nextData}/{@link #nextHole} answer from the allocation map. Counts the bytes read and
 * written, and can run a hook once when asked where data is. Synchronized: tests are small.
 */
final class SparseDevice implements BlockDevice {
    static final int BLOCK = 4096;

    private final MemoryDevice data;
    private final BitSet allocated = new BitSet();
    final AtomicLong bytesRead = new AtomicLong();
    final AtomicLong bytesWritten = new AtomicLong();
    final AtomicLong zeroCalls = new AtomicLong();
    private Runnable onDataQuery;
    private long onDataQueryAt = -1;

    SparseDevice(long size) {
        data = new MemoryDevice(size);
    }

    /** Runs {@code hook} once, after a data query at {@code offset} has computed its (then stale) answer. */
    synchronized void afterDataQueryAt(long offset, Runnable hook) {
        onDataQuery = hook;
        onDataQueryAt = offset;
    }

    /** Bytes in allocated blocks, as {@code du} reports a file. */
    synchronized long allocatedBytes() {
        return (long) allocated.cardinality() * BLOCK;
    }

    @Override
    public long size() {
        return data.size();
    }

    @Override
    public synchronized void read(long offset, ByteBuffer dst) throws DeviceException {
        bytesRead.addAndGet(dst.remaining());
        data.read(offset, dst);
    }

    @Override
    public synchronized void write(long offset, ByteBuffer src) throws DeviceException {
        int n = src.remaining();
        data.write(offset, src);
        bytesWritten.addAndGet(n);
        if (n > 0) {
            allocated.set((int) (offset / BLOCK), (int) ((offset + n - 1) / BLOCK) + 1);
        }
    }

    @Override
    public synchronized void writeZeroes(long offset, long length) throws DeviceException {
        zeroCalls.incrementAndGet();
        data.writeZeroes(offset, length);
        long first = (offset + BLOCK - 1) / BLOCK;
        long end = (offset + length) / BLOCK;
        if (end > first) {
            allocated.clear((int) first, (int) end);
        }
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        writeZeroes(offset, length);
    }

    @Override
    public long nextData(long offset) throws DeviceException {
        long answer;
        Runnable hook;
        synchronized (this) {
            DeviceException.checkRange(offset, 0, size());
            int b = allocated.nextSetBit((int) (offset / BLOCK));
            answer = b < 0 ? size() : Math.max(offset, Math.min(size(), (long) b * BLOCK));
            hook = offset == onDataQueryAt ? onDataQuery : null;
            if (hook != null) {
                onDataQuery = null;
                onDataQueryAt = -1;
            }
        }
        if (hook != null) {
            hook.run();
        }
        return answer;
    }

    @Override
    public synchronized long nextHole(long offset) throws DeviceException {
        DeviceException.checkRange(offset, 0, size());
        int b = allocated.nextClearBit((int) (offset / BLOCK));
        return Math.max(offset, Math.min(size(), (long) b * BLOCK));
    }

    @Override
    public void flush() {
    }

    @Override
    public void close() {
    }
}
