package dev.handoff.ownership;

import dev.handoff.device.DeviceException;

/**
 * The inspection seam of {@link OwnedImage} for checks, published in the kernel's test-jar: what a
 * kernel test, a jcstress harness, a Lincheck test or a trace recorder may look at inside a handle
 * (its caches, the newest epoch it has seen, the record as stored, whether it is closed), and the
 * one step a harness may drive on its own (a record read's
 * raise of that epoch). Test code, in the handle's package, so that the handle itself carries no
 * member that exists only for checks, and other modules reach none of its internals otherwise.
 *
 * <p>Each look is a volatile or acquire load of the part's own field: a snapshot, exact once the
 * threads that change it are done.
 */
public final class OwnedImageProbe {
    private OwnedImageProbe() {
    }

    /** The record as last read or written by a transition; null right after a cache drop. */
    public static OwnershipRecord cachedRecord(OwnedImage image) {
        return image.transitions.lvCachedRecord();
    }

    /** Whether the header cache holds a copy. */
    public static boolean headerCached(OwnedImage image) {
        return image.header.isLoaded();
    }

    /** How many times activation dropped the caches. */
    public static int cacheDrops(OwnedImage image) {
        return image.transitions.lvCacheDrops();
    }

    /** The newest epoch the handle has seen in the record. */
    public static long newestEpochSeen(OwnedImage image) {
        return image.admission.laNewestEpoch();
    }

    /** The record as it is in its store, also on a closed handle (trace recording). */
    public static OwnershipRecord peekRecord(OwnedImage image) throws DeviceException {
        return image.records.read();
    }

    /** Whether the handle has been closed. */
    public static boolean isClosed(OwnedImage image) {
        return image.admission.isClosed();
    }

    /**
     * What a record read showing {@code epoch} does to the handle (DESIGN §4.3): raises the newest
     * epoch it has seen to at least {@code epoch}. Any thread, any time, as the handle's own I/O
     * threads do; for harnesses that race two raises.
     */
    public static void observeEpoch(OwnedImage image, long epoch) {
        image.admission.observeEpoch(epoch);
    }
}
