package dev.handoff.mirror;

import org.junit.jupiter.api.Test;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

class GuestGateTest {
    @Test
    void closingAnEmptyGateIsDrainedAtOnce() {
        GuestGate g = new GuestGate(() -> { });
        assertThat(g.close()).isTrue();
        assertThat(g.isDrained()).isTrue();
    }

    @Test
    void theLastExitFromAClosedGateRunsTheCallback() {
        AtomicInteger drained = new AtomicInteger();
        GuestGate g = new GuestGate(drained::incrementAndGet);
        g.enter();
        g.enter();
        assertThat(g.close()).isFalse();
        g.exit();
        assertThat(drained).hasValue(0);
        g.exit();
        assertThat(drained).hasValue(1);
        assertThat(g.isDrained()).isTrue();
    }

    @Test
    void aClosedGateHoldsNewOperationsUntilOpened() throws Exception {
        GuestGate g = new GuestGate(() -> { });
        g.close();
        CountDownLatch entered = new CountDownLatch(1);
        Thread guest = new Thread(() -> {
            g.enter();
            entered.countDown();
            g.exit();
        });
        guest.start();
        assertThat(entered.await(100, TimeUnit.MILLISECONDS)).isFalse();
        assertThat(g.inside()).isZero(); // it backed out while waiting
        g.open();
        assertThat(entered.await(5, TimeUnit.SECONDS)).isTrue();
        guest.join();
    }

    @Test
    void openGateCountsOperationsInside() {
        GuestGate g = new GuestGate(() -> { });
        g.enter();
        assertThat(g.inside()).isEqualTo(1);
        assertThat(g.isClosed()).isFalse();
        g.exit();
        assertThat(g.inside()).isZero();
    }
}
