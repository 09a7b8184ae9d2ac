package dev.handoff.mirror;

import dev.handoff.device.DeviceException;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The persistent write-intent bitmap of a job (DESIGN §2.10): a bit per region of the source that
 * says "the target may differ here", kept in a {@link BitmapStore} so that a job resumed after a
 * crash copies only those regions again.
 *
 * <h2>The two rules</h2>
 * <ol>
 *   <li><b>Durable bit before the write.</b> A guest write to a region whose bit is not durable
 *       waits in {@link #begin} until the bit is set <em>and synced</em>, before it writes the
 *       source: a write that reaches the source (acknowledged or not) is then always covered after
 *       a crash. Writers that need a sync at the same time share one: the first becomes the
 *       leader, writes every pending word and syncs once, and the others wait for that batch
 *       (group commit). A write to a region whose bit is durable pays two RMWs and one volatile
 *       read.</li>
 *   <li><b>Clear only after the copy is durable.</b> A bit is cleared lazily, by a clear pass
 *       ({@link #candidates}, then the target's flush, then {@link #clear}): a region is a
 *       candidate when no write to it is in progress, none of its chunks is dirty or claimed (so
 *       every copy into it has returned), and it is cleared after a flush of the target that began
 *       after that, only if no write to it has started since.</li>
 * </ol>
 *
 * <h2>Protocol overview (the race between a writer and a clear)</h2>
 * Per region, {@link #writes} counts writes started (high bits) and in progress (low
 * {@value #ACTIVE_BITS} bits). A writer increments it (volatile RMW) and then reads the region's
 * {@link #durable} bit (volatile load); a clear clears the durable bit (volatile RMW) and then
 * reads {@link #writes} (volatile load), and restores the bit if the count changed since the
 * region became a candidate. This is a store-load (Dekker) pair on both sides, all volatile or
 * RMW, so at least one sees the other: either the clear sees the writer and keeps the bit, or the
 * writer sees the bit cleared and sets it again durably before it writes. The writer marks its
 * chunks dirty (order 1) before it decrements the count, so a candidate's chunks being clean is a
 * statement about every write counted so far.
 *
 * <p>State other than {@link #writes} and {@link #durable}'s lock-free reads is guarded by
 * {@link #lock}; store I/O runs with {@link #ioBusy} set and the lock released, one batch at a
 * time, so writes reach the store in the order their words were snapshotted.
 *
 * <h2>Access modes</h2>
 * {@code writes} and {@code durable} are touched only through accessors named by mode
 * (CONTRIBUTING, "One accessor convention"): {@code lp} plain load, {@code lv} volatile load;
 * {@code getAndAdd}, {@code getAndOr}, {@code getAndAnd} volatile read-modify-writes.
 * <ul>
 *   <li>{@code writes}: {@link #getAndAddWrites} by writers ({@code +started+1} in {@link #begin},
 *       {@code -1} in {@link #end}, which publishes the writer's dirty marks to the clear pass);
 *       {@link #lvWrites} by the clear pass ({@link #candidates}, {@link #stillIdle},
 *       {@link #clear}), pairing with those RMWs. Stronger than needed in {@link #candidates}
 *       and {@link #stillIdle}, which take a snapshot that {@link #clear} checks again; an acquire
 *       load would do there, and one accessor serves every reader.</li>
 *   <li>{@code durable}: {@link #getAndOrDurable} (after a synced batch, and a clear that backs
 *       off) and {@link #getAndAndDurable} (a clear), under {@link #lock}; {@link #lvDurable} by
 *       {@link #begin} lock-free, the writer's side of the store-load pair; {@link #lpDurable}
 *       under {@link #lock}, which orders it after every RMW.</li>
 * </ul>
 */
final class WriteIntents {
    private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);
    static final int ACTIVE_BITS = 20;
    private static final long ONE_STARTED = 1L << ACTIVE_BITS;
    private static final long ACTIVE_MASK = ONE_STARTED - 1;

    private final BitmapStore store;
    private final int regionShift;
    private final long regionCount;
    private final long deviceSize;
    /** The bits as the store should hold them; guarded by {@link #lock}. */
    private final long[] bits;
    /**
     * Bits known to be durable in the store: a subset of {@link #bits}. Written under {@link #lock}
     * with RMWs; read lock-free by {@link #begin} (see "Access modes").
     */
    private final long[] durable;
    /** Per region: writes started × 2^ACTIVE_BITS + writes in progress (see "Access modes"). */
    private final long[] writes;
    /** The bits found in the store at open: what a resumed job must copy. */
    private final long[] persisted;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition batchDone = lock.newCondition();
    // Guarded by lock.
    private final long[] pendingWords; // bit w: word w of bits differs from what the store has
    private boolean ioBusy;
    private long batchesStarted;
    private long batchesDone;
    private DeviceException lastFailure;
    private long syncs;

    /**
     * Intents over {@code store} for a source of {@code deviceSize} bytes; the store's bits are what
     * the resumed job starts from.
     *
     * @throws IllegalArgumentException if the store's region size is not a multiple of {@code
     *         granularity} or its header's source size is not {@code deviceSize}
     */
    WriteIntents(BitmapStore store, long deviceSize, int granularity) {
        BitmapHeader h = store.header();
        if (h.sourceSize() != deviceSize) {
            throw new IllegalArgumentException("the write-intent bitmap is for a source of " + h.sourceSize()
                    + " bytes, not " + deviceSize);
        }
        if (h.regionSize() < granularity || h.regionSize() % granularity != 0) {
            throw new IllegalArgumentException("the write-intent bitmap's region (" + h.regionSize()
                    + " bytes) must be a multiple of the granularity (" + granularity + " bytes)");
        }
        this.store = store;
        this.regionShift = Integer.numberOfTrailingZeros(h.regionSize());
        this.regionCount = h.regionCount();
        this.deviceSize = deviceSize;
        int words = (int) ((regionCount + 63) >>> 6);
        this.persisted = store.load();
        if (persisted.length != words) {
            throw new IllegalArgumentException("the store holds " + persisted.length + " words, not " + words);
        }
        this.bits = persisted.clone();
        this.durable = persisted.clone(); // published to other threads by the job's construction (final field)
        this.writes = new long[(int) regionCount];
        this.pendingWords = new long[(words + 63) >>> 6];
    }

    long regionCount() {
        return regionCount;
    }

    int regionSize() {
        return 1 << regionShift;
    }

    /* ---- Resume ---- */

    /** Calls {@code action} with the byte range of each run of regions whose bit was persisted at open. */
    void forEachPersistedRange(RangeAction action) {
        long r = nextSet(persisted, 0);
        while (r >= 0) {
            long end = r + 1;
            while (end < regionCount && isSet(persisted, end)) {
                end++;
            }
            long offset = r << regionShift;
            action.accept(offset, Math.min(deviceSize, end << regionShift) - offset);
            r = nextSet(persisted, end);
        }
    }

    /** Bytes of the source the persisted bits cover: what a resumed job copies again. */
    long persistedBytes() {
        return bytesOf(persisted);
    }

    /** Bytes of the source the bits cover now (a snapshot; for progress displays). */
    long bitBytes() {
        lock.lock();
        try {
            return bytesOf(bits);
        } finally {
            lock.unlock();
        }
    }

    /** Batches synced so far (each one store sync). */
    long syncs() {
        lock.lock();
        try {
            return syncs;
        } finally {
            lock.unlock();
        }
    }

    interface RangeAction {
        void accept(long offset, long length);
    }

    /* ---- Guest writes ---- */

    /**
     * Called by a guest write before it touches the source: counts the write in its regions, and
     * returns once every region's bit is durable (rule 1). Pair with {@link #end}, also when the
     * write fails; if this throws, the write is not counted and must not be issued.
     *
     * @return whether it had to set a bit and wait for a sync (false: the fast path)
     */
    boolean begin(long offset, long length) throws DeviceException {
        if (length == 0) {
            return false;
        }
        long first = offset >>> regionShift;
        long last = (offset + length - 1) >>> regionShift;
        boolean allDurable = true;
        for (long r = first; r <= last; r++) {
            getAndAddWrites(r, ONE_STARTED + 1); // then lvDurable below: the writer's side of the pair
        }
        for (long r = first; r <= last && allDurable; r++) {
            allDurable = (lvDurable((int) (r >>> 6)) & (1L << r)) != 0;
        }
        if (allDurable) {
            return false;
        }
        try {
            makeDurable(first, last);
        } catch (DeviceException | RuntimeException e) {
            end(offset, length);
            throw e;
        }
        return true;
    }

    /** Called by a guest write after it marked its chunks dirty (or failed): it is no longer in progress. */
    void end(long offset, long length) {
        if (length == 0) {
            return;
        }
        long first = offset >>> regionShift;
        long last = (offset + length - 1) >>> regionShift;
        for (long r = first; r <= last; r++) {
            getAndAddWrites(r, -1L); // after the writer's dirty marks: the clear pass sees them first
        }
    }

    /** The slow path of {@link #begin}: set the bits, and sync them in a batch shared with other writers. */
    private void makeDurable(long first, long last) throws DeviceException {
        lock.lock();
        try {
            for (long r = first; r <= last; r++) {
                if (!isSet(bits, r)) {
                    bits[(int) (r >>> 6)] |= 1L << r;
                    pendingWords[(int) (r >>> 12)] |= 1L << (r >>> 6);
                }
            }
            // A batch that starts from now on snapshots our bits.
            long need = batchesStarted + 1;
            while (!allDurableLocked(first, last)) {
                if (batchesDone >= need) {
                    // Our batch ran and our bits are still not durable: it failed.
                    throw new DeviceException(lastFailure.kind(),
                            "the write-intent bitmap could not be synced: " + lastFailure.getMessage(), lastFailure);
                }
                if (ioBusy) {
                    batchDone.awaitUninterruptibly();
                } else {
                    runBatchLocked(true);
                }
            }
        } finally {
            lock.unlock();
        }
    }

    private boolean allDurableLocked(long first, long last) {
        for (long r = first; r <= last; r++) {
            if ((lpDurable((int) (r >>> 6)) & (1L << r)) == 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * Writes every pending word (and syncs if {@code sync}), with the lock released during the
     * I/O. Called holding the lock with {@link #ioBusy} clear; returns holding it, with the batch's
     * failure or null.
     */
    private DeviceException runBatchLocked(boolean sync) {
        ioBusy = true;
        long batch = ++batchesStarted;
        int[] words = pendingWordIndexesLocked();
        long[] values = new long[words.length];
        for (int i = 0; i < words.length; i++) {
            values[i] = bits[words[i]];
        }
        Arrays.fill(pendingWords, 0L);
        DeviceException failure = null;
        lock.unlock();
        try {
            long[] image = new long[bits.length];
            for (int i = 0; i < words.length; i++) {
                image[words[i]] = values[i];
            }
            int i = 0;
            while (i < words.length) {
                int j = i + 1;
                while (j < words.length && words[j] == words[j - 1] + 1) {
                    j++;
                }
                store.write(image, words[i], words[j - 1] + 1);
                i = j;
            }
            if (sync) {
                store.sync();
            }
        } catch (DeviceException e) {
            failure = e;
        } catch (RuntimeException e) {
            failure = new DeviceException(DeviceException.Kind.IO_ERROR, "the bitmap store threw " + e, e);
        } finally {
            lock.lock();
        }
        ioBusy = false;
        batchesDone = batch;
        if (failure == null) {
            if (sync) {
                syncs++;
                for (int i = 0; i < words.length; i++) {
                    // Only bits that were in the snapshot written and synced become durable.
                    getAndOrDurable(words[i], values[i]);
                }
            }
        } else {
            lastFailure = failure;
            for (int w : words) {
                pendingWords[w >>> 6] |= 1L << w; // write them again with the next batch
            }
        }
        batchDone.signalAll();
        return failure;
    }

    private int[] pendingWordIndexesLocked() {
        int n = 0;
        for (long p : pendingWords) {
            n += Long.bitCount(p);
        }
        int[] out = new int[n];
        int k = 0;
        for (int i = 0; i < pendingWords.length; i++) {
            long p = pendingWords[i];
            while (p != 0) {
                out[k++] = (i << 6) + Long.numberOfTrailingZeros(p);
                p &= p - 1;
            }
        }
        return out;
    }

    /* ---- Clearing (rule 2) ---- */


    /**
     * The regions that may be cleared once the target has been flushed after this call: bit set,
     * no write in progress, no chunk dirty or claimed. Returns pairs (region, its write count) in
     * one array. Reads the count first, then the dirty bits, then the claims: a copy claims before
     * it clears the dirty bit and releases after its target write, so a chunk found clean and then
     * unclaimed has no copy left to return.
     */
    long[] candidates(DirtyBitmap dirty, InFlightChunks claims) {
        long[] snapshot;
        lock.lock();
        try {
            snapshot = bits.clone();
        } finally {
            lock.unlock();
        }
        long[] out = new long[16];
        int n = 0;
        int chunkShift = Integer.numberOfTrailingZeros(dirty.granularity());
        for (long r = nextSet(snapshot, 0); r >= 0; r = nextSet(snapshot, r + 1)) {
            long count = lvWrites(r); // a write that starts after it changes the count (clear() checks)
            if ((count & ACTIVE_MASK) != 0) {
                continue;
            }
            long offset = r << regionShift;
            long length = Math.min(deviceSize, (r + 1) << regionShift) - offset;
            if (dirty.anyDirty(offset, length)) {
                continue;
            }
            long firstChunk = offset >>> chunkShift;
            long lastChunk = (offset + length - 1) >>> chunkShift;
            if (claims.anyClaimed(firstChunk, lastChunk)) {
                continue;
            }
            if (n + 2 > out.length) {
                out = Arrays.copyOf(out, out.length * 2);
            }
            out[n++] = r;
            out[n++] = count;
        }
        return Arrays.copyOf(out, n);
    }

    /**
     * The candidates (from {@link #candidates}) to which no write has started since: those a clear
     * may still clear. A pass flushes the source and the target only if some remain, so a region
     * that stays hot costs neither a flush nor a sync. Volatile loads of the counts; the clear
     * re-reads each one after it has cleared the durable bit.
     */
    long[] stillIdle(long[] candidates) {
        long[] out = new long[candidates.length];
        int n = 0;
        for (int i = 0; i < candidates.length; i += 2) {
            if (lvWrites(candidates[i]) == candidates[i + 1]) {
                out[n++] = candidates[i];
                out[n++] = candidates[i + 1];
            }
        }
        return Arrays.copyOf(out, n);
    }

    /**
     * Clears the candidates (from {@link #candidates}, before a flush of source and target that has
     * since returned) to which no write has started since, and writes and syncs their words (a
     * clear lost in a crash would only copy a region again, but one sync per pass keeps a resume
     * after READY short). Returns the regions cleared.
     */
    long clear(long[] candidates) throws DeviceException {
        if (candidates.length == 0) {
            return 0;
        }
        lock.lock();
        try {
            while (ioBusy) {
                batchDone.awaitUninterruptibly();
            }
            long cleared = 0;
            for (int i = 0; i < candidates.length; i += 2) {
                long r = candidates[i];
                int w = (int) (r >>> 6);
                long bit = 1L << r;
                if ((bits[w] & bit) == 0) {
                    continue;
                }
                getAndAndDurable(w, ~bit); // then lvWrites: the clear's side of the store-load pair
                long now = lvWrites(r);
                if (now != candidates[i + 1]) {
                    // A write started since: it may have read the bit as durable. Keep it.
                    getAndOrDurable(w, bit);
                    continue;
                }
                bits[w] &= ~bit;
                pendingWords[w >>> 6] |= 1L << w;
                cleared++;
            }
            if (cleared > 0) {
                DeviceException failure = runBatchLocked(true);
                if (failure != null) {
                    throw failure; // the bits are cleared in memory; the next batch writes them
                }
            }
            return cleared;
        } finally {
            lock.unlock();
        }
    }

    /* ---- Helpers ---- */

    private long bytesOf(long[] words) {
        long bytes = 0;
        for (long r = nextSet(words, 0); r >= 0; r = nextSet(words, r + 1)) {
            bytes += Math.min(deviceSize, (r + 1) << regionShift) - (r << regionShift);
        }
        return bytes;
    }

    private static boolean isSet(long[] words, long r) {
        return (words[(int) (r >>> 6)] & (1L << r)) != 0;
    }

    private long nextSet(long[] words, long from) {
        if (from >= regionCount) {
            return -1;
        }
        int w = (int) (from >>> 6);
        long word = words[w] & (-1L << from);
        while (true) {
            if (word != 0) {
                long r = ((long) w << 6) + Long.numberOfTrailingZeros(word);
                return r < regionCount ? r : -1;
            }
            if (++w >= words.length) {
                return -1;
            }
            word = words[w];
        }
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    /** Volatile RMW on region {@code r}'s count: a write starting or ending. */
    private void getAndAddWrites(long r, long delta) {
        LONGS.getAndAdd(writes, (int) r, delta);
    }

    private long lvWrites(long r) {
        return (long) LONGS.getVolatile(writes, (int) r); // pairs with getAndAddWrites
    }

    private long lvDurable(int w) {
        return (long) LONGS.getVolatile(durable, w); // lock-free; pairs with the RMWs below
    }

    private long lpDurable(int w) {
        return (long) LONGS.get(durable, w); // plain: under lock, as every RMW
    }

    /** Volatile RMW under lock: publishes durable bits to {@link #lvDurable}. */
    private void getAndOrDurable(int w, long bitsToSet) {
        LONGS.getAndBitwiseOr(durable, w, bitsToSet);
    }

    /** Volatile RMW under lock: a clear's side of the store-load pair with {@link #begin}. */
    private void getAndAndDurable(int w, long keep) {
        LONGS.getAndBitwiseAnd(durable, w, keep);
    }
}
