package dev.handoff.ownership;

import static dev.handoff.ownership.OwnedImage.State.ACTIVE;
import static dev.handoff.ownership.OwnedImage.State.INACTIVE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.handoff.device.DeviceException;
import dev.handoff.device.FaultyDevice;
import dev.handoff.device.ForwardingBlockDevice;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Activation, inactivation and close: their steps, their order, idempotence and rollback. */
class OwnedImageTransitionTest {

    private final SharedImage shared = new SharedImage();
    private final ExecutorService pool = Executors.newCachedThreadPool();

    @AfterEach
    void stopPool() {
        pool.shutdownNow();
    }

    @Test
    void activationBumpsTheEpochAndMarksTheRecordUnclean() throws Exception {
        try (OwnedImage image = shared.open("a", INACTIVE)) {
            assertThat(image.epoch()).isZero();
            image.activate();
            assertThat(image.state()).isEqualTo(ACTIVE);
            assertThat(image.epoch()).isEqualTo(1);
            assertThat(shared.record()).isEqualTo(new OwnershipRecord(1, "a", false));
            image.inactivate();
            assertThat(shared.record()).isEqualTo(new OwnershipRecord(1, "a", true));
            image.activate();
            assertThat(image.epoch()).isEqualTo(2);
            assertThat(shared.record()).isEqualTo(new OwnershipRecord(2, "a", false));
        }
    }

    @Test
    void inactivationFlushesDataBeforeWritingTheRecordCleanAndThenReleasesTheLock() throws Exception {
        OwnedImage image = shared.open("a", ACTIVE, d -> new RecordingDevice(d, shared.log), ImageTuning.DEFAULT);
        image.write(0, SharedImage.bytes(512, 1));
        shared.log.clear();
        image.inactivate();
        List<String> events = shared.log.snapshot();
        assertThat(events).containsSubsequence("flush:end", "record:write 1 clean");
        assertThat(events.get(events.size() - 1)).isEqualTo("record:write 1 clean");
        assertThat(image.state()).isEqualTo(INACTIVE);
        try (OwnedImage other = shared.open("b", ACTIVE)) {
            assertThat(other.epoch()).isEqualTo(2);
        }
        image.close();
    }

    @Test
    void inactivateWaitsForInFlightWritesAndRefusesWritesThatArriveMeanwhile() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        OwnedImage image = shared.open("a", ACTIVE, d -> new RecordingDevice(new ForwardingBlockDevice(d) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                if (offset == 0) { // the write in flight: held on the device until the test lets it land
                    await(release);
                }
                super.write(offset, src);
            }
        }, shared.log), ImageTuning.DEFAULT);
        Future<?> slowWrite = pool.submit(() -> {
            image.write(0, SharedImage.bytes(512, 5));
            return null;
        });
        awaitEvent("write:begin@0");
        AtomicReference<Thread> inactivator = new AtomicReference<>();
        Future<?> inactivation = pool.submit(() -> {
            inactivator.set(Thread.currentThread());
            image.inactivate();
            return null;
        });
        Parked.awaitIn(inactivator::get, "drain"); // waits for the write in flight, however slow the machine
        assertThat(inactivation).isNotDone();
        // Arrives while inactivation waits: held, then refused.
        AtomicReference<Thread> lateWriter = new AtomicReference<>();
        Future<?> lateWrite = pool.submit(() -> {
            lateWriter.set(Thread.currentThread());
            image.write(1024, SharedImage.bytes(512, 6));
            return null;
        });
        Parked.awaitIn(lateWriter::get, "enterWrite");
        release.countDown();
        slowWrite.get(30, TimeUnit.SECONDS);
        inactivation.get(30, TimeUnit.SECONDS);
        assertThatThrownBy(() -> lateWrite.get(30, TimeUnit.SECONDS)).hasCauseInstanceOf(ImageInactiveException.class);
        List<String> events = shared.log.snapshot();
        assertThat(events).containsSubsequence("write:end@0", "flush:begin", "record:write 1 clean");
        assertThat(events).doesNotContain("write:begin@1024");
        assertThat(SharedImage.read(shared.disk, 0, 512)).isEqualTo(SharedImage.filled(512, 5));
        image.close();
    }

    @Test
    void failedFlushDuringInactivationLeavesTheImageActiveHoldingItsLock() throws Exception {
        FaultyDevice[] faulty = new FaultyDevice[1];
        OwnedImage image = shared.open("a", ACTIVE, d -> faulty[0] = new FaultyDevice(d), ImageTuning.DEFAULT);
        faulty[0].inject(FaultyDevice.Fault.error(DeviceException.Kind.IO_ERROR).on(FaultyDevice.Op.FLUSH).times(1));
        assertThatThrownBy(image::inactivate)
                .isInstanceOf(DeviceException.class)
                .hasMessageContaining("remains ACTIVE")
                .satisfies(e -> assertThat(((DeviceException) e).kind()).isEqualTo(DeviceException.Kind.IO_ERROR));
        assertThat(image.state()).isEqualTo(ACTIVE);
        assertThat(shared.record()).isEqualTo(new OwnershipRecord(1, "a", false));
        try (OwnedImage other = shared.open("b", INACTIVE)) {
            assertThatThrownBy(other::activate).isInstanceOf(ImageInactiveException.class);
        }
        image.write(0, SharedImage.bytes(512, 1)); // still the owner
        image.inactivate(); // the retry goes through
        assertThat(image.state()).isEqualTo(INACTIVE);
        assertThat(shared.record()).isEqualTo(new OwnershipRecord(1, "a", true));
        image.close();
    }

    @Test
    void failedRecordWriteDuringInactivationLeavesTheImageActive() throws Exception {
        try (OwnedImage image = shared.open("a", ACTIVE)) {
            shared.records.failNextWrites(1);
            assertThatThrownBy(image::inactivate).isInstanceOf(DeviceException.class)
                    .hasMessageContaining("remains ACTIVE").hasMessageContaining("ownership record");
            assertThat(image.state()).isEqualTo(ACTIVE);
            image.write(0, SharedImage.bytes(16, 1));
            image.inactivate();
            assertThat(image.state()).isEqualTo(INACTIVE);
        }
    }

    @Test
    void failedRecordReadDuringInactivationLeavesTheImageActive() throws Exception {
        try (OwnedImage image = shared.open("a", ACTIVE)) {
            shared.records.failNextReads(1);
            assertThatThrownBy(image::inactivate).isInstanceOf(DeviceException.class).hasMessageContaining("remains ACTIVE");
            assertThat(image.state()).isEqualTo(ACTIVE);
        }
    }

    @Test
    void failedRecordReadDuringActivationLeavesTheImageInactiveWithItsLockReleased() throws Exception {
        try (OwnedImage image = shared.open("a", INACTIVE)) {
            shared.records.failNextReads(1);
            assertThatThrownBy(image::activate).isInstanceOf(DeviceException.class)
                    .hasMessageContaining("remains INACTIVE and its lock is released");
            assertThat(image.state()).isEqualTo(INACTIVE);
            assertLockFree();
            image.activate(); // retry
            assertThat(image.epoch()).isEqualTo(1);
        }
    }

    @Test
    void failedRecordWriteDuringActivationLeavesTheImageInactiveWithItsLockReleased() throws Exception {
        try (OwnedImage image = shared.open("a", INACTIVE)) {
            shared.records.failNextWrites(1);
            assertThatThrownBy(image::activate).isInstanceOf(DeviceException.class)
                    .hasMessageContaining("remains INACTIVE and its lock is released");
            assertThat(image.state()).isEqualTo(INACTIVE);
            assertThat(shared.record()).isEqualTo(OwnershipRecord.ABSENT);
            assertThatThrownBy(() -> image.write(0, SharedImage.bytes(1, 1))).isInstanceOf(ImageInactiveException.class);
            assertLockFree();
        }
    }

    @Test
    void activationIsRefusedWhileAnotherHolderIsActive() throws Exception {
        try (OwnedImage owner = shared.open("a", ACTIVE); OwnedImage other = shared.open("b", INACTIVE)) {
            long writes = shared.records.writes();
            assertThatThrownBy(other::activate).isInstanceOf(ImageInactiveException.class)
                    .hasMessageContaining("locked by another holder");
            assertThat(other.state()).isEqualTo(INACTIVE);
            assertThat(shared.records.writes()).isEqualTo(writes);
            assertThat(owner.state()).isEqualTo(ACTIVE);
        }
    }

    @Test
    void openingActiveWhileAnotherHolderIsActiveFailsAndWritesNothing() throws Exception {
        try (OwnedImage owner = shared.open("a", ACTIVE)) {
            long writes = shared.records.writes();
            assertThatThrownBy(() -> shared.open("b", ACTIVE)).isInstanceOf(ImageInactiveException.class);
            assertThat(shared.records.writes()).isEqualTo(writes);
            owner.write(0, SharedImage.bytes(1, 1));
        }
    }

    @Test
    void activationDropsEveryCache() throws Exception {
        try (OwnedImage a = shared.open("a", ACTIVE); OwnedImage b = shared.open("b", INACTIVE)) {
            a.write(0, SharedImage.bytes(512, 1));
            assertThat(SharedImage.read(a, 0, 512)).isEqualTo(SharedImage.filled(512, 1));
            assertThat(OwnedImageProbe.headerCached(a)).isTrue();
            HandoffToken token = a.prepareHandoff();
            assertThat(OwnedImageProbe.cachedRecord(a)).isEqualTo(new OwnershipRecord(1, "a", true));
            b.acceptHandoff(token);
            b.write(0, SharedImage.bytes(512, 2)); // another owner rewrites the header
            b.inactivate();
            int drops = OwnedImageProbe.cacheDrops(a);
            a.activate();
            assertThat(OwnedImageProbe.cacheDrops(a)).isEqualTo(drops + 1);
            assertThat(OwnedImageProbe.cachedRecord(a)).isEqualTo(new OwnershipRecord(3, "a", false));
            assertThat(OwnedImageProbe.headerCached(a)).isFalse();
            assertThat(SharedImage.read(a, 0, 512)).isEqualTo(SharedImage.filled(512, 2));
            assertThat(a.epoch()).isEqualTo(3);
        }
    }

    @Test
    void headerCacheServesActiveReadsAndNeverOutlivesAWrite() throws Exception {
        OwnedImage image = shared.open("a", ACTIVE, d -> new RecordingDevice(d, shared.log), ImageTuning.DEFAULT);
        SharedImage.read(image, 0, 512);
        long reads = shared.log.count("read");
        SharedImage.read(image, 100, 200);
        assertThat(shared.log.count("read")).isEqualTo(reads); // served by the cache
        image.write(128, SharedImage.bytes(8, 3));
        assertThat(OwnedImageProbe.headerCached(image)).isFalse();
        assertThat(SharedImage.read(image, 128, 8)).isEqualTo(SharedImage.filled(8, 3));
        image.writeZeroes(128, 8);
        assertThat(SharedImage.read(image, 128, 8)).isEqualTo(new byte[8]);
        image.inactivate();
        SharedImage.read(image, 0, 8);
        assertThat(shared.log.count("read")).isGreaterThan(reads + 1); // inactive: the device again
        image.close();
    }

    @Test
    void closeOfAnInactiveImageWritesNothingAtAll() throws Exception {
        OwnedImage image = shared.open("a", ACTIVE, d -> new RecordingDevice(d, shared.log), ImageTuning.DEFAULT);
        image.write(0, SharedImage.bytes(512, 1));
        image.inactivate();
        OwnershipRecord record = shared.record();
        shared.log.clear();
        image.close();
        assertThat(shared.log.snapshot()).isEmpty();
        assertThat(shared.record()).isEqualTo(record);
    }

    @Test
    void closeOfAnActiveImageFlushesAndMarksTheRecordClean() throws Exception {
        OwnedImage image = shared.open("a", ACTIVE, d -> new RecordingDevice(d, shared.log), ImageTuning.DEFAULT);
        image.write(0, SharedImage.bytes(512, 1));
        shared.log.clear();
        image.close();
        assertThat(shared.log.snapshot()).containsSubsequence("flush:end", "record:write 1 clean");
        assertThat(shared.record()).isEqualTo(new OwnershipRecord(1, "a", true));
        assertLockFree();
    }

    @Test
    void closeOfAnActiveImageWhoseFlushFailsLeavesTheRecordUncleanAndStillCloses() throws Exception {
        FaultyDevice[] faulty = new FaultyDevice[1];
        OwnedImage image = shared.open("a", ACTIVE, d -> faulty[0] = new FaultyDevice(d), ImageTuning.DEFAULT);
        faulty[0].inject(FaultyDevice.Fault.error(DeviceException.Kind.IO_ERROR).on(FaultyDevice.Op.FLUSH));
        assertThatThrownBy(image::close).isInstanceOf(DeviceException.class).hasMessageContaining("left unclean");
        assertThat(shared.record()).isEqualTo(new OwnershipRecord(1, "a", false));
        assertThat(image.state()).isEqualTo(INACTIVE);
        assertThatThrownBy(() -> image.read(0, java.nio.ByteBuffer.allocate(1)))
                .satisfies(e -> assertThat(((DeviceException) e).kind()).isEqualTo(DeviceException.Kind.CLOSED));
        assertLockFree();
    }

    @Test
    void concurrentWritesProceedTogetherAndAllLandBeforeTheInactivationFlush() throws Exception {
        OwnedImage image = shared.open("a", ACTIVE, d -> new RecordingDevice(d, shared.log), ImageTuning.DEFAULT);
        int writers = 4;
        CountDownLatch go = new CountDownLatch(1);
        CompletableFuture<?>[] done = new CompletableFuture<?>[writers];
        for (int w = 0; w < writers; w++) {
            int id = w;
            done[w] = CompletableFuture.runAsync(() -> {
                try {
                    go.await();
                    for (int i = 0; ; i++) {
                        image.write(8192 + id * 4096 + (i % 8) * 512, SharedImage.bytes(512, id + 1));
                    }
                } catch (ImageInactiveException expected) {
                    // inactivated under us: stop
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            }, pool);
        }
        go.countDown();
        Thread.sleep(50);
        image.inactivate();
        CompletableFuture.allOf(done).get(30, TimeUnit.SECONDS);
        List<String> events = shared.log.snapshot();
        int flush = events.indexOf("flush:begin");
        assertThat(flush).isPositive();
        assertThat(events.subList(flush, events.size())).noneMatch(e -> e.startsWith("write:"));
        image.close();
    }

    @Test
    void writesNeverReachTheDeviceWhileInactiveUnderConcurrentTransitions() throws Exception {
        java.util.concurrent.atomic.AtomicReference<OwnedImage> handle = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.ConcurrentLinkedQueue<String> violations = new java.util.concurrent.ConcurrentLinkedQueue<>();
        java.util.concurrent.atomic.AtomicLong landed = new java.util.concurrent.atomic.AtomicLong();
        OwnedImage image = shared.open("a", ACTIVE, d -> new dev.handoff.device.ForwardingBlockDevice(d) {
            // A guard between the handle and the disk: every mutation must happen while ACTIVE.
            private void guard(String op) {
                OwnedImage h = handle.get();
                if (h != null && h.state() != ACTIVE) {
                    violations.add(op + " reached the device while " + h.state());
                }
            }

            @Override
            public void write(long offset, java.nio.ByteBuffer src) throws DeviceException {
                guard("write");
                super.write(offset, src);
                landed.incrementAndGet();
                guard("write (end)");
            }

            @Override
            public void writeZeroes(long offset, long length) throws DeviceException {
                guard("write-zeroes");
                super.writeZeroes(offset, length);
            }

            @Override
            public void discard(long offset, long length) throws DeviceException {
                guard("discard");
                super.discard(offset, length);
            }
        }, ImageTuning.DEFAULT);
        handle.set(image);
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicLong refused = new java.util.concurrent.atomic.AtomicLong();
        List<Future<?>> workers = new java.util.ArrayList<>();
        for (int w = 0; w < 3; w++) {
            int id = w;
            workers.add(pool.submit(() -> {
                for (int i = 0; !stop.get(); i++) {
                    try {
                        switch (i % 3) {
                            case 0 -> image.write(id * 4096L, SharedImage.bytes(512, i));
                            case 1 -> image.writeZeroes(id * 4096L, 512);
                            default -> image.flush();
                        }
                    } catch (ImageInactiveException e) {
                        refused.incrementAndGet();
                    }
                }
                return null;
            }));
        }
        // At least 300 ms of transitions, and on until writes have landed among them: on a loaded machine
        // the workers may not have run at all in the first 300 ms (bounded: a handle that never lets a
        // write land fails below).
        long start = System.nanoTime();
        long end = start + TimeUnit.MILLISECONDS.toNanos(300);
        long limit = start + TimeUnit.SECONDS.toNanos(30);
        int transitions = 0;
        while (System.nanoTime() - end < 0 || (landed.get() == 0 && System.nanoTime() - limit < 0)) {
            image.inactivate();
            Thread.yield();
            image.activate();
            transitions++;
        }
        stop.set(true);
        for (Future<?> f : workers) {
            f.get(30, TimeUnit.SECONDS);
        }
        assertThat(violations).isEmpty();
        assertThat(landed.get()).isPositive();
        assertThat(transitions).isPositive();
        assertThat(image.epoch()).isEqualTo(transitions + 1);
        image.close();
    }

    private void assertLockFree() throws DeviceException {
        InProcessOwnershipLock probe = shared.lock();
        probe.acquire();
        probe.release();
    }

    private void awaitEvent(String event) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!shared.log.snapshot().contains(event)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no " + event + " in " + shared.log.snapshot());
            }
            Thread.sleep(1);
        }
    }

    private static void await(CountDownLatch latch) {
        try {
            latch.await(60, TimeUnit.SECONDS); // the test releases it; the bound only ends a failed test's hold
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
