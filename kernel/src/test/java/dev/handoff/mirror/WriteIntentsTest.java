package dev.handoff.mirror;

import dev.handoff.device.DeviceException;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The persistent write-intent bitmap's two rules (DESIGN §2.10): a write to a region returns from
 * {@code begin} only once the region's bit is synced, and a bit is cleared only for a region with
 * no write in progress or started since, no dirty and no claimed chunk.
 */
class WriteIntentsTest {
    private static final int REGION = 64 << 10;
    private static final int CHUNK = 16 << 10;
    private static final long SIZE = 8L * REGION;

    private static long region(int r) {
        return (long) r * REGION;
    }

    @Test
    void aWriteToACleanRegionReturnsFromBeginOnlyOnceItsBitIsSynced() throws Exception {
        MemoryBitmapStore store = MemoryBitmapStore.clean(SIZE, REGION);
        WriteIntents intents = new WriteIntents(store, SIZE, CHUNK);
        intents.begin(region(3) + 100, 4096);
        assertThat(store.syncedBit(3)).isTrue();
        assertThat(store.syncs()).isEqualTo(1);
        intents.end(region(3) + 100, 4096);
        intents.begin(region(3), REGION);
        intents.end(region(3), REGION);
        assertThat(store.syncs()).as("a durable bit needs no second sync").isEqualTo(1);
    }

    @Test
    void aWriteAcrossARegionBoundarySyncsBothBitsInOneBatch() throws Exception {
        MemoryBitmapStore store = MemoryBitmapStore.clean(SIZE, REGION);
        WriteIntents intents = new WriteIntents(store, SIZE, CHUNK);
        intents.begin(region(2) - 10, 20);
        assertThat(store.syncedBit(1)).isTrue();
        assertThat(store.syncedBit(2)).isTrue();
        assertThat(store.syncs()).isEqualTo(1);
    }

    @Test
    void regionsPersistedAtOpenAreDurableAndAreWhatAResumedJobCopies() throws Exception {
        BitmapHeader h = BitmapHeader.create(SIZE, SIZE, REGION, "s", "t");
        MemoryBitmapStore store = new MemoryBitmapStore(h, new long[] {0b1100_0110L});
        WriteIntents intents = new WriteIntents(store, SIZE, CHUNK);
        List<long[]> ranges = new ArrayList<>();
        intents.forEachPersistedRange((offset, length) -> ranges.add(new long[] {offset, length}));
        assertThat(ranges).containsExactly(new long[] {region(1), 2L * REGION}, new long[] {region(6), 2L * REGION});
        assertThat(intents.persistedBytes()).isEqualTo(4L * REGION);
        intents.begin(region(6), 1);
        assertThat(store.syncs()).isZero();
    }

    @Test
    void concurrentWritersToCleanRegionsShareOneSync() throws Exception {
        MemoryBitmapStore store = MemoryBitmapStore.clean(SIZE, REGION);
        WriteIntents intents = new WriteIntents(store, SIZE, CHUNK);
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch leaderInSync = new CountDownLatch(1);
        store.holdNextSync(release, leaderInSync);
        List<Thread> writers = new ArrayList<>();
        AtomicReference<Throwable> failed = new AtomicReference<>();
        for (int r = 0; r < 8; r++) {
            long at = region(r);
            Thread t = new Thread(() -> {
                try {
                    intents.begin(at, 512);
                    intents.end(at, 512);
                } catch (Throwable e) {
                    failed.set(e);
                }
            });
            writers.add(t);
            t.start();
            if (r == 0) {
                assertThat(leaderInSync.await(30, TimeUnit.SECONDS)).isTrue();
            }
        }
        // Every other writer has set its bit and waits for the batch after the held one.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (intents.bitBytes() < 8L * REGION && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertThat(intents.bitBytes()).isEqualTo(8L * REGION);
        release.countDown();
        for (Thread t : writers) {
            t.join(TimeUnit.SECONDS.toMillis(30));
        }
        assertThat(failed.get()).isNull();
        assertThat(store.syncs()).as("the held batch, then one batch for the seven that waited").isEqualTo(2);
        for (int r = 0; r < 8; r++) {
            assertThat(store.syncedBit(r)).isTrue();
        }
    }

    @Test
    void aFailedSyncFailsTheWriteAndTheNextWriteSyncsTheBit() throws Exception {
        MemoryBitmapStore store = MemoryBitmapStore.clean(SIZE, REGION);
        WriteIntents intents = new WriteIntents(store, SIZE, CHUNK);
        store.failSyncs(1);
        assertThatThrownBy(() -> intents.begin(region(5), 10)).isInstanceOf(DeviceException.class)
                .hasMessageContaining("could not be synced");
        assertThat(store.syncedBit(5)).isFalse();
        DirtyBitmap dirty = new DirtyBitmap(SIZE, CHUNK);
        assertThat(intents.candidates(dirty, new InFlightChunks(dirty.chunkCount())))
                .as("the failed write is not in progress any more").containsExactly(5, 1L << WriteIntents.ACTIVE_BITS);
        intents.begin(region(5), 10);
        assertThat(store.syncedBit(5)).isTrue();
    }

    @Test
    void aRegionIsACandidateOnlyWithNoWriteInProgressAndNoDirtyOrClaimedChunk() throws Exception {
        MemoryBitmapStore store = MemoryBitmapStore.allDirty(4L * REGION, REGION);
        WriteIntents intents = new WriteIntents(store, 4L * REGION, CHUNK);
        DirtyBitmap dirty = new DirtyBitmap(4L * REGION, CHUNK);
        InFlightChunks claims = new InFlightChunks(dirty.chunkCount());
        dirty.markRange(region(1) + REGION - 1, 1);    // region 1: its last chunk dirty
        claims.tryClaim(dirty.chunkOf(region(2)));      // region 2: a copy in flight
        intents.begin(region(3) + 5, 5);                // region 3: a write in progress
        long[] candidates = intents.candidates(dirty, claims);
        assertThat(candidates).containsExactly(0, 0);
        assertThat(intents.clear(candidates)).isEqualTo(1);
        assertThat(store.liveBit(0)).isFalse();
        assertThat(store.liveBit(1) && store.liveBit(2) && store.liveBit(3)).isTrue();
    }

    @Test
    void aWriteThatStartedAfterTheCandidatesWereTakenKeepsTheBit() throws Exception {
        MemoryBitmapStore store = MemoryBitmapStore.allDirty(SIZE, REGION);
        WriteIntents intents = new WriteIntents(store, SIZE, CHUNK);
        DirtyBitmap dirty = new DirtyBitmap(SIZE, CHUNK);
        long[] candidates = intents.candidates(dirty, new InFlightChunks(dirty.chunkCount()));
        assertThat(candidates).hasSize(16);
        intents.begin(region(4), 1); // the bit is durable: no sync, but it counts
        intents.end(region(4), 1);
        assertThat(intents.clear(candidates)).isEqualTo(7);
        assertThat(store.syncedBit(4)).isTrue();
        assertThat(store.syncedBit(3)).as("the clears are synced, once").isFalse();
        assertThat(store.syncs()).isEqualTo(1);
    }

    @Test
    void aWriteAfterAClearSetsTheBitDurablyAgain() throws Exception {
        MemoryBitmapStore store = MemoryBitmapStore.allDirty(SIZE, REGION);
        WriteIntents intents = new WriteIntents(store, SIZE, CHUNK);
        DirtyBitmap dirty = new DirtyBitmap(SIZE, CHUNK);
        intents.clear(intents.candidates(dirty, new InFlightChunks(dirty.chunkCount())));
        assertThat(store.syncedBit(6)).isFalse();
        intents.begin(region(6), 1);
        assertThat(store.syncedBit(6)).isTrue();
        assertThat(store.syncs()).isEqualTo(2);
    }

    /**
     * A write and a clear racing on one region: while the write is between begin and end, the
     * region's bit is set in the store, written and synced (the clear sees the write, or the write
     * sees the clear and sets the bit again before it returns from begin).
     */
    @Test
    void whileAWriteIsInProgressItsRegionsBitIsSyncedWhateverTheClearsDo() throws Exception {
        MemoryBitmapStore store = MemoryBitmapStore.allDirty(SIZE, REGION);
        WriteIntents intents = new WriteIntents(store, SIZE, CHUNK);
        DirtyBitmap dirty = new DirtyBitmap(SIZE, CHUNK);
        InFlightChunks claims = new InFlightChunks(dirty.chunkCount());
        AtomicReference<Throwable> failed = new AtomicReference<>();
        Thread clearer = new Thread(() -> {
            try {
                for (int i = 0; i < 20_000 && failed.get() == null; i++) {
                    intents.clear(intents.candidates(dirty, claims));
                }
            } catch (Throwable e) {
                failed.set(e);
            }
        });
        Thread writer = new Thread(() -> {
            try {
                for (int i = 0; i < 20_000 && failed.get() == null; i++) {
                    long at = region(i & 7);
                    intents.begin(at, 1);
                    if (!store.syncedBit(i & 7) || !store.liveBit(i & 7)) {
                        throw new AssertionError("region " + (i & 7) + " is being written but its bit is not synced: "
                                + store);
                    }
                    intents.end(at, 1);
                }
            } catch (Throwable e) {
                failed.set(e);
            }
        });
        clearer.start();
        writer.start();
        writer.join(TimeUnit.SECONDS.toMillis(60));
        clearer.join(TimeUnit.SECONDS.toMillis(60));
        assertThat(failed.get()).isNull();
    }
}
