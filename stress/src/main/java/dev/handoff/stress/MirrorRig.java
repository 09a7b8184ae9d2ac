package dev.handoff.stress;

import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.DirtyBitmap;
import dev.handoff.mirror.ErrorPolicy;
import dev.handoff.mirror.MirrorFilter;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import dev.handoff.mirror.MirrorProbe;
import dev.handoff.mirror.SteppingRuntime;
import dev.handoff.mirror.SyncMode;

/**
 * A real {@link MirrorJob} between two {@link ChunkDevice}s whose runtime is a task list that the
 * harness runs by hand: a jcstress actor or a Lincheck operation plays the copier's thread pool
 * by running queued tasks (a copy's read step, its write step, a wake-up), one at a time.
 *
 * <p>Everything under test is the kernel's own code: the filter's guest paths, the copier's
 * claim / clear / issue, the copy steps, the gate and the lifecycle. The rig only decides
 * <em>when</em> each queued task runs, which a thread pool would decide in production; its
 * runtime is the kernel test-jar's {@link SteppingRuntime}, the one the unit tests and the
 * simulator step too.
 *
 * <p>The job's bitmap and claims are read, and claims driven, through the kernel's published
 * seam {@link MirrorProbe} (its test-jar): harnesses use them to state the key invariant and to
 * play a write-blocking guest's claims, never to change what the kernel decides.
 */
public final class MirrorRig {
    public final ChunkDevice source;
    public final ChunkDevice target;
    public final MirrorJob job;
    public final MirrorFilter guest;
    private final DirtyBitmap bitmap;
    /** The job's runtime: queued tasks run only when an actor runs them (thread-safe). */
    private final SteppingRuntime runtime = new SteppingRuntime();

    private MirrorRig(ChunkDevice source, ChunkDevice target, MirrorOptions options) {
        this.source = source;
        this.target = target;
        this.job = MirrorJob.create(source, target, options, runtime);
        this.guest = job.guestDevice();
        this.bitmap = MirrorProbe.bitmap(job);
    }

    /**
     * A job over {@code chunks} chunks of {@link ChunkDevice#CHUNK} bytes, one chunk per copy
     * operation, not started. {@code source} and {@code target} may carry latency spins.
     */
    public static MirrorRig create(ChunkDevice source, ChunkDevice target, SyncMode sync, CopyMode mode) {
        return create(source, target, sync, mode, ErrorPolicy.REPORT);
    }

    /** As {@link #create(ChunkDevice, ChunkDevice, SyncMode, CopyMode)}, with a target error policy. */
    public static MirrorRig create(ChunkDevice source, ChunkDevice target, SyncMode sync, CopyMode mode,
            ErrorPolicy onTargetError) {
        MirrorOptions options = MirrorOptions.builder()
                .granularity(ChunkDevice.CHUNK)
                .maxCopyBytes(ChunkDevice.CHUNK)
                .bufSize(16L * ChunkDevice.CHUNK)
                .sync(sync)
                .copyMode(mode)
                .onTargetError(onTargetError)
                .copiesWhileGuestWrites(Integer.MAX_VALUE) // no fewer copies beside guests: explore the most (CopierTest checks the policy)
                .build();
        return new MirrorRig(source, target, options);
    }

    /**
     * A job with the given options (their granularity may span several {@link ChunkDevice} chunks,
     * so that a write can cover a mirror chunk in part), not started.
     */
    public static MirrorRig create(ChunkDevice source, ChunkDevice target, MirrorOptions options) {
        return new MirrorRig(source, target, options);
    }

    /* ---- Running tasks ---- */

    /**
     * Runs the oldest queued task; false if none was queued. A timer (an error back-off; no harness
     * sets a speed limit) runs once no other task is queued, the clock jumping to its due time, as
     * if the pool had slept until then.
     */
    public boolean runOne() {
        return runtime.step(0) != null;
    }

    /** Runs the queued task at {@code pick} modulo the queue's length (-1: the newest); false if none was queued. */
    public boolean runPicked(int pick) {
        return runtime.step(pick) != null;
    }

    /** Runs queued tasks until none is left or {@code limit} have run; returns how many ran. */
    public int drain(int limit) {
        int n = 0;
        while (n < limit && runOne()) {
            n++;
        }
        return n;
    }

    /**
     * Plays the copier's thread pool for one actor: waits (at most {@code maxPolls} polls of an
     * empty queue) for the first task, then runs tasks until the queue is empty. In harnesses
     * where a guest's wake-up is the first task, this lines the copier up with the guest as a
     * pool thread would be, without ever blocking for good.
     */
    public int serveFirstThenDrain(int maxPolls, int limit) {
        for (int i = 0; i < maxPolls && queued() == 0; i++) {
            Thread.onSpinWait();
        }
        return drain(limit);
    }

    /**
     * Runs tasks as they come until {@code until} holds, giving up after {@code maxPolls} polls
     * of an empty queue in a row. Lets an actor play the copier while other threads still queue
     * wake-ups (a guest's exit from a held gate, say).
     */
    public void serve(int maxPolls, java.util.function.BooleanSupplier until) {
        int idle = 0;
        while (idle < maxPolls && !until.getAsBoolean()) {
            if (runOne()) {
                idle = 0;
            } else {
                idle++;
                Thread.onSpinWait();
            }
        }
    }

    public int queued() {
        return runtime.queued();
    }

    /** Lets the copier look for work, as a wake-up from a guest or a timer would. */
    public void pump() {
        MirrorProbe.pump(job);
    }

    /**
     * Puts the copier where a guest's wake-up leaves it: no longer idle, about to pump. Set-up only,
     * for a harness that races the copier going idle again (the kernel gets there by a guest's
     * CAS in {@code wakeIfIdle}, whose queued pump the harness would otherwise have to run first).
     */
    public void copierWoken() {
        MirrorProbe.copierWoken(job);
    }

    /* ---- Driving the claims (DESIGN §3.3) ---- */

    /** A write-blocking guest's claim of chunks {@code [first, last]}: ascending, waiting for held ones. */
    public void claim(int first, int last) {
        MirrorProbe.claim(job, first, last);
    }

    /** A copier's claim of {@code chunk}: never waits. */
    public boolean tryClaim(int chunk) {
        return MirrorProbe.tryClaim(job, chunk);
    }

    /** Releases chunks {@code [first, last]}, as a guest write or a copy does when it is done. */
    public void release(int first, int last) {
        MirrorProbe.release(job, first, last);
    }

    /* ---- Observing ---- */

    public boolean isDirty(int chunk) {
        return bitmap.isDirty(chunk);
    }

    public boolean isClaimed(int chunk) {
        return MirrorProbe.isClaimed(job, chunk);
    }

    public DirtyBitmap bitmap() {
        return bitmap;
    }

    /**
     * The key invariant (DESIGN §3.6) for one chunk, to be asked while no task and no guest operation
     * runs: a chunk that is neither dirty nor in flight holds the same value on both sides.
     */
    public boolean cleanImpliesInSync(int chunk) {
        return isDirty(chunk) || isClaimed(chunk) || source.value(chunk) == target.value(chunk);
    }
}
