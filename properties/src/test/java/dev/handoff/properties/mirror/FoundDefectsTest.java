package dev.handoff.properties.mirror;

import dev.handoff.device.DeviceException;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.ErrorPolicy;
import dev.handoff.mirror.SyncMode;
import dev.handoff.properties.mirror.MirrorScenario.Action;
import dev.handoff.properties.mirror.MirrorScenario.Cmd;
import dev.handoff.properties.mirror.MirrorScenario.Command;
import dev.handoff.properties.mirror.MirrorScenario.Config;
import dev.handoff.properties.mirror.MirrorScenario.Fault;
import dev.handoff.properties.mirror.MirrorScenario.Fill;
import dev.handoff.properties.mirror.MirrorScenario.Side;
import dev.handoff.properties.mirror.MirrorScenario.Step;
import dev.handoff.properties.mirror.MirrorScenario.SetSpeed;
import dev.handoff.properties.mirror.MirrorScenario.Write;
import dev.handoff.properties.sim.PropertyViolation;
import dev.handoff.properties.sim.SimDevice;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.fail;

/**
 * The shrunk scenarios of the four kernel defects the simulator found, kept as regression cases:
 * each must now run clean. Each is also the fastest check for the broken variant that puts its
 * defect back (mutant catalog: speed-limit-never-refills, cancel-hides-reported-failure,
 * backoff-timer-lost, failed-write-blocking-write-no-wake).
 * <ol>
 *   <li>RateLimiter started with {@code sliceEnd = Long.MIN_VALUE}; {@code now - Long.MIN_VALUE}
 *       overflows for a positive clock, so the first slice never ended and a speed-limited copier
 *       stalled for ~292 years after its first slice (liveness).</li>
 *   <li>A cancel() while a REPORT failure waited for copies in flight replaced FAILED with
 *       CANCELLED (error-policy).</li>
 *   <li>A second IGNORE error during a back-off pushed retryAt past the pending timer, which then
 *       fired, found it early, and scheduled nothing: the copier stalled (liveness).</li>
 *   <li>A write-blocking write whose source write failed marked its chunks dirty and rethrew
 *       without waking an idle copier (liveness).</li>
 * </ol>
 * The last test keeps a false alarm of the simulator's own liveness property from coming back.
 */
class FoundDefectsTest {

    private static Config config(long speed, SyncMode sync, CopyMode mode, ErrorPolicy onSource,
            ErrorPolicy onTarget) {
        return new Config(1, 0, 16, 0, 4, 1, speed, sync, mode, onSource, onTarget, false, 0);
    }

    private static void assertRunsClean(Config config, Action... actions) {
        MirrorScenario s = new MirrorScenario(config, List.of(actions));
        try {
            new MirrorSimulation(s).run();
        } catch (PropertyViolation v) {
            fail("a defect the simulator found once is back: " + v.getMessage() + "\n" + s, v);
        }
    }

    @Test
    void speedLimitedCopierKeepsCopyingAfterItsFirstSlice() {
        assertRunsClean(config(5_120, SyncMode.FULL, CopyMode.BACKGROUND, ErrorPolicy.REPORT,
                ErrorPolicy.REPORT), new Command(Cmd.START));
    }

    @Test
    void aCancelDoesNotHideAReportedFailure() {
        assertRunsClean(config(0, SyncMode.FULL, CopyMode.BACKGROUND, ErrorPolicy.REPORT,
                ErrorPolicy.REPORT), new Command(Cmd.START),
                new Fault(Side.TARGET, SimDevice.FaultOp.WRITE, DeviceException.Kind.IO_ERROR, 100), new Step(0),
                new Step(3), new Command(Cmd.CANCEL));
    }

    @Test
    void aSecondIgnoredErrorDuringABackOffDoesNotStallTheCopier() {
        assertRunsClean(config(0, SyncMode.FULL, CopyMode.BACKGROUND, ErrorPolicy.IGNORE,
                ErrorPolicy.IGNORE), new Command(Cmd.START),
                new Fault(Side.SOURCE, SimDevice.FaultOp.READ, DeviceException.Kind.IO_ERROR, 100), new Step(0),
                new Step(0), new Fault(Side.SOURCE, SimDevice.FaultOp.READ, DeviceException.Kind.IO_ERROR, 0));
    }

    @Test
    void aFailedWriteBlockingSourceWriteWakesTheCopier() {
        assertRunsClean(config(0, SyncMode.NONE, CopyMode.WRITE_BLOCKING, ErrorPolicy.REPORT,
                ErrorPolicy.REPORT), new Command(Cmd.START),
                new Fault(Side.SOURCE, SimDevice.FaultOp.WRITE, DeviceException.Kind.IO_ERROR, 100),
                new Write(0, 100, Fill.PATTERN));
    }

    /**
     * Found by the fuzzer in CI, a defect of the property, not of the kernel: healing gave the
     * job one virtual hour whatever its speed limit, and a 4 bytes/s limit needs about two hours
     * for the 20 KiB left dirty. Liveness now allows the copy time the speed limit needs.
     */
    @Test
    void aJobSlowedToAFewBytesPerSecondIsSlowNotStalled() {
        Config slow = new Config(-1543345000184496677L, 3, 16, 0, 5, 1, 0, SyncMode.NONE, CopyMode.BACKGROUND,
                ErrorPolicy.ENOSPC, ErrorPolicy.REPORT, false, 643);
        assertRunsClean(slow, new Write(50463654, 50448, Fill.PATTERN, 2), new SetSpeed(4));
    }
}
