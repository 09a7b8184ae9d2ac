package dev.handoff.mirror;

import dev.handoff.device.DeviceException;

import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A {@link BitmapStore} in memory that keeps apart what was written and what was synced, so a test
 * (or the simulator) can {@link #crash()} it: only synced words survive. It can fail or hold its
 * next sync. Thread-safe (one monitor).
 */
public final class MemoryBitmapStore implements BitmapStore {
    private final BitmapHeader header;
    private long[] live;
    private long[] synced;
    private long syncs;
    private long writes;
    private int failSyncs;
    private CountDownLatch holdSync;
    private CountDownLatch syncEntered;

    /** A store for {@code header} whose persisted bits are {@code bits}. */
    public MemoryBitmapStore(BitmapHeader header, long[] bits) {
        this.header = header;
        if (bits.length != FileBitmapStore.wordCount(header)) {
            throw new IllegalArgumentException("expected " + FileBitmapStore.wordCount(header) + " words");
        }
        this.live = bits.clone();
        this.synced = bits.clone();
    }

    /** A store with every region set (a new job that copies everything). */
    public static MemoryBitmapStore allDirty(long size, int regionSize) {
        BitmapHeader h = BitmapHeader.create(size, size, regionSize, "source", "target");
        long[] bits = new long[FileBitmapStore.wordCount(h)];
        for (long r = 0; r < h.regionCount(); r++) {
            bits[(int) (r >>> 6)] |= 1L << r;
        }
        return new MemoryBitmapStore(h, bits);
    }

    /** A store with no region set. */
    public static MemoryBitmapStore clean(long size, int regionSize) {
        BitmapHeader h = BitmapHeader.create(size, size, regionSize, "source", "target");
        return new MemoryBitmapStore(h, new long[FileBitmapStore.wordCount(h)]);
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
        writes++;
    }

    @Override
    public void sync() throws DeviceException {
        CountDownLatch hold;
        synchronized (this) {
            if (failSyncs > 0) {
                failSyncs--;
                throw new DeviceException(DeviceException.Kind.IO_ERROR, "simulated bitmap sync failure");
            }
            hold = holdSync;
            holdSync = null;
            if (syncEntered != null) {
                syncEntered.countDown();
            }
        }
        if (hold != null) {
            try {
                if (!hold.await(30, TimeUnit.SECONDS)) {
                    throw new AssertionError("a held sync was never released");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        synchronized (this) {
            synced = live.clone();
            syncs++;
        }
    }

    @Override
    public synchronized void stop(long sourceStamp, long targetStamp) {
        synced = live.clone();
        syncs++;
    }

    @Override
    public void close() {
    }

    /** A power loss: what was written but not synced is gone. */
    public synchronized void crash() {
        live = synced.clone();
    }

    /** A power loss: each word written but not synced is kept or lost, as {@code random} picks. */
    public synchronized void crash(java.util.Random random) {
        for (int w = 0; w < live.length; w++) {
            if (random.nextBoolean()) {
                live[w] = synced[w];
            } else {
                synced[w] = live[w];
            }
        }
    }

    /** The synced words (what a crash now would leave). */
    public synchronized long[] synced() {
        return synced.clone();
    }

    public synchronized boolean syncedBit(long region) {
        return (synced[(int) (region >>> 6)] & (1L << region)) != 0;
    }

    public synchronized boolean liveBit(long region) {
        return (live[(int) (region >>> 6)] & (1L << region)) != 0;
    }

    public synchronized long syncs() {
        return syncs;
    }

    public synchronized long writes() {
        return writes;
    }

    /** The next {@code n} syncs fail. */
    public synchronized void failSyncs(int n) {
        failSyncs = n;
    }

    /** The next sync waits for {@code release}; {@code entered} counts down when it starts waiting. */
    public synchronized void holdNextSync(CountDownLatch release, CountDownLatch entered) {
        holdSync = release;
        syncEntered = entered;
    }

    @Override
    public synchronized String toString() {
        return "MemoryBitmapStore[live " + Arrays.toString(live) + ", synced " + Arrays.toString(synced) + "]";
    }
}
