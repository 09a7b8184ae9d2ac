package com.example.pagecache;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.util.ArrayList;
import java.util.List;

/**
 * The same page cache with the classic write-back bug, kept to show the kit catching it: its flush
 * writes back the dirty pages it found, then clears their marks. A write that lands on a page after
 * the flush copied it and before the clear loses its mark: no later flush writes it back, and a
 * power loss takes a write that returned before a flush that returned. (The correct order, in
 * {@link PageCacheDevice#flush()}, clears each mark before copying its page.)
 */
public final class ClearAfterWriteBackDevice extends PageCacheDevice {

    public ClearAfterWriteBackDevice(BlockDevice disk) {
        super(disk);
    }

    @Override
    public void flush() throws DeviceException {
        synchronized (flushes) {
            List<Long> found = new ArrayList<>(dirty);
            for (Long index : found) {
                writeBack(index);
            }
            dirty.removeAll(found); // the bug: a write between the copy and here is never written back
            disk.flush();
        }
    }
}
