package com.example.pagecache;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.MemoryDevice;
import dev.handoff.testkit.DeviceKit;

/**
 * Handoff's device contract on our page cache: one class, and every check of the kit runs as a
 * test (sequential contract, concurrent contract, fault behaviour, a mirror job and an ownership
 * handoff with it).
 */
class PageCacheDeviceKitTest extends DeviceKit {

    /** A fresh, all-zero cache over a fresh disk. */
    @Override
    public BlockDevice create(long size) {
        return new PageCacheDevice(new MemoryDevice(size));
    }

    /** Our discard writes zeroes. */
    @Override
    public boolean discardReadsZeroes() {
        return true;
    }

    /** A power loss takes the cache and keeps the disk: reopen a new cache over the same disk. */
    @Override
    public PowerLoss powerLoss() {
        return device -> {
            PageCacheDevice cache = (PageCacheDevice) device;
            cache.close();
            return new PageCacheDevice(cache.disk);
        };
    }

    /** The cache stacks on any disk: the kit gives it one that fails on demand. */
    @Override
    public Layering layering() {
        return PageCacheDevice::new;
    }
}
