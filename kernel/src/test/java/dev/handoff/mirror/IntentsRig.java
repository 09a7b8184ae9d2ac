package dev.handoff.mirror;

/**
 * The persistent write-intent bitmap's protocol ({@link WriteIntents}, DESIGN §2.10) over an
 * in-memory store that keeps written and synced bits apart ({@link MemoryBitmapStore}), for
 * jcstress harnesses: the kernel's own {@code begin}, {@code end}, {@code candidates} and
 * {@code clear}, and a view of the store that says whether a region's bit is written and synced.
 *
 * <p>Everything under test is the kernel's code; the store only records what it is told (under its
 * monitor: the kernel serializes its store I/O, the arbiter reads afterwards).
 * It lives in the kernel's test sources (published in its test-jar, as {@link MirrorProbe}) because
 * it builds the package-private {@code WriteIntents} and {@code InFlightChunks} directly.
 */
public final class IntentsRig {
    /** Bytes per region, and per chunk (one chunk per region). */
    public static final int REGION = 4096;

    private final MemoryBitmapStore store;
    private final WriteIntents intents;
    private final DirtyBitmap dirty;
    private final InFlightChunks claims;

    /** {@code regions} regions, every bit set and synced (a job resumed, or in its bulk pass). */
    public IntentsRig(int regions) {
        long size = (long) regions * REGION;
        store = MemoryBitmapStore.allDirty(size, REGION);
        intents = new WriteIntents(store, size, REGION);
        dirty = new DirtyBitmap(size, REGION);
        claims = new InFlightChunks(dirty.chunkCount());
    }

    /** WriteIntents.begin for one byte of {@code region} (a guest write about to hit the source). */
    public void begin(int region) {
        try {
            intents.begin((long) region * REGION, 1);
        } catch (dev.handoff.device.DeviceException e) {
            throw new IllegalStateException(e);
        }
    }

    public void end(int region) {
        intents.end((long) region * REGION, 1);
    }

    /** The candidates of a clear pass now (no chunk is ever dirty or claimed here). */
    public long[] candidates() {
        return intents.candidates(dirty, claims);
    }

    /** WriteIntents.clear of {@code candidates}; the regions cleared. */
    public long clear(long[] candidates) {
        try {
            return intents.clear(candidates);
        } catch (dev.handoff.device.DeviceException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Whether {@code region}'s bit is both written and synced in the store (survives any crash). */
    public boolean covered(int region) {
        return store.liveBit(region) && store.syncedBit(region);
    }
}
