package dev.handoff.stress.mirror;

import dev.handoff.device.DeviceException;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.MirrorEvent;
import dev.handoff.mirror.MirrorFilter;
import dev.handoff.mirror.MirrorProgress;
import dev.handoff.mirror.SyncMode;
import dev.handoff.stress.ChunkDevice;
import dev.handoff.stress.MirrorRig;
import org.jetbrains.kotlinx.lincheck.Actor;
import org.jetbrains.kotlinx.lincheck.execution.ExecutionScenario;
import org.jetbrains.lincheck.datastructures.IntGen;
import org.jetbrains.lincheck.datastructures.ModelCheckingOptions;
import org.jetbrains.lincheck.datastructures.Operation;
import org.jetbrains.lincheck.datastructures.Param;
import org.jetbrains.lincheck.datastructures.Validate;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Method;
import java.util.List;

/**
 * Write-blocking guest writes, of one chunk and of two chunks in one call, racing the real copier
 * under Lincheck's model checker (DESIGN §2.6, §3.4), checked against {@link GuestDiskModel}.
 *
 * <p>The job mirrors three chunks in WRITE_BLOCKING mode and starts READY (the constructor runs the
 * bulk copy). Guests write through the job's {@link MirrorFilter}: a write-blocking write claims its
 * chunks, waiting for a copy that holds one, clears those it covers, writes the source, then the
 * target. A discard takes the background path and marks its chunk dirty, which gives the copier
 * work to race with. The copier's operation wakes it and runs every task it queues (the copy's read
 * and write, as a pool thread would) until none is left: a copy holds its
 * claims only inside one copier operation, so a guest waiting for a claim is always released (the
 * scenario cannot deadlock, whichever thread runs what).
 *
 * <p>Checked: the guest's device is linearizable as one register per chunk (guest reads against
 * {@link GuestDiskModel}; a two-chunk write is one operation); READY and COMPLETED are only
 * announced with nothing in flight; at the end of every execution the key invariant holds (a
 * chunk neither dirty nor in flight holds the same value on both sides); after draining the copier
 * the job is READY, the target equals the source, and the progress a management tool reads is
 * quiescent.
 *
 * <p>Broken variants caught: write-blocking-unordered (the guest skips the claim: a copy in flight
 * overwrites its write-through with older data on a clean chunk), wb-clears-after-target-write (the
 * write-blocking write clears after its target write, erasing a discard's mark that raced it).
 * Rerun: {@code mvn -pl kernel,stress -am verify -Djcstress.skip -Dstress.test=MirrorWriteBlockingLincheckTest}
 */
@Param(name = "value", gen = IntGen.class, conf = "2:3")
public class MirrorWriteBlockingLincheckTest {
    static final int CHUNKS = 3;
    /** The copier runs at most this many tasks per operation: guests queue at most one wake-up each. */
    static final int TASKS_PER_RUN = 64;

    private final MirrorRig rig;
    private volatile String violation;

    public MirrorWriteBlockingLincheckTest() {
        ChunkDevice source = new ChunkDevice(CHUNKS);
        for (int c = 0; c < CHUNKS; c++) {
            source.fill(c, 1);
        }
        rig = MirrorRig.create(source, new ChunkDevice(CHUNKS), SyncMode.FULL, CopyMode.WRITE_BLOCKING);
        rig.job.addListener(e -> {
            if ((e instanceof MirrorEvent.Ready || e instanceof MirrorEvent.Completed)
                    && rig.job.progress().bytesInFlight() != 0) {
                violation = e + " announced with a copy in flight";
            }
        });
        rig.job.start();
        rig.drain(TASKS_PER_RUN);
    }

    @Operation
    public void guestWrite1(@Param(name = "value") int value) throws DeviceException {
        rig.guest.write(ChunkDevice.CHUNK, ChunkDevice.chunksOf(value, 1));
    }

    /** One write-blocking write over chunks 0 and 1: it claims both, in ascending order. */
    @Operation
    public void guestWrite01(@Param(name = "value") int value) throws DeviceException {
        rig.guest.write(0, ChunkDevice.chunksOf(value, 2));
    }

    /** A discard of chunk 1: the background path (source, then mark), never written through. */
    @Operation
    public void guestDiscard1() throws DeviceException {
        rig.guest.discard(ChunkDevice.CHUNK, ChunkDevice.CHUNK);
    }

    @Operation
    public int guestRead0() throws DeviceException {
        return read(0);
    }

    @Operation
    public int guestRead1() throws DeviceException {
        return read(1);
    }

    /**
     * The copier wakes and runs what it queues, oldest task first, until nothing is left (each task
     * may queue the next: a copy's write after its read, a new copy after a release).
     */
    @Operation(nonParallelGroup = "copier")
    public void copierDrains() {
        rig.pump();
        rig.drain(TASKS_PER_RUN);
    }

    private int read(int chunk) throws DeviceException {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(ChunkDevice.CHUNK);
        rig.guest.read((long) chunk * ChunkDevice.CHUNK, b);
        return b.get(0) & 0xff;
    }

    @Validate
    public void cleanChunksAreInSyncAndTheCopierConverges() {
        Convergence.keyInvariantThenConverged(rig, CHUNKS, TASKS_PER_RUN, () -> violation);
        MirrorProgress p = rig.job.progress();
        if (!p.ready() || !p.activelySynced() || p.dirtyBytes() != 0 || p.bytesInFlight() != 0
                || p.offset() != p.length()) {
            throw new AssertionError("quiescent progress " + p);
        }
    }

    /**
     * A few random scenarios, and first the three races the design orders (each explored by the
     * model checker): two write-blocking writes of one chunk (the claim orders them on both
     * sides), a discard's mark vs a write-blocking write's clear of the same chunk (clear, then
     * write), a copy in flight vs a write-blocking write (claim).
     */
    @Test
    void writeBlockingWritesOfOneAndTwoChunksStayLinearizableAndInSync() throws Exception {
        new ModelCheckingOptions()
                .iterations(3)
                .invocationsPerIteration(15)
                .threads(2)
                .actorsPerThread(3)
                .addCustomScenario(scenario(List.of(), List.of(
                        List.of(actor("guestWrite01", 2), actor("guestRead0")),
                        List.of(actor("guestWrite01", 3), actor("guestRead1")))))
                .addCustomScenario(scenario(List.of(), List.of(
                        List.of(actor("guestDiscard1"), actor("copierDrains")),
                        List.of(actor("guestWrite1", 2), actor("guestRead1")))))
                .addCustomScenario(scenario(List.of(actor("guestDiscard1")), List.of(
                        List.of(actor("copierDrains")),
                        List.of(actor("guestWrite01", 3), actor("guestRead1")))))
                .sequentialSpecification(GuestDiskModel.class)
                .minimizeFailedScenario(false)
                .check(getClass());
    }

    private static ExecutionScenario scenario(List<Actor> init, List<List<Actor>> parallel) throws Exception {
        return new ExecutionScenario(init, parallel, List.of(), actor("cleanChunksAreInSyncAndTheCopierConverges"));
    }

    private static Actor actor(String operation, Object... args) throws NoSuchMethodException {
        for (Method m : MirrorWriteBlockingLincheckTest.class.getMethods()) {
            if (m.getName().equals(operation) && m.getParameterCount() == args.length) {
                return new Actor(m, List.of(args), false, false, false, false, false);
            }
        }
        throw new NoSuchMethodException(operation);
    }
}
