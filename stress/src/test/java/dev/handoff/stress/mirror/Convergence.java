package dev.handoff.stress.mirror;

import dev.handoff.mirror.JobState;
import dev.handoff.stress.MirrorRig;

import java.util.function.Supplier;

/**
 * The end of every execution of the mirror's Lincheck scenarios ({@link MirrorCopierScenario},
 * {@link MirrorWriteBlockingLincheckTest}), before anything else runs: the key invariant (DESIGN
 * §3.6: a chunk neither dirty nor in flight holds the same value on both sides), then the copier
 * drained, after which the job is READY and every chunk is clean and in sync. Each scenario then
 * checks the progress a management tool reads in its own terms.
 *
 * <p>Plain checks: Lincheck's analysis calls equals() on objects in the scenario, which AssertJ
 * forbids.
 */
final class Convergence {
    private Convergence() {
    }

    /**
     * Throws if the key invariant fails on one of {@code chunks}, or if draining at most
     * {@code tasks} copier tasks does not leave the job READY with the target equal to the source;
     * {@code violation} is what the scenario's listeners saw go wrong (null: nothing), asked before
     * and after the drain.
     */
    static void keyInvariantThenConverged(MirrorRig rig, int chunks, int tasks, Supplier<String> violation) {
        failOn(violation.get());
        for (int c = 0; c < chunks; c++) {
            if (!rig.cleanImpliesInSync(c)) {
                throw new AssertionError("chunk " + c + " is neither dirty nor in flight but source = "
                        + rig.source.value(c) + ", target = " + rig.target.value(c));
            }
        }
        rig.pump();
        rig.drain(tasks);
        failOn(violation.get());
        if (rig.job.state() != JobState.READY) {
            throw new AssertionError("after draining the copier the job is " + rig.job.state());
        }
        for (int c = 0; c < chunks; c++) {
            if (rig.isDirty(c) || rig.source.value(c) != rig.target.value(c)) {
                throw new AssertionError("after draining, chunk " + c + ": dirty = " + rig.isDirty(c) + ", source = "
                        + rig.source.value(c) + ", target = " + rig.target.value(c));
            }
        }
    }

    private static void failOn(String violation) {
        if (violation != null) {
            throw new AssertionError(violation);
        }
    }
}
