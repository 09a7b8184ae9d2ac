package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;

/**
 * The guest-facing device of a mirror job: the guest reads and writes through it while the job
 * copies the source to the target, and keeps using it after the job ends (it then forwards to
 * the target after a pivot, to the source otherwise).
 *
 * <h2>Protocol overview</h2>
 * While the job runs, every operation enters the job's {@link GuestGate} so that a pivot can hold
 * new operations and wait for those inside. Inside:
 * <ul>
 *   <li><b>Background write</b>: write the source, then mark the touched chunks dirty (DESIGN
 *       §3.1: marking first would let the copier clear the bit and copy the old bytes before
 *       the write lands). Even a failed write marks, since it may have been applied in part. No
 *       lock, no allocation: a gate RMW (own cell) and flag read, the guest-write flag, the
 *       device write, the bitmap's fence and read, and at most one RMW for a clean chunk.</li>
 *   <li><b>Either write path</b> (writes, write-zeroes, discards; not reads or flushes) first
 *       tells the copier a guest is writing ({@link Copier#noteGuestWrite}: an opaque load of a
 *       flag, and an opaque store only if the copier cleared it since; no RMW, fence or clock
 *       read), so that it keeps fewer copies in flight meanwhile (Copier, "Copy depth").</li>
 *   <li><b>Write-blocking write</b>: claim the touched chunks (waiting for an in-flight copy of
 *       any of them: order 4), clear the dirty bits of the chunks it covers completely, write
 *       the source, write the target, release. Two such writes to a chunk are serialized by the
 *       claim, so source and target see them in the same order. Clearing is what makes
 *       write-blocking converge whatever the guest's write rate: a guest write never leaves work
 *       for the copier in a chunk it rewrote whole. A chunk covered only in part stays dirty (the
 *       rest of it may still differ). A failed source or target write marks the chunks dirty
 *       again before the claim is released; a failed target write goes to the job's
 *       on-target-error policy and the guest's write still succeeds (the source has it).</li>
 *   <li><b>With a persistent write-intent bitmap</b> (DESIGN §2.10) each write, write-zeroes and
 *       discard first waits in {@link WriteIntents#begin} until its regions' bits are durable, and
 *       ends with {@link WriteIntents#end} after its dirty marks.</li>
 *   <li><b>Reads</b>, and the allocation map ({@link #nextData}, {@link #nextHole}), go to the
 *       source; <b>flush</b> flushes the source (the target is flushed
 *       before a pivot); <b>discard</b> discards on the source and marks the chunks dirty.</li>
 * </ul>
 * When the job concludes it writes {@link #passthrough} (volatile) while the gate is closed and
 * drained, then opens the gate; the open's volatile store of the gate's flag, which every entry
 * reads, orders that write before any later operation. From then on operations skip the gate.
 *
 * <h2>Access modes</h2>
 * The fields the job writes and guests read are touched only through accessors named by mode
 * (CONTRIBUTING, "One accessor convention"): {@code lv} volatile load, {@code sv} volatile store.
 * <ul>
 *   <li>{@code passthrough}: {@link #svPassthrough} by the job under its lock, with the gate
 *       closed and drained; {@link #lvPassthrough} by every operation, before the gate (the fast
 *       path after the conclusion, which needs at least an acquire to see the route) and inside
 *       it (where the gate's read of its flag already orders it after the store: stronger than
 *       needed there; one accessor serves both, and the re-read inside the gate happens only
 *       while the job runs).</li>
 *   <li>{@code writeThrough}: {@link #svWriteThrough} by the job under its lock when the copy
 *       mode or the state changes; {@link #lvWriteThrough} by a guest inside the gate, choosing
 *       its path. A switch to write-blocking while guests run reaches each guest at its next
 *       entry at the latest.</li>
 *   <li>{@code closed}: {@link #svClosed} by {@link #close()}, {@link #lvClosed} by every
 *       operation first. Stronger than needed: an operation racing with close may go either way,
 *       so opaque accesses would do; it is one load on the guest's path, as cheap as a plain one
 *       on x86-64.</li>
 * </ul>
 *
 * <p>{@link #close()} closes this view only: the source and target belong to the embedder.
 */
public final class MirrorFilter implements BlockDevice {
    private static final int WRITE = MirrorTrace.OP_WRITE;
    private static final int WRITE_ZEROES = MirrorTrace.OP_WRITE_ZEROES;
    private static final int DISCARD = MirrorTrace.OP_DISCARD;
    private static final int READ = MirrorTrace.OP_READ;
    private static final int FLUSH = MirrorTrace.OP_FLUSH;
    private static final VarHandle PASSTHROUGH;
    private static final VarHandle WRITE_THROUGH;
    private static final VarHandle CLOSED;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            PASSTHROUGH = l.findVarHandle(MirrorFilter.class, "passthrough", BlockDevice.class);
            WRITE_THROUGH = l.findVarHandle(MirrorFilter.class, "writeThrough", boolean.class);
            CLOSED = l.findVarHandle(MirrorFilter.class, "closed", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final MirrorJob job;
    private final BlockDevice source;
    private final BlockDevice target;
    private final DirtyBitmap bitmap;
    private final InFlightChunks claims;
    private final GuestGate gate;
    private final Copier copier;
    /** The persistent write-intent bitmap's protocol, or null (DESIGN §2.10). */
    private final WriteIntents intents;
    private final long size;
    /** Null unless the job is traced; see MirrorTrace (every use is one load and one branch). */
    private final MirrorTrace trace;

    /** Null while mirroring; the source or the target once the job has concluded. */
    @SuppressWarnings("unused") // through PASSTHROUGH
    private BlockDevice passthrough;
    /** Whether writes also go to the target; written by the job under its lock. */
    @SuppressWarnings("unused") // through WRITE_THROUGH
    private boolean writeThrough;
    @SuppressWarnings("unused") // through CLOSED
    private boolean closed;

    MirrorFilter(MirrorJob job, BlockDevice source, BlockDevice target, DirtyBitmap bitmap, InFlightChunks claims,
            GuestGate gate, Copier copier, WriteIntents intents, MirrorTrace trace) {
        this.job = job;
        this.source = source;
        this.target = target;
        this.bitmap = bitmap;
        this.claims = claims;
        this.gate = gate;
        this.copier = copier;
        this.intents = intents;
        this.size = source.size();
        this.trace = trace;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        ensureOpen();
        MirrorTrace t = trace;
        BlockDevice p = lvPassthrough();
        if (p != null) {
            // The job ended: straight to where it left the guest (one step; the route never changes again).
            if (t != null) {
                t.begin();
            }
            try {
                p.read(offset, dst);
            } finally {
                if (t != null) {
                    t.end(MirrorTrace.Step.FAST_PATH, READ, offset, dst.remaining());
                }
            }
            return;
        }
        enterGate(READ, offset, dst.remaining());
        try {
            if (t != null) {
                t.begin();
            }
            try {
                p = lvPassthrough(); // re-read: a conclusion may have switched it while we waited
                (p != null ? p : source).read(offset, dst);
            } finally {
                if (t != null) {
                    t.end(MirrorTrace.Step.GUEST_IO, READ, offset, 0);
                }
            }
        } finally {
            exitGate();
        }
    }

    /**
     * The allocation map of the device reads go to, entered through the gate as a read is: a query
     * racing the pivot answers from the source before it and from the target after it, never from
     * the source once writes land on the target (which would report as holes ranges they filled).
     * DESIGN §2.4.
     */
    @Override
    public long nextData(long offset) throws DeviceException {
        return allocation(true, offset);
    }

    @Override
    public long nextHole(long offset) throws DeviceException {
        return allocation(false, offset);
    }

    private long allocation(boolean data, long offset) throws DeviceException {
        ensureOpen();
        BlockDevice p = lvPassthrough();
        if (p == null) {
            // Holds the gate as a read does, untraced: the query changes nothing, so it is no step of
            // the MirrorCopy spec, and trace validation sees only the guest I/O the spec models.
            gate.enter();
            try {
                p = lvPassthrough(); // re-read: a conclusion may have switched it while we waited
                p = p != null ? p : source;
                return data ? p.nextData(offset) : p.nextHole(offset);
            } finally {
                gate.exit();
            }
        }
        return data ? p.nextData(offset) : p.nextHole(offset);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        mutate(WRITE, offset, src.remaining(), src);
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        mutate(WRITE_ZEROES, offset, length, null);
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        mutate(DISCARD, offset, length, null);
    }

    @Override
    public void flush() throws DeviceException {
        ensureOpen();
        MirrorTrace t = trace;
        BlockDevice p = lvPassthrough();
        if (p != null) {
            // The job ended: straight to where it left the guest (one step; the route never changes again).
            if (t != null) {
                t.begin();
            }
            try {
                p.flush();
            } finally {
                if (t != null) {
                    t.end(MirrorTrace.Step.FAST_PATH, FLUSH, 0, 0);
                }
            }
            return;
        }
        enterGate(FLUSH, 0, 0);
        try {
            if (t != null) {
                t.begin();
            }
            try {
                p = lvPassthrough();
                (p != null ? p : source).flush();
            } finally {
                if (t != null) {
                    t.end(MirrorTrace.Step.GUEST_IO, FLUSH, 0, 0);
                }
            }
        } finally {
            exitGate();
        }
    }

    /** Closes this view; the source and target stay open. */
    @Override
    public void close() {
        svClosed(true);
    }

    /** Where guest operations land: the source while the job runs or after it ends without a pivot, the target after a pivot. */
    public BlockDevice currentDevice() {
        BlockDevice p = lvPassthrough();
        return p != null ? p : source;
    }

    /* ---- Called by the job under its lock ---- */

    void setWriteThrough(boolean on) {
        svWriteThrough(on);
    }

    void setPassthrough(BlockDevice device) {
        svPassthrough(device);
    }

    /** Whether a guest write entering now takes the write-blocking path (a volatile read; for checks). */
    boolean writesThrough() {
        return lvWriteThrough() && lvPassthrough() == null;
    }

    /* ---- Guest write paths ---- */

    private void mutate(int op, long offset, long length, ByteBuffer src) throws DeviceException {
        ensureOpen();
        BlockDevice.checkRange(offset, length, size);
        MirrorTrace t = trace;
        BlockDevice p = lvPassthrough();
        if (p != null) {
            // The job ended: straight to where it left the guest (one step; the route never changes again).
            if (t != null) {
                t.begin();
            }
            try {
                apply(p, op, offset, length, src);
            } finally {
                if (t != null) {
                    t.end(MirrorTrace.Step.FAST_PATH, op, offset, length);
                }
            }
            return;
        }
        int path = enterGate(op, offset, length);
        try {
            if (path == ROUTED) {
                if (t != null) {
                    t.begin();
                }
                try {
                    apply(lvPassthrough(), op, offset, length, src);
                } finally {
                    if (t != null) {
                        t.end(MirrorTrace.Step.GUEST_IO, op, offset, length);
                    }
                }
            } else {
                copier.noteGuestWrite(); // the copier keeps fewer copies in flight while guests write
                WriteIntents i = intents;
                if (i != null) {
                    beginIntent(i, offset, length);
                }
                try {
                    if (path == WRITE_BLOCKING) {
                        writeBlocking(op, offset, length, src);
                    } else {
                        writeBackground(op, offset, length, src);
                    }
                } finally {
                    if (i != null) {
                        endIntent(i, offset, length);
                    }
                }
            }
        } finally {
            exitGate();
        }
    }

    /**
     * WriteIntents.begin: the durable bit before the source write (DESIGN §2.10 rule 1). It may wait
     * for a sync of the bitmap, so it is recorded after it returns, not bracketed (a trace bracket
     * never encloses a wait); MirrorCopy.tla sees it as a step that changes none of its variables,
     * PersistentBitmap.tla models it (WStart, WCheck, WSync).
     */
    private void beginIntent(WriteIntents i, long offset, long length) throws DeviceException {
        boolean synced = i.begin(offset, length);
        MirrorTrace t = trace;
        if (t != null) {
            t.begin();
            t.end(MirrorTrace.Step.INTENT_BEGIN, 0, synced ? 1 : 0, 0);
        }
    }

    /** WriteIntents.end, after the write's dirty marks: the clear pass sees them first (PersistentBitmap's WEnd). */
    private void endIntent(WriteIntents i, long offset, long length) {
        MirrorTrace t = trace;
        if (t != null) {
            t.begin();
        }
        i.end(offset, length);
        if (t != null) {
            t.end(MirrorTrace.Step.INTENT_END, 0, 0, 0);
        }
    }

    private static final int ROUTED = 0;
    private static final int WRITE_BLOCKING = 1;
    private static final int BACKGROUND = 2;

    /**
     * GuestGate.enter for the operation, then the route it takes: routed to where the job left
     * the guest (it ended while we waited), write-blocking, or background. The entry and the
     * reads of the route are one step (nothing another thread does to the job can fall between
     * them and matter: a switch to write-blocking comes before or after the whole of it).
     */
    private int enterGate(int op, long offset, long length) {
        MirrorTrace t = trace;
        while (true) {
            if (t != null) {
                t.begin();
            }
            boolean entered = gate.tryEnter();
            int path = BACKGROUND;
            if (entered) {
                if (lvPassthrough() != null) {
                    path = ROUTED;
                } else if (lvWriteThrough() && op != DISCARD && op != READ && op != FLUSH && length > 0) {
                    path = WRITE_BLOCKING;
                }
            }
            if (t != null) {
                t.end(entered ? MirrorTrace.Step.GATE_ENTER : MirrorTrace.Step.GATE_HELD, op, offset, length);
            }
            if (entered) {
                return path;
            }
            gate.awaitOpen();
        }
    }

    private void exitGate() {
        MirrorTrace t = trace;
        if (t != null) {
            t.begin();
        }
        gate.exit();
        if (t != null) {
            t.end(MirrorTrace.Step.GATE_EXIT, 0, 0, 0);
        }
    }

    private void writeBackground(int op, long offset, long length, ByteBuffer src) throws DeviceException {
        MirrorTrace t = trace;
        int outcome = MirrorTrace.OK;
        if (t != null) {
            t.begin();
        }
        try {
            apply(source, op, offset, length, src);
        } catch (DeviceException e) {
            outcome = MirrorTrace.failKind(e);
            throw e;
        } catch (RuntimeException e) {
            outcome = MirrorTrace.FAIL_IO;
            throw e;
        } finally {
            if (t != null) {
                t.end(MirrorTrace.Step.BG_SOURCE, outcome, offset, length);
                t.begin();
            }
            // After the source write (order 1), even if it failed part way.
            boolean newlyDirty = bitmap.markRange(offset, length);
            if (t != null) {
                t.end(MirrorTrace.Step.BG_MARK, 0, newlyDirty ? 1 : 0, 0);
            }
            if (newlyDirty) {
                wakeCopier(MirrorTrace.Step.BG_WAKE);
            }
        }
    }

    /** Copier.wakeIfIdle, one step. */
    private void wakeCopier(MirrorTrace.Step step) {
        MirrorTrace t = trace;
        if (t != null) {
            t.begin();
        }
        boolean woke = copier.wakeIfIdle();
        if (t != null) {
            t.end(step, 0, woke ? 1 : 0, 0);
        }
    }

    private void writeBlocking(int op, long offset, long length, ByteBuffer src) throws DeviceException {
        MirrorTrace t = trace;
        long first = bitmap.chunkOf(offset);
        long last = bitmap.chunkOf(offset + length - 1);
        ByteBuffer forTarget = src != null ? src.duplicate() : null;
        WriteBlockingEvent ev = RecorderGate.recorderUp() ? WriteBlockingEvent.startIfRecording() : null; // null unless a JFR recording takes it
        claims.claim(first, last);
        if (ev != null) {
            ev.claimed();
        }
        boolean cleared = false;
        boolean settled = false; // both sides written, or the chunks marked dirty again
        boolean failed = true;
        try {
            // Every chunk is ours: no copy of them runs until we release. The chunks this write
            // covers completely hold the same bytes on both sides once it has written both, so
            // they are clean from now on; a partly covered one stays dirty. Cleared before the
            // source write, as a copy clears before its read: a background mark racing on the
            // same chunk is then never lost (DirtyBitmap.clearCovered). Order 4.
            if (t != null) {
                t.begin();
            }
            cleared = bitmap.clearCovered(offset, length);
            if (t != null) {
                t.end(MirrorTrace.Step.WB_CLEAR, 0, cleared ? 1 : 0, 0);
                t.begin();
            }
            int outcome = MirrorTrace.FAIL_IO;
            try {
                apply(source, op, offset, length, src);
                outcome = MirrorTrace.OK;
            } catch (DeviceException e) {
                outcome = MirrorTrace.failKind(e);
                throw e;
            } finally {
                if (t != null) {
                    t.end(MirrorTrace.Step.WB_SOURCE, outcome, offset, length);
                }
                if (ev != null) {
                    ev.sourceWritten();
                }
            }
            if (t != null) {
                t.begin();
            }
            try {
                if (op == WRITE) {
                    copier.noteTargetWrite(offset, length);
                }
                apply(target, op, offset, length, forTarget);
                settled = true;
                failed = false;
                if (t != null) {
                    t.end(MirrorTrace.Step.WB_TARGET, MirrorTrace.OK, offset, length);
                }
            } catch (DeviceException e) {
                if (t != null) {
                    t.end(MirrorTrace.Step.WB_TARGET, MirrorTrace.failKind(e), offset, length);
                    t.begin();
                }
                bitmap.markRange(offset, length); // before the claim is released
                settled = true;
                if (t != null) {
                    t.end(MirrorTrace.Step.WB_MARK, 0, 0, 0);
                }
                job.onGuestTargetError(op == WRITE ? MirrorEvent.Operation.WRITE : MirrorEvent.Operation.WRITE_ZEROES,
                        offset, length, e);
            }
        } finally {
            if (!settled) {
                // The source write failed (perhaps part way) or a device threw: whatever landed is
                // dirty again before the claim is released.
                if (t != null) {
                    t.begin();
                }
                bitmap.markRange(offset, length);
                if (t != null) {
                    t.end(MirrorTrace.Step.WB_MARK, 0, 0, 0);
                }
            }
            claims.release(first, last);
            if (ev != null) {
                ev.targetWritten();
                ev.finish(offset, length, cleared, failed);
            }
            // A copy skipped these chunks while we held them, a partly covered chunk stays dirty,
            // or a failure above marked them: if one is dirty, make sure the copier looks again
            // (also when the source write threw). If we cleared a dirty chunk, this write may have
            // been the copier's last work: it looks again to judge READY.
            if (t != null) {
                t.begin();
            }
            boolean woke = false;
            if (cleared || bitmap.anyDirty(offset, length)) {
                woke = copier.wakeIfIdle();
            }
            if (t != null) {
                t.end(MirrorTrace.Step.WB_WAKE, 0, woke ? 1 : 0, 0);
            }
        }
    }

    private static void apply(BlockDevice device, int op, long offset, long length, ByteBuffer src)
            throws DeviceException {
        switch (op) {
            case WRITE:
                device.write(offset, src);
                break;
            case WRITE_ZEROES:
                device.writeZeroes(offset, length);
                break;
            default:
                device.discard(offset, length);
                break;
        }
    }

    private void ensureOpen() throws DeviceException {
        if (lvClosed()) {
            throw new DeviceException(DeviceException.Kind.CLOSED, "the mirror's guest device is closed");
        }
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private BlockDevice lvPassthrough() {
        return (BlockDevice) PASSTHROUGH.getVolatile(this); // pairs with svPassthrough
    }

    private void svPassthrough(BlockDevice device) {
        PASSTHROUGH.setVolatile(this, device); // under the job's lock, the gate closed and drained
    }

    private boolean lvWriteThrough() {
        return (boolean) WRITE_THROUGH.getVolatile(this); // pairs with svWriteThrough
    }

    private void svWriteThrough(boolean on) {
        WRITE_THROUGH.setVolatile(this, on); // under the job's lock
    }

    private boolean lvClosed() {
        return (boolean) CLOSED.getVolatile(this); // pairs with svClosed; stronger than needed
    }

    private void svClosed(boolean c) {
        CLOSED.setVolatile(this, c);
    }
}
