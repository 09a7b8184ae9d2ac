package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;

/**
 * One copy of a run of adjacent chunks, source to target, sparse-aware: holes of the source are
 * not read, and zero chunks are not written as data. The {@link Copier} has already done
 * the first two steps (claim every chunk, then clear its dirty bit); this object runs the rest as
 * two tasks on the job's runtime: {@link #readSource()}, then {@link #writeTarget()}, then
 * {@link #release()}. Each step is a separate task so a deterministic scheduler can interleave
 * guest writes between them; a runtime of real threads, where guests interleave anyway, runs the
 * write right after the read on the same thread ({@link JobRuntime#separatesCopySteps}).
 *
 * <p>Which thread runs a copy: the runtime's, as a task, for a copy issued by a command, a pump or a
 * timer; for a copy issued by another copy's completion, the thread that ran that copy, if the
 * runtime allows it ({@link JobRuntime#carriesNextCopy}): {@link #release} returns the copy the
 * completion kept for this thread, and {@link #run} runs it next, after the lock is released and
 * the events delivered (Copier, "Threads"). Its steps are the same either way; the hand-off
 * between them ({@link #step}) is then within one thread.
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
    private int step = READ; // confined: each step runs after the previous one handed over via the runtime or the job's lock
    /** Null unless a JFR recording takes {@link CopyEvent}; confined as {@link #step} is. */
    private CopyEvent event;
    /** The source answered that the whole run is a hole; set by the read, confined as {@link #step} is. */
    private boolean allHole;
    boolean skippedZero;
    /**
     * How many copies the thread that runs this one has carried in a row before it (0 for a copy
     * the runtime ran as a task); set under the job's lock before this copy's thread takes it
     * (Copier.takeCarriedLocked), read under it at its completion.
     */
    int carriedInRow;

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

    /**
     * Runs this copy's next step, and then each copy the finishing thread carries on with (see the
     * class comment): a loop, so a long stream of carried copies never deepens the stack.
     */
    @Override
    public void run() {
        CopyOperation op = this;
        while (op != null) {
            op = op.step == READ ? op.readSource() : op.writeTarget();
        }
    }

    /**
     * Step 3: read the source. Ranges the source reports as holes ({@link BlockDevice#nextData},
     * asked after the clear, like the read itself) are not read but zero-filled: a guest write that
     * lands there after the question dirties the chunk again, as one that lands after a read does.
     * A run that is one hole from end to end is not even zero-filled: {@link #writeTarget()} then
     * takes it as one zero extent without looking at the buffer. That is the same outcome (the
     * spec's CopyRead reads zeroes, its CopyWrite writes them or finds them there), without a memset
     * and a compare of the whole buffer per copy, which for a mostly sparse image of 1 TiB was most
     * of the job's CPU time (docs/BENCHMARKS.md, "Resident memory and time at 1 TiB").
     */
    CopyOperation readSource() {
        MirrorTrace t = copier.trace;
        if (t != null) {
            t.begin();
        }
        CopyEvent ev = RecorderGate.recorderUp() ? CopyEvent.startIfRecording() : null;
        event = ev;
        // Store-load barrier between the Copier's testAndClear (a store to the dirty word) and our
        // read of the source data. Pairs with the fence in DirtyBitmap.markRange.
        VarHandle.fullFence();
        buffer.clear().limit(length);
        DeviceException failure = null;
        try {
            long end = offset + length;
            long pos = offset;
            while (pos < end) {
                long data = Math.min(end, source.nextData(pos));
                if (data == end && pos == offset) {
                    allHole = true; // the write takes the run as one zero extent: nothing to fill
                    break;
                }
                if (data > pos) {
                    zeroFill((int) (pos - offset), (int) (data - pos));
                    pos = data;
                    continue;
                }
                long hole = Math.min(end, source.nextHole(pos));
                if (hole <= pos) {
                    hole = end; // a device that answers nonsense is read whole
                }
                buffer.limit((int) (hole - offset)).position((int) (pos - offset));
                source.read(pos, buffer);
                pos = hole;
            }
        } catch (DeviceException e) {
            failure = e;
        } catch (RuntimeException e) {
            failure = unexpected(e);
        } finally {
            if (ev != null) {
                ev.readDone();
            }
            // The whole read, holes and data extents, is the spec's one step (CopyRead).
            if (t != null) {
                t.end(MirrorTrace.Step.COPY_READ, failure == null ? MirrorTrace.OK : MirrorTrace.failKind(failure),
                        firstChunk, 0);
            }
        }
        if (failure != null) {
            return fail(MirrorEvent.Side.SOURCE, MirrorEvent.Operation.READ, failure);
        }
        buffer.position(0).limit(length);
        step = WRITE;
        if (copier.separatesSteps()) {
            copier.execute(this);
            return null;
        }
        return writeTarget();
    }

    private void zeroFill(int from, int n) {
        buffer.limit(from + n).position(from);
        while (buffer.hasRemaining()) {
            buffer.put(Copier.zeroes(buffer.remaining()));
        }
    }

    /**
     * Step 4: write the target, chunk by chunk: a run of chunks holding data is written, a run of
     * zero chunks is written as write-zeroes (which keeps a sparse target sparse), or skipped where
     * the target is known to read as zeroes already. So a target stays as sparse as the source, to
     * within one chunk per extent.
     */
    CopyOperation writeTarget() {
        MirrorTrace t = copier.trace;
        if (t != null) {
            t.begin();
        }
        MirrorEvent.Operation op = MirrorEvent.Operation.WRITE;
        int granularity = copier.granularity();
        DeviceException failure = null;
        try {
            int pos = 0;
            if (allHole) { // one zero extent, the buffer never filled (readSource)
                if (copier.targetKnownZero(offset, length)) {
                    skippedZero = true;
                } else {
                    op = MirrorEvent.Operation.WRITE_ZEROES;
                    target.writeZeroes(offset, length);
                }
                pos = length;
            }
            boolean zero = pos == length || Copier.isZero(slice(0, Math.min(length, granularity)));
            while (pos < length) {
                int end = Math.min(length, pos + granularity);
                boolean nextZero = zero;
                while (end < length) {
                    int chunkEnd = Math.min(length, end + granularity);
                    nextZero = Copier.isZero(slice(end, chunkEnd));
                    if (nextZero != zero) {
                        break;
                    }
                    end = chunkEnd;
                }
                long at = offset + pos;
                int n = end - pos;
                if (zero) {
                    if (copier.targetKnownZero(at, n)) {
                        skippedZero = true;
                    } else {
                        op = MirrorEvent.Operation.WRITE_ZEROES;
                        target.writeZeroes(at, n);
                    }
                } else {
                    op = MirrorEvent.Operation.WRITE;
                    copier.noteTargetWrite(at, n);
                    target.write(at, slice(pos, end));
                }
                pos = end;
                zero = nextZero;
            }
        } catch (DeviceException e) {
            failure = e;
        } catch (RuntimeException e) {
            failure = unexpected(e);
        } finally {
            if (event != null) {
                event.writeDone();
            }
            // Every write of the run, data and zero extents, is the spec's one step (CopyWrite).
            if (t != null) {
                t.end(MirrorTrace.Step.COPY_WRITE, failure == null ? MirrorTrace.OK : MirrorTrace.failKind(failure),
                        firstChunk, 0);
            }
        }
        if (failure != null) {
            return fail(MirrorEvent.Side.TARGET, op, failure);
        }
        return release();
    }

    private ByteBuffer slice(int from, int to) {
        return buffer.duplicate().limit(to).position(from);
    }

    /** Step 5: release the claim; the copy is done. Returns the copy this thread runs next, or null. */
    CopyOperation release() {
        finishEvent(null);
        return copier.release(this, null, null, null);
    }

    private CopyOperation fail(MirrorEvent.Side side, MirrorEvent.Operation op, DeviceException e) {
        finishEvent(side);
        return copier.release(this, side, op, e);
    }

    private void finishEvent(MirrorEvent.Side failedSide) {
        if (event != null) {
            event.finish(offset, length, skippedZero, failedSide);
        }
    }

    private DeviceException unexpected(RuntimeException e) {
        return new DeviceException(DeviceException.Kind.IO_ERROR, "device threw " + e, e);
    }
}
