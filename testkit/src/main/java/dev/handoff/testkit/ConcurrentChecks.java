package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;
import org.opentest4j.TestAbortedException;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The concurrent contract: many threads at once on one device, writing {@link Blocks checksummed
 * blocks}.
 *
 * <h2>Protocol</h2>
 * Slot {@code s} belongs to thread {@code s % THREADS}: only its owner writes it, so the last
 * acknowledged version of every slot is known, while neighbouring slots (4099 bytes each) are
 * written by different threads at once, across every segment, page and request boundary a device
 * may have. The threads start together at a barrier, and each first writes its slots at the start
 * of the device in order, so that their first writes race into the same fresh regions.
 *
 * <p>Each slot's state word ({@code state[s]}: version {@code << 1}, low bit set while a write of
 * it is in progress) is a seqlock between its owner and the other threads:
 * <ul>
 *   <li>owner, before the write: a volatile store of the odd word, then a full fence, so that no
 *       byte of the new version can be seen before the odd word (a store-store order; the full
 *       fence is stronger than needed, and this is not a hot path);</li>
 *   <li>owner, after the write returned: a release store of the even word: whoever reads it with
 *       an acquire load happens-after the write returned, so by {@link BlockDevice}'s visibility
 *       clause a read it starts then sees the whole version;</li>
 *   <li>another thread: an acquire load of the word (pairs with the owner's release store), the
 *       read, an acquire fence (orders the read's loads before the next load), a second load;
 *       if both loads saw the same even word, no write of the slot overlapped the read, and the
 *       read must return exactly that version.</li>
 * </ul>
 *
 * <p>The durability check keeps, per slot, the last version whose write returned ({@code acked}):
 * the owner's release store after the write returns pairs with a flusher's acquire load before it
 * calls {@code flush}, so every version a flusher saw had returned before its flush began, and is
 * durable once that flush returns (the contract's durability clause). What each flusher covered is
 * its own array, read only after the threads are joined (join orders it).
 */
final class ConcurrentChecks {
    static final int THREADS = 4;
    private static final int SIZE = SequentialChecks.SIZE;
    private static final int SLOTS = SIZE / Blocks.SLOT;
    /** The slots the durability check writes: 64 slots, 256 KiB, so that flushes and writes meet. */
    private static final int HOT_SLOTS = 64;
    /** The durability check's device: its slots and an unaligned tail (a small device: a power loss may copy it whole). */
    private static final int DURABLE_SIZE = HOT_SLOTS * Blocks.SLOT + 517;
    private static final int DURABILITY_ROUNDS = 12;
    /** Threads of the durability check that write; the others flush. */
    private static final int WRITERS = THREADS / 2;
    private static final VarHandle WORD = MethodHandles.arrayElementVarHandle(long[].class);
    private static final VarHandle INT = MethodHandles.arrayElementVarHandle(int[].class);

    private ConcurrentChecks() {
    }

    static List<Check> all() {
        return List.of(
                new Check("checksummed-concurrent-writes", Check.Group.CONCURRENT,
                        THREADS + " threads write checksummed blocks side by side: each reads its own write back whole"
                                + " (read-your-writes), sees another's acknowledged write whole (acknowledged-write-visible),"
                                + " and every acknowledged write is there at the end (acknowledged-write-lost)",
                        3, ConcurrentChecks::checksummedWrites),
                new Check("flushed-writes-survive-a-power-loss", Check.Group.CONCURRENT,
                        THREADS + " threads write and flush at once; after a power loss every write that returned before a"
                                + " flush that returned is there, whole (needs DeviceFactory.powerLoss)",
                        4, ConcurrentChecks::flushDurability));
    }

    /* ---- checksummed-concurrent-writes ---- */

    private static void checksummedWrites(DeviceFactory f, long seed) throws Exception {
        Blocks blocks = new Blocks(seed);
        long[] state = new long[SLOTS];
        try (BlockDevice d = f.create(SIZE)) {
            runThreads(t -> {
                SplittableRandom r = new SplittableRandom(seed * 1_000_003 + t);
                int writes = 120;
                for (int i = 0; i < writes; i++) {
                    int slot = i < 8 ? owned(t, i) : owned(t, r.nextInt(SLOTS / THREADS));
                    int version = (int) ((long) WORD.get(state, slot) >>> 1) + 1; // plain: only the owner writes it
                    WORD.setVolatile(state, slot, (long) version << 1 | 1);
                    VarHandle.fullFence(); // the odd word before any byte of the new version (see the class comment)
                    Io.write(d, Blocks.offsetOf(slot), blocks.block(slot, version));
                    WORD.setRelease(state, slot, (long) version << 1); // publishes "version returned"
                    byte[] back = Io.read(d, Blocks.offsetOf(slot), Blocks.SLOT);
                    if (!Arrays.equals(back, blocks.block(slot, version))) {
                        throw Violation.of("read-your-writes: thread %d wrote version %d of slot %d (bytes %d+%d) and"
                                + " its own read right after the write returned found %s", t, version, slot,
                                Blocks.offsetOf(slot), Blocks.SLOT, Blocks.describe(slot, back));
                    }
                    if (r.nextInt(3) == 0) {
                        int other = r.nextInt(SLOTS);
                        long before = (long) WORD.getAcquire(state, other); // pairs with the owner's setRelease
                        byte[] seen = Io.read(d, Blocks.offsetOf(other), Blocks.SLOT);
                        VarHandle.acquireFence(); // the read's loads before the second look at the word
                        long after = (long) WORD.getAcquire(state, other);
                        int v = (int) (before >>> 1);
                        if (before == after && (before & 1) == 0 && !Arrays.equals(seen, blocks.block(other, v))) {
                            throw Violation.of("acknowledged-write-visible: thread %d read slot %d (bytes %d+%d) after"
                                    + " the write of its version %d returned, with no write of it in progress, and found %s",
                                    t, other, Blocks.offsetOf(other), Blocks.SLOT, v, Blocks.describe(other, seen));
                        }
                    }
                    if (r.nextInt(16) == 0) {
                        d.flush();
                    }
                }
            });
            byte[] all = Io.read(d, 0, SIZE);
            for (int slot = 0; slot < SLOTS; slot++) {
                int v = (int) ((long) WORD.getVolatile(state, slot) >>> 1);
                byte[] got = Arrays.copyOfRange(all, (int) Blocks.offsetOf(slot), (int) Blocks.offsetOf(slot) + Blocks.SLOT);
                if (!Arrays.equals(got, blocks.block(slot, v))) {
                    throw Violation.of("acknowledged-write-lost: after every thread finished, slot %d (bytes %d+%d) holds"
                            + " %s; the last write there, version %d, was acknowledged", slot, Blocks.offsetOf(slot),
                            Blocks.SLOT, Blocks.describe(slot, got), v);
                }
            }
            for (int i = SLOTS * Blocks.SLOT; i < SIZE; i++) {
                if (all[i] != 0) {
                    throw Violation.of("acknowledged-write-lost: byte %d, past the last slot and never written, reads %d", i,
                            all[i]);
                }
            }
        }
    }

    /* ---- flushed-writes-survive-a-power-loss ---- */

    private static void flushDurability(DeviceFactory f, long seed) throws Exception {
        DeviceFactory.PowerLoss powerLoss = f.powerLoss();
        if (powerLoss == null) {
            throw new TestAbortedException("no power loss to simulate (DeviceFactory.powerLoss)");
        }
        for (int round = 0; round < DURABILITY_ROUNDS; round++) {
            flushDurabilityRound(f, powerLoss, seed * DURABILITY_ROUNDS + round);
        }
    }

    /**
     * One device, one power loss. Half the threads write the first {@link #HOT_SLOTS} slots only, in
     * bursts of three writes to a slot, flushing now and then; the other half flush in a loop, and
     * each write waits (briefly) for a flush to be in progress, so that writes land on pages,
     * segments and requests that a flush is writing back: where a device's flush loses a racing
     * write, it is there.
     */
    private static void flushDurabilityRound(DeviceFactory f, DeviceFactory.PowerLoss powerLoss, long seed)
            throws Exception {
        Blocks blocks = new Blocks(seed);
        int[] acked = new int[HOT_SLOTS];          // last version whose write returned: owner's setRelease, anyone's getAcquire
        int[][] durable = new int[THREADS][HOT_SLOTS]; // per thread: versions a flush of its own covered
        BlockDevice created = f.create(DURABLE_SIZE);
        BlockDevice d = created;
        BlockDevice reopened = null;
        try {
            AtomicInteger writing = new AtomicInteger(WRITERS);
            AtomicInteger flushing = new AtomicInteger();
            runThreads(t -> {
                SplittableRandom r = new SplittableRandom(seed * 7_000_003 + t);
                if (t < WRITERS) {
                    // A writer: bursts of writes to one of its slots, a flush of its own now and then.
                    int mine = HOT_SLOTS / WRITERS;
                    for (int i = 0; i < 100; i++) {
                        int slot = t + WRITERS * r.nextInt(mine);
                        for (int burst = 0; burst < 3; burst++) {
                            awaitAFlush(flushing);
                            durableWrite(created, blocks, acked, slot);
                        }
                        if (i % 4 == 3) {
                            flushCovering(created, acked, durable[t]);
                        }
                    }
                    writing.decrementAndGet(); // a volatile RMW: the flushers' get sees it
                } else {
                    // A flusher: flushes while the writers write, so that writes land on what a flush
                    // is writing back (where a flush that drops a racing write shows).
                    for (int n = 0; n < 10_000 && writing.get() > 0; n++) {
                        flushing.incrementAndGet(); // the writers wait (a little) for a flush in progress
                        try {
                            flushCovering(created, acked, durable[t]);
                        } finally {
                            flushing.decrementAndGet();
                        }
                    }
                }
            });
            // Every write returned: this flush makes all of them durable; one write after it is not.
            flushCovering(created, acked, durable[0]);
            durableWrite(created, blocks, acked, 0);
            d = null; // the power loss takes it
            reopened = powerLoss.reopen(created);
            if (reopened.size() != DURABLE_SIZE) {
                throw Violation.of("the device reopened after the power loss has %d bytes, not %d", reopened.size(),
                        DURABLE_SIZE);
            }
            byte[] all = Io.read(reopened, 0, DURABLE_SIZE);
            for (int slot = 0; slot < HOT_SLOTS; slot++) {
                int flushed = 0;
                for (int t = 0; t < THREADS; t++) {
                    flushed = Math.max(flushed, durable[t][slot]);
                }
                verifySurvivor(blocks, slot, flushed, acked[slot], all);
            }
        } finally {
            Io.closeQuietly(d);
            Io.closeQuietly(reopened);
        }
    }

    /**
     * Spins a little (about a hundred microseconds at most) until some flush is in progress, so that
     * the next write lands while one runs; gives up quietly on a device whose flushes are too quick.
     */
    private static void awaitAFlush(AtomicInteger flushing) {
        long until = System.nanoTime() + 100_000;
        while (flushing.get() == 0 && System.nanoTime() < until) { // volatile read of the flushers' RMWs
            Thread.onSpinWait();
        }
    }

    /** Writes the next version of {@code slot} (owned by the calling thread) and publishes that it returned. */
    private static void durableWrite(BlockDevice d, Blocks blocks, int[] acked, int slot) throws Exception {
        int version = (int) INT.get(acked, slot) + 1; // plain: only the owner writes it
        Io.write(d, Blocks.offsetOf(slot), blocks.block(slot, version));
        INT.setRelease(acked, slot, version); // publishes "this version returned" to the flushers
    }

    /** Flushes; every version that had returned when the flush began is then durable. */
    private static void flushCovering(BlockDevice d, int[] acked, int[] durable) throws Exception {
        int[] before = new int[HOT_SLOTS];
        for (int s = 0; s < HOT_SLOTS; s++) {
            before[s] = (int) INT.getAcquire(acked, s); // pairs with each owner's setRelease
        }
        d.flush();
        for (int s = 0; s < HOT_SLOTS; s++) {
            durable[s] = Math.max(durable[s], before[s]);
        }
    }

    /** Each byte of the slot must be that of the flushed version or of a later one (which may survive in part). */
    private static void verifySurvivor(Blocks blocks, int slot, int flushed, int last, byte[] all) {
        int base = (int) Blocks.offsetOf(slot);
        List<byte[]> candidates = new ArrayList<>();
        for (int v = flushed; v <= last; v++) {
            candidates.add(blocks.block(slot, v));
        }
        for (int i = 0; i < Blocks.SLOT; i++) {
            byte b = all[base + i];
            boolean ok = false;
            for (byte[] c : candidates) {
                if (c[i] == b) {
                    ok = true;
                    break;
                }
            }
            if (!ok) {
                byte[] got = Arrays.copyOfRange(all, base, base + Blocks.SLOT);
                throw Violation.of("after the power loss byte %d of slot %d (bytes %d+%d) reads %d, which neither version"
                        + " %d (flushed: its write returned before a flush that returned) nor a later one (up to %d) wrote"
                        + " there: a flushed write was lost; the slot holds %s", base + i, slot, base, Blocks.SLOT, b,
                        flushed, last, Blocks.describe(slot, got));
            }
        }
    }

    /* ---- Threads ---- */

    /** Slot number {@code i} of thread {@code t}'s own slots. */
    private static int owned(int t, int i) {
        int slot = t + THREADS * i;
        return slot < SLOTS ? slot : t;
    }

    /** Runs {@code worker} on {@link #THREADS} threads started together; rethrows the first failure. */
    private static void runThreads(Crew.Member worker) throws Exception {
        Crew.run(THREADS, t -> "handoff-testkit-writer-" + t, worker);
    }

}
