package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A live mirror of a source device to a target device, after QEMU's mirror block job.
 *
 * <pre>{@code
 * MirrorJob job = MirrorJob.create(source, target, MirrorOptions.defaults());
 * BlockDevice guest = job.guestDevice();   // the guest reads and writes through this
 * job.start();
 * job.awaitReady(Duration.ofMinutes(5));
 * job.complete();                          // pivot: the guest now writes to the target
 * job.awaitConclusion(Duration.ofMinutes(1));
 * }</pre>
 *
 * <h2>Semantics (DESIGN §2)</h2>
 * <table>
 *   <caption>state × command → result ("ISE": {@link IllegalStateException}, nothing changes)</caption>
 *   <tr><th>state</th><th>start</th><th>pause</th><th>resume</th><th>complete</th><th>finalizeJob</th><th>cancel</th><th>cancel(force)</th><th>setSpeed / setCopyMode(WB)</th></tr>
 *   <tr><td>CREATED</td><td>RUNNING (→ PAUSED if paused)</td><td>CREATED, pauses on start (once)</td><td>CREATED if paused, else ISE</td><td>ISE</td><td>ISE</td><td>CANCELLED</td><td>CANCELLED</td><td>applied</td></tr>
 *   <tr><td>RUNNING</td><td>ISE</td><td>PAUSED</td><td>ISE</td><td>ISE</td><td>ISE</td><td>CANCELLING → CANCELLED</td><td>CANCELLING → CANCELLED</td><td>applied</td></tr>
 *   <tr><td>READY</td><td>ISE</td><td>PAUSED</td><td>ISE</td><td>COMPLETING → COMPLETED (pivot)</td><td>ISE</td><td>CANCELLING → COMPLETED (no pivot)</td><td>CANCELLING → CANCELLED</td><td>applied</td></tr>
 *   <tr><td>PAUSED</td><td>ISE</td><td>ISE</td><td>back to where it paused</td><td>after READY: PAUSED, completes on resume; else ISE</td><td>ISE</td><td>as from the state it paused in</td><td>CANCELLING → CANCELLED</td><td>applied</td></tr>
 *   <tr><td>COMPLETING</td><td>ISE</td><td>ISE</td><td>ISE</td><td>ISE</td><td>ISE</td><td>ISE</td><td>CANCELLING → CANCELLED (no pivot)</td><td>applied</td></tr>
 *   <tr><td>CANCELLING</td><td>ISE</td><td>ISE</td><td>ISE</td><td>ISE</td><td>ISE</td><td>ISE</td><td>→ CANCELLED</td><td>applied</td></tr>
 *   <tr><td>PENDING</td><td>ISE</td><td>ISE</td><td>ISE</td><td>ISE</td><td>COMPLETED (pivot if completing)</td><td>CANCELLED</td><td>CANCELLED</td><td>ISE</td></tr>
 *   <tr><td>concluded</td><td>ISE</td><td>ISE</td><td>ISE</td><td>ISE</td><td>ISE</td><td>ISE</td><td>ISE</td><td>ISE</td></tr>
 * </table>
 * With auto-finalize off ({@link MirrorOptions#autoFinalize()}), COMPLETING and a CANCELLING
 * after READY end in PENDING instead of COMPLETED: drained, the target flushed, the guest held,
 * until {@link #finalizeJob()} or a cancel (QEMU's {@code auto-finalize=false}).
 * Switching the copy mode from WRITE_BLOCKING back to BACKGROUND is refused (ISE) in every state.
 * A job failing under REPORT keeps its state until its copies in flight return, then becomes
 * FAILED; meanwhile pause, complete and cancel are refused (ISE) and cancel(force) is a no-op.
 *
 * <ul>
 *   <li><b>READY</b> is reached once, when no chunk is dirty and no copy is in flight.</li>
 *   <li><b>complete()</b> holds new guest operations at once (they wait in the filter), lets
 *       those inside finish, copies what is still dirty, flushes the target and switches the
 *       guest to the target; then the held operations go to the target. No acknowledged write
 *       is lost or reordered across the switch.</li>
 *   <li><b>cancel()</b> after READY does the same without the switch and reports COMPLETED
 *       ({@code pivoted=false}): the target equals the source as it was at that instant. Before
 *       READY it stops issuing copies, waits for those in flight, and reports CANCELLED.
 *       {@code cancel(true)} abandons at once (after in-flight copies return).</li>
 *   <li><b>Errors</b> go through the side's {@link ErrorPolicy}; every one is an ERROR event.
 *       A failed copy leaves its chunks dirty whatever the policy. An error after READY does not
 *       leave READY: with IGNORE the job stays READY, not actively synced, and re-syncs; with STOP
 *       it pauses and resumes to READY; with REPORT it fails and the guest stays on the source.</li>
 * </ul>
 *
 * <h2>Threading</h2>
 * Commands may be called from any thread; state changes happen under one internal lock and
 * events are delivered in sequence order outside it. Copies run on the {@link JobRuntime}
 * (default: a dedicated pool of {@value #DEFAULT_THREADS} daemon threads, shut down at
 * conclusion); a copy that another copy's completion issues runs on that copy's thread, after the
 * lock is released, where the runtime allows it (Copier, "Threads"). When it delivers the Ready
 * event the job tells its runtime ({@link JobRuntime#jobReady}), which for the default one lowers
 * its threads' priority. The guest path in background mode takes no lock.
 *
 * <h2>Access modes</h2>
 * Job state lives under one lock; the few fields also read without it are touched only through
 * accessors named by mode (CONTRIBUTING, "One accessor convention"): {@code lp} plain load,
 * {@code lv} volatile load, {@code sv} volatile store, {@code cas} compare-and-set.
 * <ul>
 *   <li>{@code state}, {@code ready}, {@code activelySynced}, {@code errorCount}, {@code copyMode}:
 *       written only under the lock ({@code sv...}); read under it with {@code lp...} (the lock
 *       orders them after every store); read lock-free with {@code lv...} by {@link #state()},
 *       {@link #progress()}, {@link #awaitReady}, {@link #toString()}, the runtime's rejection
 *       check in {@link #execute} and the final delivery. Each lock-free read is a snapshot that
 *       pairs with the store it sees and needs nothing else from it, so a release store and an
 *       acquire load would do: the volatile store is stronger than needed, kept because these are
 *       commands and snapshots, never the guest's path.</li>
 *   <li>{@code delivering}: {@link #casDelivering} takes the delivery, {@link #svDelivering}
 *       gives it back. The deliverer stores false and then re-reads the event queue; a producer
 *       adds to the queue (a volatile CAS inside it) and then tries the CAS: a store-load pair
 *       on both sides, so the store must be volatile (a release store could let the re-read move
 *       before it, and an event would wait for the next delivery).</li>
 *   <li>{@code clearPasses}: one writer, the persistent bitmap's clear pass (one at a time):
 *       {@link #lpClearPasses} (plain: its own last store) and {@link #svClearPasses};
 *       {@link #lvClearPasses} by {@link #bitmapStatus()}, a snapshot. The volatile store is
 *       stronger than needed (a release would do), and off every hot path.</li>
 * </ul>
 */
public final class MirrorJob {
    /** Threads of the default runtime. */
    public static final int DEFAULT_THREADS = 4;

    private static final System.Logger LOG = System.getLogger(MirrorJob.class.getName());
    private static final VarHandle STATE;
    private static final VarHandle READY;
    private static final VarHandle ACTIVELY_SYNCED;
    private static final VarHandle ERROR_COUNT;
    private static final VarHandle COPY_MODE;
    private static final VarHandle DELIVERING;
    private static final VarHandle CLEAR_PASSES;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            STATE = l.findVarHandle(MirrorJob.class, "state", JobState.class);
            READY = l.findVarHandle(MirrorJob.class, "ready", boolean.class);
            ACTIVELY_SYNCED = l.findVarHandle(MirrorJob.class, "activelySynced", boolean.class);
            ERROR_COUNT = l.findVarHandle(MirrorJob.class, "errorCount", long.class);
            COPY_MODE = l.findVarHandle(MirrorJob.class, "copyMode", CopyMode.class);
            DELIVERING = l.findVarHandle(MirrorJob.class, "delivering", boolean.class);
            CLEAR_PASSES = l.findVarHandle(MirrorJob.class, "clearPasses", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private enum Drain { NONE, PIVOT, NO_PIVOT }

    private final Object lock = new Object();
    private final BlockDevice source;
    private final BlockDevice target;
    private final MirrorOptions options;
    private final JobRuntime runtime;
    private final boolean ownsRuntime;
    private final DirtyBitmap bitmap;
    private final InFlightChunks claims;
    private final GuestGate gate;
    private final Copier copier;
    private final MirrorFilter filter;
    /** The persistent write-intent bitmap's protocol, or null (DESIGN §2.10). */
    private final WriteIntents intents;
    /** Regions the next clear pass may clear; touched only by the clear pass, one at a time. */
    private long[] clearable = new long[0];
    /** Clear passes done: written by the clear pass only, read by bitmapStatus() (see "Access modes"). */
    @SuppressWarnings("unused") // through CLEAR_PASSES
    private long clearPasses;
    /** A clear pass is running (guarded by lock): the conclusion waits for it, which may use the store. */
    private boolean clearing;
    /** The final state, when the job concluded during a clear pass (guarded by lock). */
    private JobState concludedWhileClearing;
    /** Null unless traced (MirrorTrace, a test seam): then each section under the lock is one step. */
    private final MirrorTrace trace;

    private final CopyOnWriteArrayList<MirrorListener> listeners = new CopyOnWriteArrayList<>();
    private final ConcurrentLinkedQueue<MirrorEvent> outbox = new ConcurrentLinkedQueue<>();
    private final CompletableFuture<JobState> conclusion = new CompletableFuture<>();
    private final CompletableFuture<Void> readyFuture = new CompletableFuture<>();

    // Written under lock, also read lock-free (see "Access modes"): only through the accessors.
    @SuppressWarnings("unused") // through STATE
    private JobState state;
    @SuppressWarnings("unused") // through READY
    private boolean ready;
    @SuppressWarnings("unused") // through ACTIVELY_SYNCED
    private boolean activelySynced;
    @SuppressWarnings("unused") // through ERROR_COUNT
    private long errorCount;
    @SuppressWarnings("unused") // through COPY_MODE
    private CopyMode copyMode;
    /** Whether a thread is delivering events; see "Access modes". */
    @SuppressWarnings("unused") // through DELIVERING
    private boolean delivering;
    // Guarded by lock.
    private JobState resumeTo;
    private boolean pauseOnStart;
    private Drain drain = Drain.NONE;
    private JobState abandoning;
    private boolean finishing;
    private long sequence;
    private String failure;

    private MirrorJob(BlockDevice source, BlockDevice target, MirrorOptions options, JobRuntime runtime,
            boolean ownsRuntime, MirrorTrace trace) {
        this.source = source;
        this.target = target;
        this.options = options;
        this.runtime = runtime;
        this.ownsRuntime = ownsRuntime;
        svState(JobState.CREATED);
        svCopyMode(options.copyMode());
        this.bitmap = new DirtyBitmap(source.size(), options.granularity());
        this.trace = trace;
        this.claims = new InFlightChunks(bitmap.chunkCount(), trace);
        this.gate = new GuestGate(this::onGuestsDrained);
        this.copier = new Copier(this, source, target, bitmap, claims, options, trace);
        this.intents = options.bitmap() != null
                ? new WriteIntents(options.bitmap(), source.size(), options.granularity()) : null;
        this.filter = new MirrorFilter(this, source, target, bitmap, claims, gate, copier, intents, trace);
    }

    /** A job on a dedicated default runtime. See {@link #create(BlockDevice, BlockDevice, MirrorOptions, JobRuntime)}. */
    public static MirrorJob create(BlockDevice source, BlockDevice target, MirrorOptions options) {
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(target, "target");
        Objects.requireNonNull(options, "options");
        checkSizes(source, target);
        return new MirrorJob(source, target, options, JobRuntime.threadPool(DEFAULT_THREADS), true, null);
    }

    /**
     * A job in state CREATED. From now on guest writes through {@link #guestDevice()} are
     * tracked; nothing is copied until {@link #start()}.
     *
     * @throws IllegalArgumentException if the devices differ in size or are the same object
     */
    public static MirrorJob create(BlockDevice source, BlockDevice target, MirrorOptions options, JobRuntime runtime) {
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(target, "target");
        Objects.requireNonNull(options, "options");
        Objects.requireNonNull(runtime, "runtime");
        checkSizes(source, target);
        return new MirrorJob(source, target, options, runtime, false, null);
    }

    /**
     * A job whose spec-level steps go to {@code trace} (the trace-validation seam; see
     * MirrorTrace). Package-private: tests in this package reach it.
     */
    static MirrorJob create(BlockDevice source, BlockDevice target, MirrorOptions options, JobRuntime runtime,
            MirrorTrace trace) {
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(target, "target");
        Objects.requireNonNull(options, "options");
        Objects.requireNonNull(runtime, "runtime");
        Objects.requireNonNull(trace, "trace");
        checkSizes(source, target);
        return new MirrorJob(source, target, options, runtime, false, trace);
    }

    private static void checkSizes(BlockDevice source, BlockDevice target) {
        if (source == target) {
            throw new IllegalArgumentException("source and target are the same device");
        }
        if (source.size() != target.size()) {
            throw new IllegalArgumentException("source is " + source.size() + " bytes but target is " + target.size()
                    + " bytes: sizes must match");
        }
    }

    /* ---- Public API ---- */

    /** The device the guest must use from now on; valid for the life of the job and after. */
    public MirrorFilter guestDevice() {
        return filter;
    }

    public MirrorOptions options() {
        return options;
    }

    /** The current state (a volatile read). */
    public JobState state() {
        return lvState();
    }

    public void addListener(MirrorListener listener) {
        listeners.add(Objects.requireNonNull(listener, "listener"));
    }

    public void removeListener(MirrorListener listener) {
        listeners.remove(listener);
    }

    /**
     * CREATED → RUNNING: marks every chunk dirty (sync FULL), or with a persistent bitmap the chunks
     * of every region whose bit it holds (DESIGN §2.10), and starts copying; or, if it was paused
     * while CREATED, RUNNING → PAUSED at once, before any copy is issued.
     */
    public void start() {
        synchronized (lock) {
            beginStep();
            boolean refused = false;
            try {
                require(lpState() == JobState.CREATED, "start");
                if (intents != null) {
                    intents.forEachPersistedRange(bitmap::markRange);
                    schedule(this::clearPass, options.bitmapClearIntervalNanos());
                } else if (options.sync() == SyncMode.FULL) {
                    bitmap.markAll();
                }
                setStateLocked(JobState.RUNNING);
                if (pauseOnStart) {
                    pauseOnStart = false;
                    pauseLocked();
                } else {
                    advanceLocked();
                }
            } catch (IllegalStateException refusal) {
                refused = true;
                throw refusal;
            } finally {
                endStep(MirrorTrace.Step.START, 0, !refused);
            }
        }
        deliver();
    }

    /**
     * RUNNING or READY → PAUSED: no new copies; guest writes are tracked as dirty meanwhile. While
     * CREATED (once): the job stays CREATED and pauses as soon as it starts, as QEMU pauses a job that
     * is paused before it runs.
     */
    public void pause() {
        synchronized (lock) {
            beginStep();
            boolean refused = false;
            try {
                if (lpState() == JobState.CREATED) {
                    require(!pauseOnStart, "pause");
                    pauseOnStart = true;
                    return; // no event: nothing changes until start()
                }
                require((lpState() == JobState.RUNNING || lpState() == JobState.READY) && abandoning == null, "pause");
                pauseLocked();
            } catch (IllegalStateException refusal) {
                refused = true;
                throw refusal;
            } finally {
                endStep(MirrorTrace.Step.PAUSE, 0, !refused);
            }
        }
        deliver();
    }

    /** PAUSED → the state it paused in; CREATED and paused → CREATED, starting normally. */
    public void resume() {
        synchronized (lock) {
            beginStep();
            boolean refused = false;
            try {
                if (lpState() == JobState.CREATED) {
                    require(pauseOnStart, "resume");
                    pauseOnStart = false;
                    return;
                }
                require(lpState() == JobState.PAUSED && abandoning == null, "resume");
                JobState to = resumeTo;
                resumeTo = null;
                if (to == JobState.COMPLETING || to == JobState.CANCELLING) {
                    gate.close(); // the drain held the guest when it paused; hold it again
                }
                setStateLocked(to);
                advanceLocked();
            } catch (IllegalStateException refusal) {
                refused = true;
                throw refusal;
            } finally {
                endStep(MirrorTrace.Step.RESUME, 0, !refused);
            }
        }
        deliver();
    }

    /**
     * READY → COMPLETING → COMPLETED with a pivot to the target (through PENDING, waiting for
     * {@link #finalizeJob()}, if the options turn auto-finalize off). PAUSED after READY (QEMU's
     * standby) → still PAUSED, and the job completes once resumed: QEMU 6.0 and later accept
     * {@code block-job-complete} in standby.
     */
    public void complete() {
        synchronized (lock) {
            beginStep();
            boolean refused = false;
            try {
                if (lpState() == JobState.PAUSED && resumeTo == JobState.READY && abandoning == null) {
                    drain = Drain.PIVOT;
                    resumeTo = JobState.COMPLETING; // resume() holds the guest again and drains
                    return; // no event: nothing changes until resume()
                }
                require(lpState() == JobState.READY && abandoning == null, "complete");
                beginDrainLocked(Drain.PIVOT, JobState.COMPLETING);
            } catch (IllegalStateException refusal) {
                refused = true;
                throw refusal;
            } finally {
                endStep(MirrorTrace.Step.COMPLETE, 0, !refused);
            }
        }
        deliver();
    }

    /**
     * PENDING → COMPLETED: the last step of a job whose options turn auto-finalize off (QEMU's
     * {@code job-finalize}). The drain is done and the target flushed; the guest, held since the
     * drain began, is switched to the target if the job completes with a pivot, and released.
     */
    public void finalizeJob() {
        synchronized (lock) {
            beginStep();
            boolean refused = false;
            try {
                require(lpState() == JobState.PENDING, "finalize");
                concludeLocked(JobState.COMPLETED, drain == Drain.PIVOT);
            } catch (IllegalStateException refusal) {
                refused = true;
                throw refusal;
            } finally {
                endStep(MirrorTrace.Step.FINALIZE, 0, !refused);
            }
        }
        deliver();
    }

    /** Cancels gracefully: see the class comment. */
    public void cancel() {
        cancel(false);
    }

    /**
     * Cancels. With {@code force}, abandons at once: the target may not be consistent and the
     * guest stays on the source.
     */
    public void cancel(boolean force) {
        synchronized (lock) {
            beginStep();
            boolean refused = false;
            try {
                require(!lpState().isConcluded(), "cancel");
                if (abandoning != null) {
                    // Already ending (cancelled or failing): the outcome stands.
                    if (force) {
                        return;
                    }
                    throw new IllegalStateException("cannot cancel a job that is " + lpState() + " and already ending as "
                            + abandoning);
                }
                if (lpState() == JobState.CREATED || lpState() == JobState.PENDING) {
                    // Nothing runs: CREATED never started; PENDING has drained and holds the guest, which
                    // is released onto the source without a pivot.
                    concludeLocked(JobState.CANCELLED, false);
                } else if (force) {
                    if (lpState() != JobState.CANCELLING) {
                        setStateLocked(JobState.CANCELLING);
                    }
                    abandonLocked(JobState.CANCELLED);
                } else {
                    JobState at = lpState() == JobState.PAUSED ? resumeTo : lpState();
                    require(lpState() == JobState.RUNNING || lpState() == JobState.READY
                            || (lpState() == JobState.PAUSED && (at == JobState.RUNNING || at == JobState.READY
                            || at == JobState.COMPLETING)), "cancel");
                    boolean wasPausedInDrain = lpState() == JobState.PAUSED && at == JobState.COMPLETING;
                    resumeTo = null;
                    if (lpReady() || wasPausedInDrain) {
                        beginDrainLocked(Drain.NO_PIVOT, JobState.CANCELLING);
                    } else {
                        setStateLocked(JobState.CANCELLING);
                        abandonLocked(JobState.CANCELLED);
                    }
                }
            } catch (IllegalStateException refusal) {
                refused = true;
                throw refusal;
            } finally {
                endStep(force ? MirrorTrace.Step.FORCE_CANCEL : MirrorTrace.Step.CANCEL, 0, !refused);
            }
        }
        deliver();
    }

    /** Sets the copy speed limit in bytes per second (0 = unlimited), effective at once. */
    public void setSpeed(long bytesPerSecond) {
        if (bytesPerSecond < 0) {
            throw new IllegalArgumentException("speed must be >= 0 bytes/s (0 = unlimited), got " + bytesPerSecond);
        }
        synchronized (lock) {
            beginStep();
            boolean refused = false;
            try {
                require(!lpState().isConcluded() && lpState() != JobState.PENDING, "set-speed");
                copier.setSpeedLocked(bytesPerSecond);
                advanceLocked();
            } catch (IllegalStateException refusal) {
                refused = true;
                throw refusal;
            } finally {
                endStep(MirrorTrace.Step.SET_SPEED, 0, !refused);
            }
        }
        deliver();
    }

    /** Switches BACKGROUND → WRITE_BLOCKING (the reverse is refused); the same mode is a no-op. */
    public void setCopyMode(CopyMode mode) {
        Objects.requireNonNull(mode, "mode");
        synchronized (lock) {
            beginStep();
            boolean refused = false;
            try {
                require(!lpState().isConcluded() && lpState() != JobState.PENDING, "change copy mode");
                if (mode == lpCopyMode()) {
                    return;
                }
                if (mode == CopyMode.BACKGROUND) {
                    throw new IllegalStateException("cannot switch from WRITE_BLOCKING back to BACKGROUND");
                }
                svCopyMode(mode);
                updateWriteThroughLocked();
                advanceLocked();
            } catch (IllegalStateException refusal) {
                refused = true;
                throw refusal;
            } finally {
                endStep(MirrorTrace.Step.SET_COPY_MODE, 0, !refused);
            }
        }
        deliver();
    }

    /** A consistent-enough snapshot of progress (see {@link MirrorProgress}). */
    public MirrorProgress progress() {
        long copied = copier.bytesCopied();
        long inFlight = copier.bytesInFlight();
        long dirty = bitmap.dirtyBytes();
        long speed;
        synchronized (lock) {
            speed = copier.speedLocked();
        }
        return new MirrorProgress(lvState(), lvReady(), copied, copied + dirty + inFlight, dirty, inFlight, lvActivelySynced(),
                lvErrorCount(), speed, lvCopyMode());
    }

    /** Completes with the final state after the final event has been delivered to listeners. */
    public CompletableFuture<JobState> conclusion() {
        return conclusion.copy();
    }

    /** Waits for the job to conclude and returns its final state. */
    public JobState awaitConclusion(Duration timeout) throws InterruptedException, TimeoutException {
        try {
            return conclusion.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (ExecutionException e) {
            throw new IllegalStateException(e.getCause());
        }
    }

    /**
     * Waits up to {@code timeout} for the job to be READY. Returns true once READY has been
     * reached (the job may have moved on since), false if the time ran out or the job concluded
     * without ever being READY.
     */
    public boolean awaitReady(Duration timeout) throws InterruptedException {
        try {
            CompletableFuture.anyOf(readyFuture, conclusion).get(timeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (ExecutionException | TimeoutException e) {
            // fall through: report what we know
        }
        return lvReady();
    }

    /**
     * The persistent write-intent bitmap's state, or null if the job keeps none (DESIGN §2.10).
     *
     * @param regionSize  bytes of the source one bit stands for
     * @param resumeBytes bytes the bits covered when the job was created: what it copies again
     * @param bitBytes    bytes the bits cover now
     * @param syncs       syncs of the bitmap so far (each shared by the writes that waited for it)
     * @param clearPasses clear passes done so far
     */
    public record BitmapStatus(long regionSize, long resumeBytes, long bitBytes, long syncs, long clearPasses) {
    }

    /** The persistent bitmap's state (a snapshot), or null without one. */
    public BitmapStatus bitmapStatus() {
        WriteIntents i = intents;
        return i == null ? null : new BitmapStatus(i.regionSize(), i.persistedBytes(), i.bitBytes(), i.syncs(),
                lvClearPasses());
    }

    /** Why the job failed, or null. */
    public String failureReason() {
        synchronized (lock) {
            return failure;
        }
    }

    @Override
    public String toString() {
        return "MirrorJob[" + lvState() + ", " + options + "]";
    }

    /* ---- Lifecycle (under lock) ---- */

    /** Decides what happens next; called after every change. */
    private void advanceLocked() {
        if (lpState().isConcluded()) {
            return;
        }
        if (abandoning != null) {
            if (copier.opsInFlightLocked() > 0 || finishing) {
                return; // each completion advances again
            }
            if (!gate.isClosed()) {
                gate.close();
            }
            if (gate.isDrained()) {
                concludeLocked(abandoning, false);
            }
            return; // otherwise onGuestsDrained advances again
        }
        if (lpState() == JobState.CREATED || lpState() == JobState.PAUSED || lpState() == JobState.PENDING) {
            return;
        }
        copier.issueLocked();
        if (!copier.convergedLocked()) {
            return;
        }
        if (!lpReady()) {
            svReady(true);
            setStateLocked(JobState.READY);
            emitLocked(new MirrorEvent.Ready(nextSequence(), copier.bytesCopied(), copier.bytesCopied()));
            readyFuture.complete(null);
        }
        if (lpCopyMode() == CopyMode.WRITE_BLOCKING) {
            svActivelySynced(true);
        }
        if (drain != Drain.NONE && !finishing && gate.isDrained()) {
            finishing = true;
            execute(this::finishDrain);
        }
    }

    /** The last step of complete() or a cancel after READY: flush the target, then switch (or not). */
    private void finishDrain() {
        DeviceException error = null;
        beginStep();
        try {
            target.flush();
        } catch (DeviceException e) {
            error = e;
        } catch (RuntimeException e) {
            error = new DeviceException(DeviceException.Kind.IO_ERROR, "target flush threw " + e, e);
        } finally {
            endStep(MirrorTrace.Step.FINISH_FLUSH, error == null ? MirrorTrace.OK : MirrorTrace.failKind(error), 0);
        }
        synchronized (lock) {
            beginStep();
            boolean refused = false;
            try {
                finishing = false;
                if (error != null) {
                    onErrorLocked(MirrorEvent.Side.TARGET, MirrorEvent.Operation.FLUSH, 0, target.size(), error);
                    if (abandoning != null) {
                        // Ending anyway (a forced cancel came while we flushed, or this error fails the
                        // job): the flush was what it waited for. Other policies retry via their timer
                        // or a resume, not here.
                        advanceLocked();
                    }
                } else if (abandoning == null && drain != Drain.NONE && lpState() != JobState.PAUSED
                        && copier.convergedLocked() && gate.isDrained()) {
                    // Nothing can have changed since the flush: guests are held and no copy runs.
                    if (options.autoFinalize()) {
                        concludeLocked(JobState.COMPLETED, drain == Drain.PIVOT);
                    } else {
                        setStateLocked(JobState.PENDING); // guests stay held until finalizeJob() or cancel
                    }
                } else {
                    advanceLocked();
                }
            } catch (IllegalStateException refusal) {
                refused = true;
                throw refusal;
            } finally {
                endStep(MirrorTrace.Step.FINISH_CHECK, 0, !refused);
            }
        }
        deliver();
    }

    private void beginDrainLocked(Drain kind, JobState newState) {
        drain = kind;
        setStateLocked(newState);
        // Hold new guest operations; those inside finish, and the last one out advances us.
        gate.close();
        advanceLocked();
    }

    private void pauseLocked() {
        resumeTo = lpState();
        if (drain != Drain.NONE) {
            gate.open(); // never hold the guest while paused
        }
        setStateLocked(JobState.PAUSED);
    }

    private void abandonLocked(JobState outcome) {
        abandoning = outcome;
        drain = Drain.NONE;
        updateWriteThroughLocked();
        advanceLocked();
    }

    /**
     * Ends the job: routes the guest (to the target if {@code pivot}), reopens the gate, sets the
     * final state and queues the final events. Guests are held and drained, or never entered.
     */
    private void concludeLocked(JobState outcome, boolean pivot) {
        filter.setWriteThrough(false);
        // Volatile write before gate.open(): every later guest operation takes the new route.
        filter.setPassthrough(pivot ? target : source);
        gate.open();
        drain = Drain.NONE;
        abandoning = null;
        setStateLocked(outcome);
        long copied = copier.bytesCopied();
        long length = copied + bitmap.dirtyBytes();
        switch (outcome) {
            case COMPLETED:
                emitLocked(new MirrorEvent.Completed(nextSequence(), copied, length, pivot));
                break;
            case CANCELLED:
                emitLocked(new MirrorEvent.Cancelled(nextSequence(), copied, length));
                break;
            default:
                emitLocked(new MirrorEvent.Failed(nextSequence(), copied, length, failure));
                break;
        }
    }

    private void setStateLocked(JobState to) {
        JobState from = lpState();
        if (from == to) {
            return;
        }
        svState(to);
        updateWriteThroughLocked();
        emitLocked(new MirrorEvent.StateChanged(nextSequence(), from, to));
        if (RecorderGate.recorderUp()) {
            JobStateEvent.emit(this, from, to, copier.bytesCopied(), bitmap.dirtyBytes());
        }
    }

    private void updateWriteThroughLocked() {
        boolean on = lpCopyMode() == CopyMode.WRITE_BLOCKING && abandoning == null
                && (lpState() == JobState.RUNNING || lpState() == JobState.READY || lpState() == JobState.COMPLETING
                || (lpState() == JobState.CANCELLING && drain != Drain.NONE));
        filter.setWriteThrough(on);
        if (!on) {
            svActivelySynced(false);
        }
    }

    /* ---- Errors ---- */

    private void onErrorLocked(MirrorEvent.Side side, MirrorEvent.Operation operation, long offset, long length,
            DeviceException e) {
        ErrorPolicy policy = side == MirrorEvent.Side.SOURCE ? options.onSourceError() : options.onTargetError();
        ErrorAction action = policy.actionFor(e.kind());
        svErrorCount(lpErrorCount() + 1);
        svActivelySynced(false);
        emitLocked(new MirrorEvent.Error(nextSequence(), side, operation, action, offset, length, e));
        if (lpState().isConcluded() || abandoning != null) {
            return; // already on its way out
        }
        switch (action) {
            case IGNORE:
                copier.backOffLocked();
                break;
            case STOP:
                if (lpState() != JobState.PAUSED && lpState() != JobState.CREATED) {
                    pauseLocked();
                }
                break;
            default:
                failure = side + " " + operation + " failed at " + offset + "+" + length + ": " + e.getMessage();
                abandonLocked(JobState.FAILED);
                break;
        }
    }

    /* ---- Callbacks from the copier, the filter and the gate ---- */

    /**
     * A copy's completion, on the thread that ran it: returns the copy this thread runs next, issued
     * here and kept for it instead of queued (Copier, "Threads"), or null.
     */
    CopyOperation onCopyFinished(CopyOperation op, MirrorEvent.Side side, MirrorEvent.Operation operation,
            DeviceException e) {
        CopyOperation next;
        synchronized (lock) {
            beginStep();
            boolean done = false;
            boolean refused = false;
            copier.carryNextLocked(op);
            try {
                copier.finishedLocked(op, e);
                if (e != null) {
                    onErrorLocked(side, operation, op.offset, op.length, e);
                }
                advanceLocked();
                done = true;
            } catch (IllegalStateException refusal) {
                refused = true;
                throw refusal;
            } finally {
                next = copier.takeCarriedLocked(op);
                if (!done && next != null) {
                    execute(next); // this thread is throwing: the issued copy still runs
                    next = null;
                }
                endStep(MirrorTrace.Step.COPY_FINISHED, e == null ? MirrorTrace.OK : MirrorTrace.failKind(e), op.firstChunk);
            }
        }
        try {
            deliver();
        } catch (Throwable t) {
            if (next != null) {
                execute(next); // a listener threw an Error: the issued copy still runs
            }
            throw t;
        }
        return next;
    }

    void onGuestTargetError(MirrorEvent.Operation operation, long offset, long length, DeviceException e) {
        synchronized (lock) {
            beginStep();
            boolean refused = false;
            try {
                onErrorLocked(MirrorEvent.Side.TARGET, operation, offset, length, e);
                advanceLocked();
            } catch (IllegalStateException refusal) {
                refused = true;
                throw refusal;
            } finally {
                endStep(MirrorTrace.Step.GUEST_TARGET_ERROR, MirrorTrace.failKind(e), 0);
            }
        }
        deliver();
    }

    /**
     * The persistent bitmap's clear pass (DESIGN §2.10 rule 2), on the runtime every
     * {@link MirrorOptions#bitmapClearIntervalNanos()} until the job concludes, outside the job's
     * lock: of the regions the previous pass found idle, clean and unclaimed, those to which no
     * write has started since are made durable (the source and the target flushed, after that
     * pass looked) and cleared (each only if still no write started); then the next candidates are
     * taken. A region that stays hot costs neither a flush nor a sync.
     */
    private void clearPass() {
        synchronized (lock) {
            if (lpState().isConcluded()) {
                return;
            }
            clearing = true;
        }
        try {
            long[] idle = intents.stillIdle(clearable);
            if (idle.length > 0) {
                try {
                    source.flush();
                    target.flush();
                    intents.clear(idle);
                } catch (DeviceException | RuntimeException e) {
                    LOG.log(System.Logger.Level.WARNING, "write-intent bitmap: a flush or the bitmap failed; the bits"
                            + " stay set", e);
                }
            }
            clearable = intents.candidates(bitmap, claims);
            svClearPasses(lpClearPasses() + 1); // one writer: the clear pass
            if (trace != null) {
                // A step MirrorCopy.tla sees change nothing (PersistentBitmap.tla's ClearCandidates,
                // ClearFlush, ClearBit, ClearCheck): recorded once the pass is done, as it waited on I/O.
                trace.begin();
                trace.end(MirrorTrace.Step.CLEAR_PASS, 0, idle.length / 2, 0);
            }
        } finally {
            JobState late;
            synchronized (lock) {
                clearing = false;
                late = concludedWhileClearing;
                concludedWhileClearing = null;
                if (late == null && !lpState().isConcluded()) {
                    schedule(this::clearPass, options.bitmapClearIntervalNanos());
                }
            }
            if (late != null) {
                conclusion.complete(late); // the store is the embedder's again only now
            }
        }
    }

    /** Runs on the thread whose exit drained the gate: hand over to the runtime, never block. */
    private void onGuestsDrained() {
        execute(copier.pumpTask);
    }

    /** A wake-up from a guest, the gate, or an executor hand-off. */
    void pump() {
        synchronized (lock) {
            beginStep();
            boolean refused = false;
            try {
                advanceLocked();
            } catch (IllegalStateException refusal) {
                refused = true;
                throw refusal;
            } finally {
                endStep(MirrorTrace.Step.PUMP, 0, !refused);
            }
        }
        deliver();
    }

    void onTimer(Copier c) {
        synchronized (lock) {
            beginStep();
            boolean refused = false;
            try {
                c.timerFiredLocked();
                advanceLocked();
            } catch (IllegalStateException refusal) {
                refused = true;
                throw refusal;
            } finally {
                endStep(MirrorTrace.Step.TIMER, 0, !refused);
            }
        }
        deliver();
    }

    /* ---- Trace (a test seam; null and free unless the job was created with one) ---- */

    private void beginStep() {
        MirrorTrace t = trace;
        if (t != null) {
            t.begin();
        }
    }

    private void endStep(MirrorTrace.Step step, int op, boolean accepted) {
        endStep(step, op, accepted ? 1 : 0);
    }

    private void endStep(MirrorTrace.Step step, int op, long a) {
        MirrorTrace t = trace;
        if (t != null) {
            t.end(step, op, a, 0);
        }
    }

    JobRuntime runtime() {
        return runtime;
    }

    DirtyBitmap bitmap() {
        return bitmap;
    }

    InFlightChunks claims() {
        return claims;
    }

    GuestGate gate() {
        return gate;
    }

    Copier copier() {
        return copier;
    }

    /** Queues an event as the job does under its lock (for the event-delivery harness, through MirrorProbe). */
    void emitForCheck(MirrorEvent event) {
        outbox.add(event);
    }

    /** Events queued and not yet delivered. */
    int queuedEvents() {
        return outbox.size();
    }

    int copiesInFlight() {
        synchronized (lock) {
            return copier.opsInFlightLocked();
        }
    }

    void execute(Runnable task) {
        try {
            runtime.execute(task);
        } catch (RejectedExecutionException e) {
            if (!lvState().isConcluded()) {
                throw e;
            }
        }
    }

    void schedule(Runnable task, long delayNanos) {
        try {
            runtime.schedule(task, delayNanos);
        } catch (RejectedExecutionException e) {
            if (!lvState().isConcluded()) {
                throw e;
            }
        }
    }

    /* ---- Events ---- */

    private long nextSequence() {
        return ++sequence;
    }

    private void emitLocked(MirrorEvent event) {
        outbox.add(event);
    }

    /** Delivers queued events in order, one thread at a time; never called holding the lock. */
    void deliver() {
        while (!outbox.isEmpty()) {
            if (!casDelivering(false, true)) {
                return; // the delivering thread re-checks the queue after it lets go
            }
            try {
                MirrorEvent event;
                while ((event = outbox.poll()) != null) {
                    if (event instanceof MirrorEvent.Ready) {
                        runtimeReady();
                    }
                    for (MirrorListener l : listeners) {
                        try {
                            l.onEvent(event);
                        } catch (RuntimeException ex) {
                            LOG.log(System.Logger.Level.WARNING, "mirror listener threw on " + event, ex);
                        }
                    }
                    if (event instanceof MirrorEvent.Completed || event instanceof MirrorEvent.Cancelled
                            || event instanceof MirrorEvent.Failed) {
                        finalDelivered();
                    }
                }
            } finally {
                svDelivering(false); // then the loop re-reads the queue: the store-load pair
            }
        }
    }

    /** Tells the runtime the job is READY ({@link JobRuntime#jobReady}): once, before the listeners hear it. */
    private void runtimeReady() {
        try {
            runtime.jobReady();
        } catch (RuntimeException ex) {
            LOG.log(System.Logger.Level.WARNING, "job runtime threw on jobReady", ex);
        }
    }

    private void finalDelivered() {
        JobState end = lvState();
        if (ownsRuntime) {
            runtime.shutdown();
        }
        synchronized (lock) {
            if (clearing) {
                concludedWhileClearing = end; // the clear pass completes the conclusion when it ends
                return;
            }
        }
        conclusion.complete(end);
    }

    private void require(boolean allowed, String command) {
        if (!allowed) {
            throw new IllegalStateException("cannot " + command + " a job that is " + lpState()
                    + (lpState() == JobState.PAUSED && resumeTo != null ? " (paused while " + resumeTo + ")" : "")
                    + (abandoning != null ? " (ending as " + abandoning + ")" : ""));
        }
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private JobState lpState() {
        return (JobState) STATE.get(this); // plain: under lock, as every store
    }

    private JobState lvState() {
        return (JobState) STATE.getVolatile(this); // lock-free snapshot; pairs with svState
    }

    private void svState(JobState s) {
        STATE.setVolatile(this, s); // under lock (or in the constructor); stronger than needed
    }

    private boolean lpReady() {
        return (boolean) READY.get(this); // plain: under lock
    }

    private boolean lvReady() {
        return (boolean) READY.getVolatile(this); // lock-free snapshot; pairs with svReady
    }

    private void svReady(boolean r) {
        READY.setVolatile(this, r); // under lock; stronger than needed
    }

    private boolean lvActivelySynced() {
        return (boolean) ACTIVELY_SYNCED.getVolatile(this); // lock-free snapshot; pairs with svActivelySynced
    }

    private void svActivelySynced(boolean a) {
        ACTIVELY_SYNCED.setVolatile(this, a); // under lock; stronger than needed
    }

    private long lpErrorCount() {
        return (long) ERROR_COUNT.get(this); // plain: under lock
    }

    private long lvErrorCount() {
        return (long) ERROR_COUNT.getVolatile(this); // lock-free snapshot; pairs with svErrorCount
    }

    private void svErrorCount(long n) {
        ERROR_COUNT.setVolatile(this, n); // under lock; stronger than needed
    }

    private CopyMode lpCopyMode() {
        return (CopyMode) COPY_MODE.get(this); // plain: under lock
    }

    private CopyMode lvCopyMode() {
        return (CopyMode) COPY_MODE.getVolatile(this); // lock-free snapshot; pairs with svCopyMode
    }

    private void svCopyMode(CopyMode m) {
        COPY_MODE.setVolatile(this, m); // under lock (or in the constructor); stronger than needed
    }

    /** Volatile CAS: one thread delivers at a time. */
    private boolean casDelivering(boolean expected, boolean next) {
        return DELIVERING.compareAndSet(this, expected, next);
    }

    private void svDelivering(boolean d) {
        DELIVERING.setVolatile(this, d); // then the queue's re-read: the store-load pair
    }

    private long lpClearPasses() {
        return (long) CLEAR_PASSES.get(this); // plain: the one writer reads its own store
    }

    private long lvClearPasses() {
        return (long) CLEAR_PASSES.getVolatile(this); // lock-free snapshot; pairs with svClearPasses
    }

    private void svClearPasses(long n) {
        CLEAR_PASSES.setVolatile(this, n); // the clear pass only; stronger than needed
    }
}
