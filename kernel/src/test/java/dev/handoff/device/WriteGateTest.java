package dev.handoff.device;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The write gate in front of an exported image: refusing and rerouting wait for the writes in
 * flight, and nothing starts on the old setting afterwards. The races themselves are jcstress's
 * (WriteVsRouteSwitch, WriteVsRefuseWrites); these tests pin the behaviour step by step.
 */
class WriteGateTest {
    private final ExecutorService pool = Executors.newCachedThreadPool();

    @AfterEach
    void stop() {
        pool.shutdownNow();
    }

    /** A device whose next write waits, once inside, until the test lets it go. */
    private static final class HeldWrite extends ForwardingBlockDevice {
        final CountDownLatch inside = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);

        HeldWrite(long size) {
            super(new MemoryDevice(size));
        }

        @Override
        public void write(long offset, ByteBuffer src) throws DeviceException {
            inside.countDown();
            try {
                release.await(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            super.write(offset, src);
        }
    }

    private static byte read(BlockDevice d, long offset) throws DeviceException {
        ByteBuffer b = ByteBuffer.allocate(1);
        d.read(offset, b);
        return b.get(0);
    }

    @Test
    void aRefusedGateRefusesEveryWriteLikeOperationAsInactiveAndStillServesReads() throws Exception {
        MemoryDevice image = new MemoryDevice(4096);
        WriteGate gate = new WriteGate(image);
        gate.write(0, ByteBuffer.wrap(new byte[] {7}));
        gate.refuseWrites("handed over");
        assertThat(gate.refusesWrites()).isTrue();
        for (ThrowingCall call : new ThrowingCall[] {
                () -> gate.write(0, ByteBuffer.wrap(new byte[] {9})), () -> gate.writeZeroes(0, 512),
                () -> gate.discard(0, 512), gate::flush}) {
            assertThatThrownBy(call::run).isInstanceOf(DeviceException.class).hasMessage("handed over")
                    .extracting(e -> ((DeviceException) e).kind()).isEqualTo(DeviceException.Kind.INACTIVE);
        }
        assertThat(read(gate, 0)).isEqualTo((byte) 7);
        assertThat(read(image, 0)).isEqualTo((byte) 7);
        gate.acceptWrites();
        gate.write(0, ByteBuffer.wrap(new byte[] {9}));
        assertThat(read(image, 0)).isEqualTo((byte) 9);
    }

    @Test
    void refusingWritesReturnsOnlyOnceTheWriteInFlightHasLanded() throws Exception {
        HeldWrite image = new HeldWrite(4096);
        WriteGate gate = new WriteGate(image);
        Future<?> write = pool.submit(() -> {
            gate.write(0, ByteBuffer.wrap(new byte[] {5}));
            return null;
        });
        assertThat(image.inside.await(30, TimeUnit.SECONDS)).isTrue();
        CompletableFuture<Void> refuse = CompletableFuture.runAsync(() -> gate.refuseWrites("handed over"), pool);
        Thread.sleep(50); // a refusal that did not wait would be done by now; a slow machine only hides that
        assertThat(refuse).isNotDone();
        image.release.countDown();
        refuse.get(30, TimeUnit.SECONDS);
        assertThat(read(image, 0)).isEqualTo((byte) 5); // landed before the refusal returned
        write.get(30, TimeUnit.SECONDS); // (its future completes a moment after the write left the gate)
    }

    @Test
    void aRouteSwitchReturnsOnlyOnceTheWriteInFlightOnTheOldRouteHasLandedAndSendsLaterOnesToTheNewRoute()
            throws Exception {
        HeldWrite old = new HeldWrite(4096);
        MemoryDevice next = new MemoryDevice(4096);
        WriteGate gate = new WriteGate(old);
        Future<?> write = pool.submit(() -> {
            gate.write(0, ByteBuffer.wrap(new byte[] {5}));
            return null;
        });
        assertThat(old.inside.await(30, TimeUnit.SECONDS)).isTrue();
        CompletableFuture<Void> route = CompletableFuture.runAsync(() -> gate.route(next), pool);
        Thread.sleep(50);
        assertThat(route).isNotDone();
        old.release.countDown();
        route.get(30, TimeUnit.SECONDS);
        assertThat(read(old, 0)).isEqualTo((byte) 5); // landed on the old route before the switch returned
        write.get(30, TimeUnit.SECONDS);
        assertThat(gate.route()).isSameAs(next);

        gate.write(1, ByteBuffer.wrap(new byte[] {6}));
        gate.flush();
        assertThat(read(next, 1)).isEqualTo((byte) 6);
        assertThat(read(old, 1)).isEqualTo((byte) 0);
        assertThat(read(gate, 1)).isEqualTo((byte) 6);
    }

    @Test
    void aRouteOfAnotherSizeIsRefusedAndClosingTheGateClosesNoRoute() throws Exception {
        MemoryDevice image = new MemoryDevice(4096);
        WriteGate gate = new WriteGate(image);
        assertThatThrownBy(() -> gate.route(new MemoryDevice(8192))).isInstanceOf(IllegalArgumentException.class);
        gate.close();
        assertThat(read(image, 0)).isZero();
        assertThat(gate.size()).isEqualTo(4096);
    }

    @Test
    void theAllocationMapIsTheRoutesAlsoWhileWritesAreRefused() throws Exception {
        long mib = 1 << 20;
        MemoryDevice image = new MemoryDevice(4 * mib);
        image.write(2 * mib, ByteBuffer.wrap(new byte[] {1}));
        WriteGate gate = new WriteGate(image);
        gate.refuseWrites("handed over");
        assertThat(gate.nextData(0)).isEqualTo(2 * mib);
        assertThat(gate.nextHole(2 * mib)).isEqualTo(3 * mib);

        MemoryDevice next = new MemoryDevice(4 * mib);
        next.write(0, ByteBuffer.wrap(new byte[] {1}));
        gate.route(next);
        assertThat(gate.nextData(0)).isZero();
        assertThat(gate.nextHole(0)).isEqualTo(mib);
    }

    private interface ThrowingCall {
        void run() throws Exception;
    }
}
