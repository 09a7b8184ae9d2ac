package dev.handoff.mirror;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

@Timeout(value = 1, unit = TimeUnit.MINUTES)
class GuestGateTest {
    private final List<Guest> guests = new ArrayList<>();

    @AfterEach
    void stopGuests() {
        guests.forEach(g -> g.thread.shutdownNow());
    }

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

    @Test
    void insideSumsTheCellsOfGuestsOnDifferentStripes() throws Exception {
        GuestGate g = new GuestGate(() -> { });
        List<Guest> two = onDistinctStripes(2);
        two.get(0).run(g::enter);
        two.get(1).run(g::enter);
        two.get(1).run(g::enter);
        assertThat(g.inside()).isEqualTo(3);
        two.get(1).run(g::exit);
        assertThat(g.inside()).isEqualTo(2);
        two.get(0).run(g::exit);
        two.get(1).run(g::exit);
        assertThat(g.inside()).isZero();
    }

    @Test
    void closingWithGuestsInsideOnSeveralStripesIsNotDrainedUntilEveryOneLeft() throws Exception {
        AtomicInteger drained = new AtomicInteger();
        GuestGate g = new GuestGate(drained::incrementAndGet);
        List<Guest> all = onDistinctStripes(GuestGate.STRIPES);
        for (Guest guest : all) {
            guest.run(g::enter);
        }
        assertThat(g.close()).isFalse();
        for (Guest guest : all) {
            assertThat(g.isDrained()).isFalse();
            assertThat(drained).hasValue(0);
            guest.run(g::exit);
        }
        assertThat(g.isDrained()).isTrue();
        assertThat(drained).hasValue(1);
    }

    @Test
    void ofTwoGuestsOnDifferentStripesTheLastToExitAClosedGateRunsTheCallback() throws Exception {
        AtomicInteger drained = new AtomicInteger();
        GuestGate g = new GuestGate(drained::incrementAndGet);
        List<Guest> two = onDistinctStripes(2);
        two.get(0).run(g::enter);
        two.get(1).run(g::enter);
        assertThat(g.close()).isFalse();
        two.get(1).run(g::exit);
        assertThat(drained).hasValue(0);
        assertThat(g.isDrained()).isFalse();
        two.get(0).run(g::exit);
        assertThat(drained).hasValue(1);
        assertThat(g.isDrained()).isTrue();
    }

    @Test
    void anEntryIntoAClosedGateBacksOutAndItsExitFindsTheGateDrained() throws Exception {
        AtomicInteger drained = new AtomicInteger();
        GuestGate g = new GuestGate(drained::incrementAndGet);
        List<Guest> two = onDistinctStripes(2);
        two.get(0).run(g::enter);
        assertThat(g.close()).isFalse();
        boolean[] entered = {true};
        two.get(1).run(() -> entered[0] = g.tryEnter());
        assertThat(entered[0]).isFalse();
        assertThat(g.inside()).isEqualTo(1); // the backed-out entry left its cell as it was
        assertThat(drained).hasValue(0);
        two.get(0).run(g::exit);
        assertThat(drained).hasValue(1);
        two.get(1).run(() -> entered[0] = g.tryEnter());
        assertThat(entered[0]).isFalse();
        assertThat(drained).hasValue(2); // the back-out's exit found it empty too: onDrained is idempotent
        assertThat(g.isDrained()).isTrue();
        g.open();
        two.get(1).run(() -> entered[0] = g.tryEnter());
        assertThat(entered[0]).isTrue();
        assertThat(g.inside()).isEqualTo(1);
    }

    @Test
    void theStripeCountIsAPowerOfTwoBetweenFourAndSixtyFour() {
        assertThat(GuestGate.stripesFor(1)).isEqualTo(4);
        assertThat(GuestGate.stripesFor(2)).isEqualTo(4);
        assertThat(GuestGate.stripesFor(3)).isEqualTo(8);
        assertThat(GuestGate.stripesFor(8)).isEqualTo(16);
        assertThat(GuestGate.stripesFor(20)).isEqualTo(64);
        assertThat(GuestGate.stripesFor(32)).isEqualTo(64);
        assertThat(GuestGate.stripesFor(1000)).isEqualTo(64);
        assertThat(Integer.bitCount(GuestGate.STRIPES)).isEqualTo(1);
    }

    @Test
    void adjacentThreadIdsLandOnDifferentStripes() {
        for (long id = 0; id < 200; id++) {
            assertThat(GuestGate.stripe(id)).isNotEqualTo(GuestGate.stripe(id + 1)).isBetween(0, GuestGate.STRIPES - 1);
        }
    }

    /** {@code n} guest threads whose stripes differ (threads are made until there are enough). */
    private List<Guest> onDistinctStripes(int n) throws Exception {
        List<Guest> picked = new ArrayList<>();
        Set<Integer> stripes = new HashSet<>();
        for (int made = 0; picked.size() < n; made++) {
            assertThat(made).as("threads made to find %d distinct stripes", n).isLessThan(64 * GuestGate.STRIPES);
            Guest guest = new Guest();
            guests.add(guest);
            if (stripes.add(guest.stripe)) {
                picked.add(guest);
            }
        }
        return picked;
    }

    /** A thread of its own, so that each entry and its exit run on the same thread (GuestGate's rule). */
    private static final class Guest {
        final ExecutorService thread = Executors.newSingleThreadExecutor();
        final int stripe;

        Guest() throws Exception {
            stripe = thread.submit(() -> GuestGate.stripe(Thread.currentThread().getId())).get(5, TimeUnit.SECONDS);
        }

        void run(Runnable r) throws Exception {
            thread.submit(r).get(5, TimeUnit.SECONDS);
        }
    }
}
