package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * The background copier: finds dirty chunks, claims and clears them, and issues
 * {@link CopyOperation}s within the buf-size and speed limits.
 *
 * <h2>Protocol overview</h2>
 * Scheduling state (cursor, bytes in flight, buffers, rate limiter, back-off) is guarded by the
 * job's lock; methods named {@code ...Locked} must be called holding it. Scanning and clearing
 * the bitmap happen only here, under that lock, which gives the bitmap the single scanner its
 * summary protocol assumes.
 *
 * <p>The one lock-free interaction is waking: when the copier finds nothing it can claim it
 * sets {@link #idle} (volatile store) and scans once more; a guest that dirties a clean chunk
 * (a volatile RMW on the bitmap) then reads {@link #idle} (volatile load) and, if set, claims the
 * wake-up with a CAS and submits the preallocated {@link #pumpTask}. Copier (write idle, read
 * bits) and guest (write bits, read idle) form a store-load pair of volatile accesses, so either
 * the copier's second scan sees the new bit or the guest sees {@code idle} and wakes it. Only
 * that idle-to-busy transition allocates (the executor's queue node); the guest's steady path does
 * not touch {@link #idle} at all once the copier is busy.
 *
 * <p>Copy steps after the claim run on the runtime as tasks; their completion comes back through
 * {@link #release}, which marks a failed run dirty again before releasing its claim.
 *
 * <h2>Threads</h2>
 * Every copy is issued here, under the job's lock: claimed, cleared, counted in flight. Which thread
 * then runs it depends on who issued it. A command, a pump or a timer hands each copy to the
 * runtime ({@link JobRuntime#execute}). A copy's completion ({@link MirrorJob#onCopyFinished}, on the
 * thread that ran the copy) keeps the first copy it issues for that same thread if the runtime
 * allows it ({@link JobRuntime#carriesNextCopy}): {@link #carryNextLocked} before it issues,
 * {@link #takeCarriedLocked} after, and the thread runs the kept copy once it has released the lock
 * and delivered the completion's events, in a loop ({@link CopyOperation#run}), never by recursion.
 * Any further copies it issues go to the runtime. So at depth one (a guest writing, see "Copy
 * depth") the copies run one after another on one pool thread, as with a pool of one thread, instead
 * of each waking another thread (a futex wake and a context switch per copy, CPU the guest's threads
 * do not get). A thread carries at most {@link #MAX_CARRIED} copies in a row, then hands the next one
 * to the runtime's queue, behind any timer or task queued meanwhile. A carried copy is in flight
 * like a queued one: pause, cancel and complete treat it alike, and it never meets a runtime that
 * was shut down (the job concludes only with no copy in flight).
 *
 * <h2>Copy depth</h2>
 * At most {@link JobRuntime#parallelism()} copies are in flight, and fewer,
 * {@link MirrorOptions#copiesWhileGuestWrites()}, while a guest writes: a copy in flight competes
 * with the guest's writes for the same devices and CPUs: with one copy at a time a write-blocking
 * QD1 guest kept 23 % of its IOPS instead of 5 %, and a background one reached READY sooner
 * (docs/BENCHMARKS.md, "A guest-aware copy depth"). Every guest write, write-zeroes and discard
 * that enters the job (both copy modes; not reads, flushes, or operations after the job ended) sets
 * the flag {@link GuestWrote}, "a guest wrote since the copier last looked" ({@link #noteGuestWrite}:
 * an opaque load, and an opaque store only if the flag is clear; no RMW, fence or clock read on the
 * guest's path, and a guest that keeps writing only reads the flag's line, but once after each look
 * of the copier). {@link #issueLocked} looks at the flag: if set, it clears it and records the
 * runtime's clock as the last time it saw the guest write, and the guest counts as writing while
 * that was less than {@link #GUEST_WINDOW_NANOS} ago. The limit only gates new copies: a copy in
 * flight is never cancelled. No wake-up is needed when the window
 * expires: the copier stops issuing on the limit only with a copy in flight, whose completion pumps
 * again, so the depth is back to full within the window plus one completion once the guest stops.
 *
 * <h2>Access modes</h2>
 * Fields read or written lock-free are touched only through accessors named by mode
 * (CONTRIBUTING, "One accessor convention"): {@code lp} plain load, {@code lv} volatile load,
 * {@code sv} volatile store, {@code cas} compare-and-set; {@link GuestWrote} uses {@code lpo}
 * opaque load and {@code spo} opaque store.
 * <ul>
 *   <li>{@code idle}: {@link #svIdle} by the copier under the job's lock, before its second scan
 *       (true) and after it found work (false); {@link #lvIdle} then {@link #casIdle} by a guest
 *       after its bitmap RMW. The store-load pair above needs the volatile store and load on
 *       both sides (a release store would let the second scan's reads move before it).</li>
 *   <li>{@code bytesInFlight}, {@code bytesCopied}: written only under the job's lock
 *       ({@link #svBytesInFlight}, {@link #svBytesCopied}) and read there with {@link #lpBytesInFlight}
 *       (the lock orders it); read lock-free by progress snapshots with {@link #lvBytesInFlight},
 *       {@link #lvBytesCopied}. Stronger than needed: a snapshot publishes
 *       nothing, so opaque stores and loads would do; off the guest's path, volatile costs
 *       nothing that matters.</li>
 *   <li>{@code GuestWrote.flag}: {@link GuestWrote#spoFlag} (true) by a guest only after
 *       {@link GuestWrote#lpoFlag} read false ({@link #noteGuestWrite}); {@link GuestWrote#lpoFlag},
 *       then {@link GuestWrote#spoFlag} (false) only if it read true, by the copier under the job's
 *       lock ({@link #depthLocked}). Nothing is published through it and no read pairs with
 *       either store: the copier only asks whether a guest wrote since it last looked, and acts on
 *       no other memory the guest wrote. Opaque, not plain, so that neither side's load is hoisted
 *       out of its loop or served from a stale register and each store is eventually seen: every
 *       look sees a value at least as new as the last one it saw (coherence). The races lose a
 *       signal at most, which is harmless (the flag is a heuristic): a guest that reads true while
 *       the copier is clearing it skips its store, and the copier's clear may overwrite a guest's set
 *       (load false, load true, store true, store false); either way that write ran during the
 *       look, which itself records "writing now", and a guest that keeps writing sets the flag
 *       again at its next write. A steady guest only reads the flag, so the writers' loads share
 *       the line without moving it, but once after each look. The flag sits on cache lines of its
 *       own ({@link GuestWrote} is padded), so its stores do not invalidate the line of the
 *       copier's other fields.</li>
 * </ul>
 */
final class Copier {
    /**
     * How long after the copier last saw the guest-write flag set the guest still counts as
     * writing. A QD1 guest writes every 0.1 to 0.5 ms, and a 1 MiB copy takes 0.3 to 1 ms on the
     * machine docs/BENCHMARKS.md measures on, so a few milliseconds bridges the gaps between a
     * writing guest's writes as the copier sees them at its completions, and gives the full depth
     * back soon after the guest stops.
     */
    static final long GUEST_WINDOW_NANOS = 5_000_000L;

    /**
     * The most copies one thread runs in a row by carrying each next copy (see "Threads"); the next
     * one goes to the runtime's queue, behind the tasks queued meanwhile.
     */
    static final int MAX_CARRIED = 32;

    private static final VarHandle IDLE;
    private static final VarHandle BYTES_IN_FLIGHT;
    private static final VarHandle BYTES_COPIED;
    private static final long MIN_BACKOFF_NANOS = 10_000_000L;
    private static final long MAX_BACKOFF_NANOS = 1_000_000_000L;
    private static final int PAGE = 4096;
    private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(1 << 20).asReadOnlyBuffer();

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            IDLE = l.findVarHandle(Copier.class, "idle", boolean.class);
            BYTES_IN_FLIGHT = l.findVarHandle(Copier.class, "bytesInFlight", long.class);
            BYTES_COPIED = l.findVarHandle(Copier.class, "bytesCopied", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final MirrorJob job;
    private final BlockDevice source;
    private final BlockDevice target;
    private final DirtyBitmap bitmap;
    private final InFlightChunks claims;
    /** Chunks of the target that may hold non-zero data; null unless the target starts zeroed. */
    private final DirtyBitmap targetTouched;
    private final int maxCopyBytes;
    private final long bufSize;
    private final RateLimiter limiter;
    private final int copiesWhileGuestWrites;
    /** Bumped by guest writes (see "Copy depth"); padded onto cache lines of its own. */
    private final GuestWrote guestWrote = new GuestWrote();
    private final ArrayDeque<ByteBuffer> freeBuffers = new ArrayDeque<>();
    final Runnable pumpTask;
    /** Null unless the job is traced (MirrorTrace). */
    final MirrorTrace trace;

    // Guarded by the job's lock.
    private long cursor;
    private int opsInFlight;
    private long backoffNanos;
    private long retryAt;
    private boolean retryPending;
    private boolean timerPending;
    /** The guest-write count the copier saw last, and when it last saw it change. */
    private long guestSeenAt;
    private boolean guestSeen;
    /** Whether a completion is issuing, and the copy kept for its thread (see "Threads"). */
    private boolean carrying;
    private CopyOperation carried;

    /** Written under the job's lock, read lock-free by progress snapshots (see "Access modes"). */
    @SuppressWarnings("unused") // through BYTES_IN_FLIGHT
    private long bytesInFlight;
    @SuppressWarnings("unused") // through BYTES_COPIED
    private long bytesCopied;
    /** Set when the copier waits for a dirty chunk; see the class comment. */
    @SuppressWarnings("unused") // through IDLE
    private boolean idle;

    Copier(MirrorJob job, BlockDevice source, BlockDevice target, DirtyBitmap bitmap, InFlightChunks claims,
            MirrorOptions options, MirrorTrace trace) {
        this.job = job;
        this.source = source;
        this.target = target;
        this.bitmap = bitmap;
        this.claims = claims;
        this.targetTouched = options.targetIsZero() ? new DirtyBitmap(bitmap.deviceSize(), bitmap.granularity()) : null;
        this.maxCopyBytes = options.maxCopyBytes();
        this.bufSize = options.bufSize();
        this.limiter = new RateLimiter(options.speed());
        this.copiesWhileGuestWrites = options.copiesWhileGuestWrites();
        this.pumpTask = job::pump;
        this.trace = trace;
    }

    /* ---- Issuing (under the job's lock) ---- */

    /** Issues copy operations until a limit is reached or nothing can be claimed. */
    void issueLocked() {
        long now = job.runtime().nanoTime();
        if (retryPending) {
            if (now - retryAt < 0) {
                // Back-off after an ignored error. A later error may have pushed retryAt past the
                // pending timer, so make sure a timer covers it.
                scheduleTimerLocked(retryAt - now);
                return;
            }
            retryPending = false;
        }
        int depth = depthLocked(now);
        while (true) {
            if (opsInFlight > 0 && (lpBytesInFlight() + bitmap.granularity() > bufSize
                    || opsInFlight >= depth)) {
                return; // a completion pumps again (also once a guest stops: see "Copy depth")
            }
            long delay = limiter.delay(now);
            if (delay > 0) {
                scheduleTimerLocked(delay);
                return;
            }
            CopyOperation op = claimRunLocked();
            if (op == null) {
                svIdle(true); // then a second scan: the store-load pair with wakeIfIdle
                op = claimRunLocked();
                if (op == null) {
                    return;
                }
                svIdle(false);
            }
            limiter.consume(op.length);
            opsInFlight++;
            svBytesInFlight(lpBytesInFlight() + op.length);
            if (carrying && carried == null) {
                carried = op; // the finishing thread runs it once the lock is released (see "Threads")
            } else {
                job.execute(op);
            }
        }
    }

    /**
     * Called by a copy's completion, under the job's lock, before it issues: the first copy issued
     * until {@link #takeCarriedLocked} is kept for the finishing thread instead of queued, if the
     * runtime allows it and that thread has not carried {@link #MAX_CARRIED} copies in a row.
     */
    void carryNextLocked(CopyOperation finished) {
        carrying = finished.carriedInRow < MAX_CARRIED && job.runtime().carriesNextCopy();
    }

    /**
     * Ends what {@link #carryNextLocked} began: returns the copy kept for the finishing thread, or
     * null. The caller runs it after it released the lock, or, if it cannot (it is throwing),
     * hands it to the runtime.
     */
    CopyOperation takeCarriedLocked(CopyOperation finished) {
        carrying = false;
        CopyOperation next = carried;
        carried = null;
        if (next != null) {
            next.carriedInRow = finished.carriedInRow + 1;
        }
        return next;
    }

    /**
     * The copies allowed in flight now: {@link MirrorOptions#copiesWhileGuestWrites()} while the
     * guest writes, the runtime's parallelism otherwise (see "Copy depth").
     */
    private int depthLocked(long now) {
        int full = job.runtime().parallelism();
        if (copiesWhileGuestWrites >= full) {
            return full; // the policy is off
        }
        GuestWrote w = guestWrote;
        if (w.lpoFlag()) {
            w.spoFlag(false); // a write from now on sets it again
            guestSeenAt = now;
            guestSeen = true;
        }
        return guestSeen && now - guestSeenAt < GUEST_WINDOW_NANOS ? copiesWhileGuestWrites : full;
    }

    /**
     * Steps 1 and 2 of a copy: claim the first claimable dirty chunk at or after the cursor
     * (wrapping once), clear its dirty bit, and extend the run over adjacent dirty chunks while
     * they can be claimed and fit the limits. Returns null if no dirty chunk can be claimed.
     */
    private CopyOperation claimRunLocked() {
        long first = findAndClaim(cursor, bitmap.chunkCount());
        if (first < 0 && cursor > 0) {
            first = findAndClaim(0, cursor);
        }
        if (first < 0) {
            return null;
        }
        long budget = opsInFlight == 0 ? maxCopyBytes : Math.min(maxCopyBytes, bufSize - lpBytesInFlight());
        long maxChunks = Math.max(1, budget / bitmap.granularity());
        bitmap.testAndClear(first);
        long last = first;
        while (last - first + 1 < maxChunks && last + 1 < bitmap.chunkCount() && bitmap.isDirty(last + 1)
                && claims.tryClaim(last + 1)) {
            last++;
            bitmap.testAndClear(last);
        }
        cursor = last + 1 < bitmap.chunkCount() ? last + 1 : 0;
        long offset = bitmap.offsetOf(first);
        int length = (int) bitmap.lengthOf(first, last - first + 1);
        return new CopyOperation(this, source, target, first, last, offset, length, takeBuffer());
    }

    /** First dirty chunk in [from, to) that this call managed to claim, or -1. */
    private long findAndClaim(long from, long to) {
        long c = bitmap.nextDirty(from);
        while (c >= 0 && c < to) {
            if (claims.tryClaim(c)) {
                return c;
            }
            // Held by a write-blocking guest write; its release wakes us if the chunk stays dirty.
            c = c + 1 < bitmap.chunkCount() ? bitmap.nextDirty(c + 1) : -1;
        }
        return -1;
    }

    /** Whether nothing is dirty and no copy is in flight. */
    boolean convergedLocked() {
        return opsInFlight == 0 && bitmap.nextDirty(0) < 0;
    }

    int opsInFlightLocked() {
        return opsInFlight;
    }

    /** A copy finished (failed if {@code e != null}); returns its buffer and updates counters. */
    void finishedLocked(CopyOperation op, DeviceException e) {
        opsInFlight--;
        svBytesInFlight(lpBytesInFlight() - op.length);
        freeBuffers.push(op.buffer);
        if (e == null) {
            svBytesCopied(lpBytesCopied() + op.length);
            backoffNanos = 0;
        }
    }

    /** After an ignored error: no new copies for a growing back-off, then retry. */
    void backOffLocked() {
        backoffNanos = backoffNanos == 0 ? MIN_BACKOFF_NANOS : Math.min(MAX_BACKOFF_NANOS, backoffNanos * 2);
        retryAt = job.runtime().nanoTime() + backoffNanos;
        retryPending = true;
        scheduleTimerLocked(backoffNanos);
    }

    void setSpeedLocked(long speed) {
        limiter.setSpeed(speed);
    }

    long speedLocked() {
        return limiter.speed();
    }

    private void scheduleTimerLocked(long delayNanos) {
        if (!timerPending) {
            timerPending = true;
            job.schedule(() -> {
                job.onTimer(this);
            }, delayNanos);
        }
    }

    void timerFiredLocked() {
        timerPending = false;
    }

    /**
     * A copy buffer of at least {@code maxCopyBytes}, page-aligned: the kernel copies to and from an
     * aligned user buffer markedly faster than from one that starts mid-page, which is where
     * {@code allocateDirect} puts it (docs/BENCHMARKS.md measures the difference).
     */
    private ByteBuffer takeBuffer() {
        ByteBuffer b = freeBuffers.poll();
        if (b != null) {
            return b;
        }
        return ByteBuffer.allocateDirect((int) bufferBytes(maxCopyBytes)).alignedSlice(PAGE);
    }

    /** The direct memory one copy buffer of {@code maxCopyBytes} takes: whole pages, plus one to align. */
    static long bufferBytes(int maxCopyBytes) {
        long pages = ((long) maxCopyBytes + PAGE - 1) / PAGE;
        return (pages + 1) * PAGE;
    }

    /** Whether each copy's write must be a separate task after its read; see {@link JobRuntime#separatesCopySteps}. */
    boolean separatesSteps() {
        return job.runtime().separatesCopySteps();
    }

    /* ---- Lock-free parts ---- */

    /**
     * Called by a guest write, write-zeroes or discard inside the job's gate: the guest is writing
     * (see "Copy depth"). An opaque load, and an opaque store only while the flag is clear (once
     * after each look of the copier); a lost signal is harmless (see "Access modes").
     */
    void noteGuestWrite() {
        GuestWrote w = guestWrote;
        if (!w.lpoFlag()) {
            w.spoFlag(true);
        }
    }

    /** Called by a guest after it dirtied a clean chunk; returns whether it queued a pump. */
    boolean wakeIfIdle() {
        if (lvIdle() && casIdle(true, false)) { // after the bitmap RMW: the store-load pair with issueLocked
            job.execute(pumpTask);
            return true;
        }
        return false;
    }

    /**
     * Leaves the copier where a guest's wake-up does: no longer idle (set-up for a harness that
     * races the copier going idle again; MirrorProbe).
     */
    void markWoken() {
        svIdle(false);
    }

    /**
     * Step 5 of a copy, on the copy's thread: mark dirty again on failure, release, report. Returns
     * the copy this thread runs next (see "Threads"), or null.
     */
    CopyOperation release(CopyOperation op, MirrorEvent.Side side, MirrorEvent.Operation operation, DeviceException e) {
        if (e != null) {
            MirrorTrace t = trace;
            if (t != null) {
                t.begin();
            }
            // Dirty before the claim goes: the run is never both clean and unclaimed while the
            // target may differ (key invariant). This is the IGNORE policy's retry, and it is done
            // whatever the policy, so a resumed or re-run job copies the run again.
            bitmap.markRange(op.offset, op.length);
            if (t != null) {
                t.end(MirrorTrace.Step.COPY_MARK, 0, op.firstChunk, 0);
            }
        }
        claims.release(op.firstChunk, op.lastChunk);
        return job.onCopyFinished(op, side, operation, e);
    }

    void execute(Runnable task) {
        job.execute(task);
    }

    /** Bytes of the copies in flight (a lock-free snapshot). */
    long bytesInFlight() {
        return lvBytesInFlight();
    }

    /** Bytes copied so far (a lock-free snapshot). */
    long bytesCopied() {
        return lvBytesCopied();
    }

    /* ---- Zero detection ---- */

    /** Records that the target's bytes in this range may become non-zero (before writing them). */
    void noteTargetWrite(long offset, long length) {
        if (targetTouched != null) {
            targetTouched.markRange(offset, length);
        }
    }

    /** Whether the target is known to read as zeroes in this range. */
    boolean targetKnownZero(long offset, long length) {
        return targetTouched != null && !targetTouched.anyDirty(offset, length);
    }

    int granularity() {
        return bitmap.granularity();
    }

    /** Up to {@code n} zero bytes to copy from: a view of a shared read-only buffer of 1 MiB. */
    static ByteBuffer zeroes(int n) {
        return ZEROES.duplicate().limit(Math.min(n, ZEROES.capacity()));
    }

    static boolean isZero(ByteBuffer data) {
        int pos = data.position();
        int remaining = data.remaining();
        int checked = 0;
        while (checked < remaining) {
            int n = Math.min(remaining - checked, ZEROES.capacity());
            ByteBuffer part = data.duplicate();
            part.position(pos + checked).limit(pos + checked + n);
            ByteBuffer zeroes = ZEROES.duplicate();
            zeroes.limit(n);
            if (part.mismatch(zeroes) >= 0) {
                return false;
            }
            checked += n;
        }
        return true;
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private boolean lvIdle() {
        return (boolean) IDLE.getVolatile(this); // pairs with svIdle(true): the store-load pair
    }

    /** Volatile CAS: one guest claims the wake-up. */
    private boolean casIdle(boolean expected, boolean next) {
        return IDLE.compareAndSet(this, expected, next);
    }

    private void svIdle(boolean v) {
        IDLE.setVolatile(this, v); // under the job's lock; pairs with lvIdle (the store-load pair)
    }

    private long lpBytesInFlight() {
        return (long) BYTES_IN_FLIGHT.get(this); // plain: under the job's lock, as every store
    }

    private long lvBytesInFlight() {
        return (long) BYTES_IN_FLIGHT.getVolatile(this); // lock-free snapshot; pairs with svBytesInFlight
    }

    private void svBytesInFlight(long v) {
        BYTES_IN_FLIGHT.setVolatile(this, v); // under the job's lock; pairs with bytesInFlight()
    }

    private long lpBytesCopied() {
        return (long) BYTES_COPIED.get(this); // plain: under the job's lock, as every store
    }

    private long lvBytesCopied() {
        return (long) BYTES_COPIED.getVolatile(this); // lock-free snapshot; pairs with svBytesCopied
    }

    private void svBytesCopied(long v) {
        BYTES_COPIED.setVolatile(this, v); // under the job's lock; pairs with bytesCopied()
    }

    /* ---- The guest-write flag, on cache lines of its own ---- */

    /** Padding before {@link GuestWroteFlag#flag}: superclass fields are laid out first. */
    private abstract static class GuestWrotePadBefore {
        long p00, p01, p02, p03, p04, p05, p06, p07, p08, p09, p10, p11, p12, p13, p14, p15;
    }

    /** The flag itself (see "Access modes" in the class comment). */
    private abstract static class GuestWroteFlag extends GuestWrotePadBefore {
        @SuppressWarnings("unused") // through FLAG
        boolean flag;
    }

    /**
     * "A guest wrote since the copier last looked", with 128 bytes of padding on both sides (two
     * cache lines, as adjacent-line prefetch pairs them), in the style of JCTools' padded counters.
     */
    private static final class GuestWrote extends GuestWroteFlag {
        private static final VarHandle FLAG;

        static {
            try {
                FLAG = MethodHandles.lookup().findVarHandle(GuestWroteFlag.class, "flag", boolean.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        long q00, q01, q02, q03, q04, q05, q06, q07, q08, q09, q10, q11, q12, q13, q14, q15;

        /** Opaque: by a guest before its store, and by the copier under the job's lock; pairs with nothing. */
        private boolean lpoFlag() {
            return (boolean) FLAG.getOpaque(this);
        }

        /** Opaque: true by a guest, false by the copier; publishes nothing. */
        private void spoFlag(boolean v) {
            FLAG.setOpaque(this, v);
        }
    }
}
