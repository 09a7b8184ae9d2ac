package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;

/**
 * One copy of a run of adjacent chunks, source to target. The {@link Copier} has already done
 * the first two steps (claim every chunk, then clear its dirty bit); this object runs the rest as
 * two tasks on the job's runtime: {@link #readSource()}, then {@link #writeTarget()}, then
 * {@link #release()}. Each step is a separate task so a deterministic scheduler can interleave
 * guest writes between them; a runtime of real threads, where guests interleave anyway, runs the
 * write right after the read on the same thread ({@link JobRuntime#separatesCopySteps}).
 *
 * <p>Why this order (DESIGN §3.2): the dirty bit is cleared <em>before</em> the read, so a guest write
 * that lands after the read sets it again and the chunk is copied once more; clearing after the
 * read would lose that write. The claim is held until the target write returns, so no second copy
 * of these chunks can overtake this one. A failed step marks the run dirty again <em>before</em>
 * releasing the claim, so at no instant is the run neither dirty nor claimed while the target
 * differs: the key invariant.
 */
final class CopyOperation implements Runnable {
    private static final int READ = 0;
    private static final int WRITE = 1;

    private final Copier copier;
    private final BlockDevice source;
    private final BlockDevice target;
    final long firstChunk;
    final long lastChunk;
    final long offset;
    final int length;
    final ByteBuffer buffer;
    private int step = READ; // confined: each step runs after the previous one handed over via the runtime
    boolean skippedZero;

    CopyOperation(Copier copier, BlockDevice source, BlockDevice target, long firstChunk, long lastChunk,
            long offset, int length, ByteBuffer buffer) {
        this.copier = copier;
        this.source = source;
        this.target = target;
        this.firstChunk = firstChunk;
        this.lastChunk = lastChunk;
        this.offset = offset;
        this.length = length;
        this.buffer = buffer;
    }

    @Override
    public void run() {
        if (step == READ) {
            readSource();
        } else {
            writeTarget();
        }
    }

    /** Step 3: read the source. */
    void readSource() {
        // Store-load barrier between the Copier's testAndClear (a store to the dirty word) and our
        // read of the source data. Pairs with the fence in DirtyBitmap.markRange.
        VarHandle.fullFence();
        buffer.clear().limit(length);
        try {
            source.read(offset, buffer);
        } catch (DeviceException e) {
            fail(MirrorEvent.Side.SOURCE, MirrorEvent.Operation.READ, e);
            return;
        } catch (RuntimeException e) {
            fail(MirrorEvent.Side.SOURCE, MirrorEvent.Operation.READ, unexpected(e));
            return;
        }
        buffer.flip();
        step = WRITE;
        if (copier.separatesSteps()) {
            copier.execute(this);
        } else {
            writeTarget();
        }
    }

    /** Step 4: write the target (write-zeroes for a zero run, or nothing if the target is known zero there). */
    void writeTarget() {
        MirrorEvent.Operation op = MirrorEvent.Operation.WRITE;
        try {
            if (Copier.isZero(buffer)) {
                if (copier.targetKnownZero(offset, length)) {
                    skippedZero = true;
                } else {
                    op = MirrorEvent.Operation.WRITE_ZEROES;
                    target.writeZeroes(offset, length);
                }
            } else {
                copier.noteTargetWrite(offset, length);
                target.write(offset, buffer);
            }
        } catch (DeviceException e) {
            fail(MirrorEvent.Side.TARGET, op, e);
            return;
        } catch (RuntimeException e) {
            fail(MirrorEvent.Side.TARGET, op, unexpected(e));
            return;
        }
        release();
    }

    /** Step 5: release the claim; the copy is done. */
    void release() {
        copier.release(this, null, null, null);
    }

    private void fail(MirrorEvent.Side side, MirrorEvent.Operation op, DeviceException e) {
        copier.release(this, side, op, e);
    }

    private DeviceException unexpected(RuntimeException e) {
        return new DeviceException(DeviceException.Kind.IO_ERROR, "device threw " + e, e);
    }
}
