package dev.handoff.stress.mirror;

import dev.handoff.device.DeviceException;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.StandaloneClaims;
import dev.handoff.mirror.StandaloneGate;
import dev.handoff.mirror.SyncMode;
import dev.handoff.stress.ChunkDevice;
import dev.handoff.stress.MirrorRig;
import org.jetbrains.lincheck.Lincheck;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * The kernel's blocking hand-offs, each between real threads under Lincheck's controlled scheduler
 * ({@code Lincheck.runConcurrentTest}), which explores their interleavings and fails on one that
 * leaves a thread waiting forever (a lost wake-up) or breaks the check after the join. Model
 * checking assumes sequential consistency, so these catch wrong protocols, not missing fences;
 * the fences are jcstress's (stress/README.md).
 *
 * <ul>
 *   <li>A write-blocking guest waiting for a claim vs the copy that releases it
 *       ({@code InFlightChunks}, through the kernel test-jar's {@link StandaloneClaims}): caught variants release-without-signal and
 *       claim-wait-without-recheck.</li>
 *   <li>A guest held at a closed {@code GuestGate} (through {@link StandaloneGate}) vs the opener: open-signals-before-clearing.</li>
 *   <li>A guest entering while the gate closes vs the closer waiting for the drain:
 *       gate-waits-without-backing-out.</li>
 *   <li>A guest dirtying a chunk while the copier goes idle ({@code Copier}'s idle flag vs
 *       {@code wakeIfIdle}): copier-skips-second-scan.</li>
 * </ul>
 *
 * <p>Rerun: {@code mvn -pl kernel,stress -am verify -Djcstress.skip -Dstress.test=WakeUpLincheckTest}
 */
class WakeUpLincheckTest {
    static final int INVOCATIONS = 50;

    @Test
    void aGuestWaitingForAClaimGetsItWhenTheCopyReleases() {
        Lincheck.runConcurrentTest(INVOCATIONS, () -> {
            StandaloneClaims claims = new StandaloneClaims(2);
            check(claims.tryClaim(0), "the copy's claim");
            Thread guest = new Thread(() -> claims.claim(0, 1));
            Thread copy = new Thread(() -> claims.release(0, 0));
            guest.start();
            copy.start();
            join(guest);
            join(copy);
            check(claims.isClaimed(0) && claims.isClaimed(1), "the guest does not hold its claims");
        });
    }

    @Test
    void twoGuestsClaimingOverlappingRangesBothGetThem() {
        Lincheck.runConcurrentTest(INVOCATIONS, () -> {
            StandaloneClaims claims = new StandaloneClaims(3);
            AtomicInteger inside = new AtomicInteger();
            Runnable guest = () -> {
                claims.claim(0, 2);
                check(inside.incrementAndGet() == 1, "two guests hold one chunk");
                inside.decrementAndGet();
                claims.release(0, 2);
            };
            Thread a = new Thread(guest);
            Thread b = new Thread(guest);
            a.start();
            b.start();
            join(a);
            join(b);
            check(!claims.anyClaimed(0, 2), "a claim left behind");
        });
    }

    @Test
    void aGuestHeldAtAClosedGateIsLetInWhenItOpens() {
        Lincheck.runConcurrentTest(INVOCATIONS, () -> {
            StandaloneGate gate = new StandaloneGate(() -> { });
            check(gate.close(), "an empty gate drains at once");
            AtomicInteger entered = new AtomicInteger();
            Thread guest = new Thread(() -> {
                gate.enter();
                entered.incrementAndGet();
                gate.exit();
            });
            Thread opener = new Thread(gate::open);
            guest.start();
            opener.start();
            join(guest);
            join(opener);
            check(entered.get() == 1 && gate.inside() == 0 && !gate.isClosed(), "gate " + gate.inside());
        });
    }

    @Test
    void aCloseWaitsOnlyForTheGuestsInside() {
        Lincheck.runConcurrentTest(INVOCATIONS, () -> {
            AtomicInteger drained = new AtomicInteger();
            StandaloneGate gate = new StandaloneGate(drained::incrementAndGet);
            Thread guest = new Thread(() -> {
                gate.enter();
                gate.exit();
            });
            Thread closer = new Thread(() -> {
                if (gate.close()) {
                    drained.incrementAndGet();
                }
                while (drained.get() == 0) {
                    Thread.yield(); // the job waits for the drain callback
                }
                gate.open(); // the conclusion switched the route; guests go on
            });
            guest.start();
            closer.start();
            join(guest);
            join(closer);
            check(gate.inside() == 0 && !gate.isClosed(), "gate left with " + gate.inside() + " inside");
        });
    }

    @Test
    void aGuestDirtyingAChunkWhileTheCopierGoesIdleIsNeverStranded() {
        Lincheck.runConcurrentTest(INVOCATIONS, () -> {
            ChunkDevice source = new ChunkDevice(2);
            ChunkDevice target = new ChunkDevice(2);
            MirrorRig rig = MirrorRig.create(source, target, SyncMode.NONE, CopyMode.BACKGROUND);
            rig.job.start();
            rig.drain(16);
            rig.copierWoken();
            Thread copier = new Thread(rig::pump);
            Thread guest = new Thread(() -> {
                try {
                    rig.guest.write(ChunkDevice.CHUNK, ChunkDevice.chunksOf(3, 1));
                } catch (DeviceException e) {
                    throw new AssertionError(e);
                }
            });
            copier.start();
            guest.start();
            join(copier);
            join(guest);
            rig.drain(64); // whatever the two queued: a wake-up's pump and the copy
            check(!rig.isDirty(1) && target.value(1) == 3, "stranded: chunk 1 dirty = " + rig.isDirty(1)
                    + ", target = " + target.value(1) + ", nothing queued to copy it");
        });
    }

    /** Plain checks: Lincheck's analysis calls equals() on objects in the scenario, which AssertJ forbids. */
    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    private static void join(Thread t) {
        try {
            t.join();
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

}
