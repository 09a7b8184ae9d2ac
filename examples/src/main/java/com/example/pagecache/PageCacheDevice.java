package com.example.pagecache;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.nio.ByteBuffer;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * An embedder's device: a write-back page cache in front of a "disk" (any {@link BlockDevice}).
 * Reads and writes go to 4 KiB pages held in memory; {@link #flush()} writes the dirty pages back
 * to the disk and flushes it. What a power loss takes is the cache: a write is durable once a flush
 * has written its page back.
 *
 * <p>Threading: any method from any thread. A page's bytes are guarded by the page's monitor. A
 * write changes its pages, then marks them dirty; a flush unmarks a page, then copies it and writes
 * it back. So a write racing a flush either lands before the copy (and is written back now) or
 * marks the page again (and is written back by the next flush): no write is ever left unmarked.
 * Flushes run one at a time: two at once could write back two copies of a page in the wrong order,
 * and one could return while the other was still writing back a page it had unmarked (the kit's
 * {@code flushed-writes-survive-a-power-loss} caught exactly that in this class's first version).
 */
public class PageCacheDevice implements BlockDevice {
    static final int PAGE = 4096;

    final BlockDevice disk;
    private final ConcurrentHashMap<Long, byte[]> pages = new ConcurrentHashMap<>();
    final Set<Long> dirty = ConcurrentHashMap.newKeySet();
    /** Held by a flush: one at a time, so that an older copy of a page never lands over a newer one. */
    final Object flushes = new Object();
    private volatile boolean closed;

    /** A cache over {@code disk}, which stays the caller's (closing the cache does not close it). */
    public PageCacheDevice(BlockDevice disk) {
        this.disk = disk;
    }

    @Override
    public long size() {
        return disk.size();
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, dst.remaining(), size());
        long pos = offset;
        while (dst.hasRemaining()) {
            byte[] page = page(pos / PAGE);
            int within = (int) (pos % PAGE);
            int n = Math.min(dst.remaining(), PAGE - within);
            synchronized (page) {
                dst.put(page, within, n);
            }
            pos += n;
        }
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, src.remaining(), size());
        long pos = offset;
        while (src.hasRemaining()) {
            long index = pos / PAGE;
            byte[] page = page(index);
            int within = (int) (pos % PAGE);
            int n = Math.min(src.remaining(), PAGE - within);
            synchronized (page) {
                src.get(page, within, n);
            }
            dirty.add(index); // after the bytes: a flush that unmarks it before this sees them, or we mark again
            pos += n;
        }
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, length, size());
        ByteBuffer zeroes = ByteBuffer.allocate(PAGE);
        for (long done = 0; done < length; ) {
            int n = (int) Math.min(PAGE, length - done);
            write(offset + done, zeroes.clear().limit(n));
            done += n;
        }
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        writeZeroes(offset, length);
    }

    @Override
    public void flush() throws DeviceException {
        ensureOpen();
        synchronized (flushes) {
            for (Long index : dirty) {
                dirty.remove(index);
                writeBack(index);
            }
            disk.flush();
        }
    }

    /** Copies page {@code index} under its monitor and writes the copy to the disk. */
    void writeBack(long index) throws DeviceException {
        byte[] page = page(index);
        byte[] copy;
        synchronized (page) {
            copy = page.clone();
        }
        long at = index * PAGE;
        int n = (int) Math.min(PAGE, size() - at);
        try {
            disk.write(at, ByteBuffer.wrap(copy, 0, n));
        } catch (DeviceException e) {
            dirty.add(index); // not written back: the next flush tries again
            throw e;
        }
    }

    /** Drops the cache: what was not written back is gone. Does not close the disk. */
    @Override
    public void close() {
        closed = true;
    }

    private byte[] page(long index) throws DeviceException {
        byte[] page = pages.get(index);
        if (page != null) {
            return page;
        }
        byte[] fresh = new byte[PAGE];
        long at = index * PAGE;
        disk.read(at, ByteBuffer.wrap(fresh, 0, (int) Math.min(PAGE, size() - at)));
        // Two loaders of one page read the same bytes: only a write-back changes them, and that needs the page cached.
        byte[] prior = pages.putIfAbsent(index, fresh);
        return prior != null ? prior : fresh;
    }

    private void ensureOpen() throws DeviceException {
        if (closed) {
            throw new DeviceException(DeviceException.Kind.CLOSED, "page cache is closed");
        }
    }
}
