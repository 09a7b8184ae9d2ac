package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;
import dev.handoff.device.MemoryDevice;
import org.junit.jupiter.api.Test;

import org.opentest4j.TestAbortedException;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Every check of the kit can fail: each device here breaks one clause of the contract the way a
 * real driver might, and the check that holds the device to that clause fails on it, by its name
 * and with a message that says what was lost where.
 */
class KitCatchesBrokenDevicesTest {
    private static final Duration LIMIT = Duration.ofSeconds(60);

    private static CheckFailure failureOf(String checkId, DeviceFactory factory) {
        Check check = Checks.byId(checkId).orElseThrow();
        CheckFailure caught = null;
        for (long seed = 1; seed <= check.defaultSeeds() && caught == null; seed++) {
            try {
                check.run(factory, seed, LIMIT);
            } catch (CheckFailure f) {
                caught = f;
            }
        }
        assertThat(caught).as("%s must fail on this device", checkId).isNotNull();
        assertThat(caught.check()).isEqualTo(checkId);
        assertThat(caught.getMessage()).startsWith("[" + checkId + "] seed " + caught.seed() + ": ");
        return caught;
    }

    @Test
    void aWriteThatDropsItsLastByteAcrossA64KiBBoundaryFailsTheRandomOperations() {
        CheckFailure f = failureOf("random-operations-match-a-byte-array", size -> new ForwardingBlockDevice(new MemoryDevice(size)) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                long end = offset + src.remaining();
                if (offset >>> 16 != (end - 1) >>> 16 && src.remaining() > 1) {
                    src.limit(src.limit() - 1);
                    delegate().write(offset, src);
                    src.limit(src.limit() + 1).position(src.limit());
                    return;
                }
                delegate().write(offset, src);
            }
        });
        assertThat(f.detail()).startsWith("read-matches-model").contains("where the last write put");
    }

    @Test
    void writeZeroesThatSkipsAPartialTailFailsTheRandomOperations() {
        CheckFailure f = failureOf("random-operations-match-a-byte-array", size -> new ForwardingBlockDevice(new MemoryDevice(size)) {
            @Override
            public void writeZeroes(long offset, long length) throws DeviceException {
                delegate().writeZeroes(offset, length & ~511L);
            }
        });
        assertThat(f.detail()).startsWith("read-matches-model");
    }

    @Test
    void aReadThatIgnoresTheBufferPositionFailsTheRandomOperations() {
        CheckFailure f = failureOf("random-operations-match-a-byte-array", size -> new ForwardingBlockDevice(new MemoryDevice(size)) {
            @Override
            public void read(long offset, ByteBuffer dst) throws DeviceException {
                int limit = dst.limit();
                ByteBuffer fresh = ByteBuffer.allocate(dst.remaining());
                delegate().read(offset, fresh);
                dst.clear();
                dst.put(fresh.array(), 0, Math.min(fresh.capacity(), dst.capacity()));
                dst.limit(limit).position(limit);
            }
        });
        assertThat(f.detail()).startsWith("read-matches-model");
    }

    /** A write-back cache whose flush forgets to write back: flushed writes are lost at a power loss. */
    @Test
    void aFlushThatDoesNotWriteBackFailsFlushDurabilityNamingTheLostWrite() {
        CheckFailure f = failureOf("flushed-writes-survive-a-power-loss", new CacheFactory(true));
        assertThat(f.detail()).contains("after the power loss").contains("a flushed write was lost")
                .contains("the slot holds all zeroes");
    }

    @Test
    void aWriteBackCacheThatWritesBackPassesFlushDurability() {
        Checks.byId("flushed-writes-survive-a-power-loss").orElseThrow().run(new CacheFactory(false), 1, LIMIT);
    }

    /** A device that acknowledges a write when half of it has landed, and lands the rest a moment later. */
    @Test
    void aWriteAcknowledgedBeforeItsSecondHalfLandedFailsReadYourWritesAsTorn() throws Exception {
        ExecutorService later = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "late-half");
            t.setDaemon(true);
            return t;
        });
        try {
            CheckFailure f = failureOf("checksummed-concurrent-writes", size -> new ForwardingBlockDevice(new MemoryDevice(size)) {
                @Override
                public void write(long offset, ByteBuffer src) throws DeviceException {
                    int half = src.remaining() / 2;
                    ByteBuffer first = src.duplicate();
                    first.limit(first.position() + half);
                    delegate().write(offset, first);
                    ByteBuffer rest = ByteBuffer.allocate(src.remaining() - half);
                    rest.put(src.duplicate().position(src.position() + half)).flip();
                    src.position(src.limit()); // acknowledged
                    later.execute(() -> {
                        try {
                            Thread.sleep(1);
                            delegate().write(offset + half, rest);
                        } catch (Exception lateForAClosedDevice) {
                            // the check may have closed the device by now: the half is lost, as the check saw
                        }
                    });
                }
            });
            assertThat(f.detail()).startsWith("read-your-writes").contains("a torn block");
        } finally {
            later.shutdownNow();
            later.awaitTermination(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aFilterThatSwallowsItsBackingDevicesFlushErrorFailsFaultPropagation() {
        CheckFailure f = failureOf("backing-faults-reach-the-caller", new DeviceFactory() {
            @Override
            public BlockDevice create(long size) {
                return new MemoryDevice(size);
            }

            @Override
            public Layering layering() {
                return backing -> new ForwardingBlockDevice(backing) {
                    @Override
                    public void flush() {
                        try {
                            delegate().flush();
                        } catch (DeviceException e) {
                            // "best effort": the error the kit must see is swallowed here
                        }
                    }
                };
            }
        });
        assertThat(f.detail()).contains("a flush while the backing device's FLUSH failing with IO_ERROR succeeded")
                .contains("the error was swallowed, expected a DeviceException of kind IO_ERROR");
    }

    @Test
    void aDeviceThatReportsOutOfRangeAsAnIoErrorFailsTheKindCheck() {
        CheckFailure f = failureOf("out-of-range-fails-and-touches-nothing", size -> new ForwardingBlockDevice(new MemoryDevice(size)) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                try {
                    delegate().write(offset, src);
                } catch (DeviceException e) {
                    throw new DeviceException(DeviceException.Kind.IO_ERROR, e.getMessage());
                }
            }
        });
        assertThat(f.detail()).contains("failed with IO_ERROR").contains("expected OUT_OF_RANGE");
    }

    @Test
    void aDeviceThatHangsFailsItsCheckAtTheTimeLimitInsteadOfHangingTheBuild() {
        Check check = Checks.byId("flush-keeps-the-data").orElseThrow();
        assertThatThrownBy(() -> check.run(size -> new ForwardingBlockDevice(new MemoryDevice(size)) {
            @Override
            public void flush() {
                while (true) {
                    try {
                        Thread.sleep(60_000);
                    } catch (InterruptedException e) {
                        return; // the kit interrupts the check's thread at the limit
                    }
                }
            }
        }, 1, Duration.ofMillis(500))).isInstanceOfSatisfying(CheckFailure.class,
                f -> assertThat(f.detail()).contains("did not finish within"));
    }

    /** A kit class nested in a test class (as the NBD module's are) replays through its top-level class, which -Dtest selects. */
    @Test
    void aNestedKitClassesReplayLineSelectsItsTopLevelClass() {
        org.junit.jupiter.api.DynamicTest first = new OneByteTooBig().sequentialContract().findFirst().orElseThrow();
        assertThatThrownBy(() -> first.getExecutable().execute()).isInstanceOfSatisfying(CheckFailure.class,
                f -> assertThat(f.replay()).isEqualTo("mvn test -Dtest=KitCatchesBrokenDevicesTest"
                        + " -Dhandoff.kit.check=reports-its-size -Dhandoff.kit.seed=1"));
    }

    /** Reports one byte more than it was asked for. */
    static final class OneByteTooBig extends DeviceKit {
        @Override
        public BlockDevice create(long size) {
            return new MemoryDevice(size + 1);
        }
    }

    /** A device bug that throws (a race in its bookkeeping, say) is reported with where it threw, in the message itself. */
    @Test
    void aCheckThatEndsWithAnUnexpectedExceptionNamesTheFramesWhereItWasThrown() {
        CheckFailure f = failureOf("checksummed-concurrent-writes", size -> new ForwardingBlockDevice(new MemoryDevice(size)) {
            private final java.util.concurrent.atomic.AtomicInteger writes = new java.util.concurrent.atomic.AtomicInteger();

            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                if (writes.incrementAndGet() == 20) {
                    throw new ArrayIndexOutOfBoundsException("Index 1 out of bounds for length 0");
                }
                delegate().write(offset, src);
            }
        });
        assertThat(f.getCause()).isInstanceOf(ArrayIndexOutOfBoundsException.class);
        assertThat(f.detail()).startsWith("the check ended with java.lang.ArrayIndexOutOfBoundsException: Index 1")
                .contains("\n    at " + KitCatchesBrokenDevicesTest.class.getName() + "$")
                .contains(".write(KitCatchesBrokenDevicesTest.java:");
    }

    /** A check that times out because one of its own threads hangs shows that thread's stack, not only its join. */
    @Test
    void aCheckThatTimesOutShowsWhereEachOfItsThreadsWas() throws Exception {
        java.util.concurrent.CountDownLatch never = new java.util.concurrent.CountDownLatch(1);
        try {
            Check check = Checks.byId("checksummed-concurrent-writes").orElseThrow();
            assertThatThrownBy(() -> check.run(size -> new ForwardingBlockDevice(new MemoryDevice(size)) {
                @Override
                public void write(long offset, ByteBuffer src) throws DeviceException {
                    try {
                        never.await(); // every writer's first write hangs, until the test ends
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    delegate().write(offset, src);
                }
            }, 1, Duration.ofSeconds(3))).isInstanceOfSatisfying(CheckFailure.class, f -> {
                assertThat(f.detail()).contains("did not finish within");
                assertThat(f.getSuppressed()).isNotEmpty().anySatisfy(s -> {
                    assertThat(s.getMessage()).startsWith("thread 'handoff-testkit-writer-");
                    assertThat(s.getStackTrace()).anySatisfy(e -> assertThat(e.getMethodName()).isEqualTo("write"));
                });
                assertThat(f.withReplay("again").getSuppressed()).hasSameSizeAs(f.getSuppressed());
            });
        } finally {
            never.countDown();
        }
    }

    /**
     * Devices that share one block cache keyed by block number alone (a driver written for one disk
     * at a time): each device alone keeps the whole contract, but a mirror's source and target from
     * the same factory see each other's blocks, and the guest reads a block the copier wrote to the
     * target instead of the newer one it wrote to the source.
     */
    @Test
    void devicesSharingOneCacheKeepTheContractAloneButFailTheMirrorCheck() {
        for (Check check : Checks.all()) {
            if (check.group() == Check.Group.MIRROR || check.group() == Check.Group.OWNERSHIP) {
                continue;
            }
            for (long seed = 1; seed <= check.defaultSeeds(); seed++) {
                try {
                    check.run(new SharedCacheFactory(), seed, LIMIT);
                } catch (TestAbortedException needsACapability) {
                    // powerLoss, layering: not offered
                }
            }
        }
        CheckFailure f = failureOf("mirror-seeded-schedule", new SharedCacheFactory());
        assertThat(f.detail()).startsWith("ready-in-sync: ")
                .contains("the job is READY with nothing dirty and no copy in flight, but the source reads")
                .contains("where the newest acknowledged write put").contains("the last steps: ");
    }

    /** Every device of one factory shares one cache (a static one, in the driver this stands for). */
    private static final class SharedCacheFactory implements DeviceFactory {
        private final Map<Long, byte[]> cache = new HashMap<>();

        @Override
        public BlockDevice create(long size) {
            return new SharedCacheDevice(new MemoryDevice(size), cache);
        }
    }

    /**
     * A read cache of 4 KiB blocks, written through: a read fills the blocks it misses, a write puts
     * the blocks it covers whole and drops those it covers in part, write-zeroes and discard drop
     * theirs, a close empties it. Every operation holds the cache's lock, so one device alone is
     * exactly right; the bug is the key, which names the block and not the device.
     */
    private static final class SharedCacheDevice extends ForwardingBlockDevice {
        private static final int BLOCK = 4096;
        private final Map<Long, byte[]> cache;

        SharedCacheDevice(MemoryDevice disk, Map<Long, byte[]> cache) {
            super(disk);
            this.cache = cache;
        }

        @Override
        public void read(long offset, ByteBuffer dst) throws DeviceException {
            synchronized (cache) {
                DeviceException.checkRange(offset, dst.remaining(), size());
                delegate().read(offset, ByteBuffer.allocate(0)); // a closed device still says so
                long pos = offset;
                while (dst.hasRemaining()) {
                    long block = pos / BLOCK;
                    byte[] b = cache.get(block);
                    if (b == null) {
                        b = new byte[(int) Math.min(BLOCK, size() - block * BLOCK)];
                        delegate().read(block * BLOCK, ByteBuffer.wrap(b));
                        cache.put(block, b);
                    }
                    int in = (int) (pos - block * BLOCK);
                    int n = Math.min(dst.remaining(), b.length - in);
                    dst.put(b, in, n);
                    pos += n;
                }
            }
        }

        @Override
        public void write(long offset, ByteBuffer src) throws DeviceException {
            synchronized (cache) {
                ByteBuffer data = src.duplicate();
                long end = offset + src.remaining();
                delegate().write(offset, src);
                for (long block = offset / BLOCK; block * BLOCK < end; block++) {
                    long start = block * BLOCK;
                    long stop = Math.min(start + BLOCK, size());
                    if (start >= offset && stop <= end) {
                        byte[] b = new byte[(int) (stop - start)];
                        data.get(data.position() + (int) (start - offset), b);
                        cache.put(block, b);
                    } else {
                        cache.remove(block);
                    }
                }
            }
        }

        @Override
        public void writeZeroes(long offset, long length) throws DeviceException {
            synchronized (cache) {
                delegate().writeZeroes(offset, length);
                drop(offset, length);
            }
        }

        @Override
        public void discard(long offset, long length) throws DeviceException {
            synchronized (cache) {
                delegate().discard(offset, length);
                drop(offset, length);
            }
        }

        private void drop(long offset, long length) {
            for (long block = offset / BLOCK; block * BLOCK < offset + length; block++) {
                cache.remove(block);
            }
        }

        @Override
        public void close() throws DeviceException {
            synchronized (cache) {
                cache.clear();
                delegate().close();
            }
        }
    }

    /** A factory of write-back cache devices, whose flush writes back (or, broken, forgets to). */
    private static final class CacheFactory implements DeviceFactory {
        private final boolean lostFlush;

        CacheFactory(boolean lostFlush) {
            this.lostFlush = lostFlush;
        }

        @Override
        public BlockDevice create(long size) {
            return new Cache(new MemoryDevice(size), lostFlush);
        }

        @Override
        public PowerLoss powerLoss() {
            return device -> {
                Cache c = (Cache) device;
                c.close();
                return new Cache(c.disk, lostFlush); // the cache's bytes are gone; the disk's stay
            };
        }
    }

    /** Reads and writes go to a volatile cache; flush copies the cache to the disk. */
    private static final class Cache extends ForwardingBlockDevice {
        final MemoryDevice disk;
        private final boolean lostFlush;

        Cache(MemoryDevice disk, boolean lostFlush) {
            super(copyOf(disk));
            this.disk = disk;
            this.lostFlush = lostFlush;
        }

        private static MemoryDevice copyOf(MemoryDevice disk) {
            try {
                MemoryDevice cache = new MemoryDevice(disk.size());
                ByteBuffer all = ByteBuffer.allocate((int) disk.size());
                disk.read(0, all);
                cache.write(0, all.flip());
                return cache;
            } catch (DeviceException e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public synchronized void flush() throws DeviceException {
            delegate().flush();
            if (lostFlush) {
                return; // the write-back is forgotten
            }
            ByteBuffer all = ByteBuffer.allocate((int) delegate().size());
            delegate().read(0, all);
            disk.write(0, all.flip());
        }
    }
}
