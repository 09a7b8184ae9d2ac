package dev.handoff.stress.mirror;

import dev.handoff.device.DeviceException;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.ErrorPolicy;
import dev.handoff.mirror.MirrorEvent;
import dev.handoff.mirror.MirrorFilter;
import dev.handoff.mirror.MirrorProgress;
import dev.handoff.mirror.SyncMode;
import dev.handoff.stress.ChunkDevice;
import dev.handoff.stress.MirrorRig;
import org.jetbrains.lincheck.datastructures.IntGen;
import org.jetbrains.lincheck.datastructures.Operation;
import org.jetbrains.lincheck.datastructures.Param;
import org.jetbrains.lincheck.datastructures.Validate;

/**
 * The operations and checks of the mirror's Lincheck tests ({@link MirrorCopierLincheckTest},
 * {@link MirrorIgnoredErrorLincheckTest}): guest writes racing the real copier on a two-chunk
 * mirror (plus a third chunk that only the bulk copy touches), under Lincheck's model checker
 * (DESIGN §5, "copier + writes, validated after"). Guests write in parallel threads through the
 * job's {@link MirrorFilter}; the copier's steps (a queued task: a copy's read, its write, a
 * wake-up, a timer) run in one non-parallel group, oldest or newest first, as a thread pool may
 * run them; {@link #issue()} is the copier looking for work as a completion or a timer
 * makes it.
 *
 * <p>Checked: the guest's device is linearizable as one register per chunk (guest reads against
 * {@link GuestDiskModel}, an independent sequential model, while copier steps run); progress
 * offsets never go down; the key invariant at the end of every execution, before anything else runs (a
 * chunk neither dirty nor in flight holds the same value on both sides); READY and COMPLETED are
 * only announced with nothing in flight; after draining the copier the job is READY and the target
 * equals the source, and the progress a management tool reads says READY with nothing dirty or
 * in flight and every chunk copied.
 *
 * <p>Broken variants caught by {@link MirrorCopierLincheckTest}: overlapping-copies (a second copy of a chunk overtakes the first),
 * mark-before-write and clear-after-read (model checking switches threads between the guest's
 * two steps or the copier's), ready-with-copy-in-flight.
 */
@Param(name = "value", gen = IntGen.class, conf = "2:3")
public abstract class MirrorCopierScenario {
    /** Scenarios per test, and interleavings explored per scenario: about 20 s per test here. */
    static final int ITERATIONS = 20;
    static final int INVOCATIONS = 20;
    /** Chunks 0 and 1 are written by guests; chunk 2 only by the bulk copy. */
    static final int CHUNKS = 3;
    static final int QUIET_CHUNK = 2;

    protected final MirrorRig rig;
    private volatile String violation;
    /** The last progress offset seen by {@link #progress()}; the copier group is one thread at a time. */
    private volatile long lastOffset;

    protected MirrorCopierScenario(boolean failFirstTargetWrite) {
        ChunkDevice source = new ChunkDevice(CHUNKS);
        for (int c = 0; c < CHUNKS; c++) {
            source.fill(c, 1);
        }
        ChunkDevice target = new ChunkDevice(CHUNKS);
        rig = MirrorRig.create(source, target, SyncMode.FULL, CopyMode.BACKGROUND,
                failFirstTargetWrite ? ErrorPolicy.IGNORE : ErrorPolicy.REPORT);
        if (failFirstTargetWrite) {
            target.failNextWritesTo(QUIET_CHUNK, 1);
        }
        // Delivered on the thread that made the transition, right after it; only copier steps make
        // transitions here, so nothing can change bytes in flight between the two.
        rig.job.addListener(e -> {
            if ((e instanceof MirrorEvent.Ready || e instanceof MirrorEvent.Completed)
                    && rig.job.progress().bytesInFlight() != 0) {
                violation = e + " announced with a copy in flight";
            }
        });
        rig.job.start();
    }

    @Operation
    public void guestWrite0(@Param(name = "value") int value) throws DeviceException {
        rig.guest.write(0, ChunkDevice.chunksOf(value, 1));
    }

    @Operation
    public void guestWrite1(@Param(name = "value") int value) throws DeviceException {
        rig.guest.write(ChunkDevice.CHUNK, ChunkDevice.chunksOf(value, 1));
    }

    /** The guest reads chunk 0: the linearizability check compares it with {@link GuestDiskModel}. */
    @Operation
    public int guestRead0() throws DeviceException {
        return read(0);
    }

    @Operation
    public int guestRead1() throws DeviceException {
        return read(1);
    }

    /** Reads the job's progress: offset never goes down, and length never falls below offset. */
    @Operation(nonParallelGroup = "copier")
    public void progress() {
        checkProgress(rig.job.progress());
    }

    private int read(int chunk) throws DeviceException {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(ChunkDevice.CHUNK);
        rig.guest.read((long) chunk * ChunkDevice.CHUNK, b);
        return b.get(0) & 0xff; // ChunkDevice fills a chunk with its value
    }

    private void checkProgress(MirrorProgress p) {
        if (p.offset() < lastOffset || p.length() < p.offset()) {
            violation = "progress went backwards or below its offset: " + p + " after offset " + lastOffset;
        }
        lastOffset = p.offset();
    }

    /** Runs the oldest queued copier task. */
    @Operation(nonParallelGroup = "copier")
    public void copierRunsOldest() {
        rig.runPicked(0);
    }

    /** Runs the newest queued copier task: a pool may run tasks in any order. */
    @Operation(nonParallelGroup = "copier")
    public void copierRunsNewest() {
        rig.runPicked(-1);
    }

    /** The copier looks for dirty chunks now (as after another copy's completion or a timer). */
    @Operation(nonParallelGroup = "copier")
    public void issue() {
        rig.pump();
    }

    @Validate
    public void cleanChunksAreInSyncAndTheCopierConverges() {
        Convergence.keyInvariantThenConverged(rig, CHUNKS, 1_000, () -> violation);
        // What a management tool reads once quiescent, against constants of the model, not the
        // kernel's own counters: nothing dirty or in flight, every chunk copied at least once.
        MirrorProgress p = rig.job.progress();
        checkProgress(p);
        if (violation != null || !p.ready() || p.dirtyBytes() != 0 || p.bytesInFlight() != 0 || p.offset() != p.length()
                || p.offset() < (long) CHUNKS * ChunkDevice.CHUNK) {
            throw new AssertionError(violation != null ? violation : "quiescent progress " + p);
        }
    }
}
