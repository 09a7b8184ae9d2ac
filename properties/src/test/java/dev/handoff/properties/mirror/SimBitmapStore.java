package dev.handoff.properties.mirror;

import dev.handoff.mirror.BitmapHeader;
import java.util.SplittableRandom;

/**
 * The simulator's bitmap file: written words and synced words kept apart; a {@link #crash()} keeps
 * the synced ones and a seeded part of the others (each word whole), as a power loss may. It
 * outlives the incarnations of a job: each {@link #reopen()} is what a restarted process opens.
 * Not thread-safe (the simulator is single-threaded).
 */
final class SimBitmapStore {
    private final BitmapHeader header;
    private final long[] live;
    private final long[] synced;
    private final SplittableRandom random;

    private SimBitmapStore(BitmapHeader header, long[] bits, long seed) {
        this.header = header;
        this.live = bits.clone();
        this.synced = bits.clone();
        this.random = new SplittableRandom(seed);
    }

    /** A new bitmap for a full copy: every region set, synced. */
    static SimBitmapStore allDirty(long size, int region, long seed) {
        BitmapHeader h = BitmapHeader.create(size, size, region, "source", "target");
        long[] bits = new long[(int) ((h.regionCount() + 63) >>> 6)];
        for (long r = 0; r < h.regionCount(); r++) {
            bits[(int) (r >>> 6)] |= 1L << r;
        }
        return new SimBitmapStore(h, bits, seed);
    }

    /** Power loss: synced words stay; each word written since survives or not. */
    void crash() {
        for (int w = 0; w < live.length; w++) {
            if (live[w] != synced[w] && random.nextBoolean()) {
                live[w] = synced[w];
            }
            synced[w] = live[w];
        }
    }

    /** The bits a crash now would leave for sure, if no unsynced word survived (for the checks: after a crash, all of them). */
    long[] durableBits() {
        return synced.clone();
    }

    /** What a (re)started process opens. */
    View reopen() {
        return new View(live.clone());
    }

    /** One incarnation's handle. */
    final class View {
        private final long[] loaded;

        private View(long[] loaded) {
            this.loaded = loaded;
        }

        BitmapHeader header() {
            return header;
        }

        long[] load() {
            return loaded.clone();
        }

        void write(long[] words, int from, int to) {
            System.arraycopy(words, from, live, from, to - from);
        }

        void sync() {
            System.arraycopy(live, 0, synced, 0, live.length);
        }
    }
}
