package dev.handoff.mirror;

/**
 * The persistent write-intent bitmap's protocol ({@link WriteIntents}, DESIGN §2.10) over an
 * in-memory {@link BitmapStore} that keeps written and synced bits apart, for jcstress harnesses:
 * the kernel's own {@code begin}, {@code end}, {@code candidates} and {@code clear}, and a view of
 * the store that says whether a region's bit is written and synced.
 *
 * <p>Everything under test is the kernel's code; the store only records what it is told (its
 * methods are synchronized: the kernel serializes its store I/O, the arbiter reads afterwards).
 * It lives in the kernel's test sources (published in its test-jar, as {@link MirrorProbe}) because
 * it builds the package-private {@code WriteIntents} and {@code InFlightChunks} directly.
 */
public final class IntentsRig {
    /** Bytes per region, and per chunk (one chunk per region). */
    public static final int REGION = 4096;

    private final Store store;
    private final WriteIntents intents;
    private final DirtyBitmap dirty;
    private final InFlightChunks claims;

    /** {@code regions} regions, every bit set and synced (a job resumed, or in its bulk pass). */
    public IntentsRig(int regions) {
        BitmapHeader h = BitmapHeader.create((long) regions * REGION, (long) regions * REGION, REGION, "s", "t");
        long[] bits = new long[(regions + 63) >>> 6];
        for (int r = 0; r < regions; r++) {
            bits[r >>> 6] |= 1L << r;
        }
        store = new Store(h, bits);
        intents = new WriteIntents(store, h.sourceSize(), REGION);
        dirty = new DirtyBitmap(h.sourceSize(), REGION);
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
        return store.covered(region);
    }

    private static final class Store implements BitmapStore {
        private final BitmapHeader header;
        private final long[] live;
        private final long[] synced;

        Store(BitmapHeader header, long[] bits) {
            this.header = header;
            this.live = bits.clone();
            this.synced = bits.clone();
        }

        @Override
        public BitmapHeader header() {
            return header;
        }

        @Override
        public synchronized long[] load() {
            return live.clone();
        }

        @Override
        public synchronized void write(long[] words, int from, int to) {
            System.arraycopy(words, from, live, from, to - from);
        }

        @Override
        public synchronized void sync() {
            System.arraycopy(live, 0, synced, 0, live.length);
        }

        @Override
        public synchronized void stop(long sourceStamp, long targetStamp) {
            sync();
        }

        @Override
        public void close() {
        }

        synchronized boolean covered(int r) {
            long bit = 1L << r;
            return (live[r >>> 6] & bit) != 0 && (synced[r >>> 6] & bit) != 0;
        }
    }
}
