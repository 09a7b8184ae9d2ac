package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;

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
 * conclusion). The guest path in background mode takes no lock.
 */
public final class MirrorJob {
    /** Threads of the default runtime. */
    public static final int DEFAULT_THREADS = 4;

    private static final System.Logger LOG = System.getLogger(MirrorJob.class.getName());

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
    /** Clear passes done: written by the clear pass only, read by bitmapStatus() (volatile). */
    private volatile long clearPasses;
    /** A clear pass is running (guarded by lock): the conclusion waits for it, which may use the store. */
    private boolean clearing;
    /** The final state, when the job concluded during a clear pass (guarded by lock). */
    private JobState concludedWhileClearing;
    /** Null unless traced (MirrorTrace, a test seam): then each section under the lock is one step. */
    private final MirrorTrace trace;

    private final CopyOnWriteArrayList<MirrorListener> listeners = new CopyOnWriteArrayList<>();
    private final ConcurrentLinkedQueue<MirrorEvent> outbox = new ConcurrentLinkedQueue<>();
    private final AtomicBoolean delivering = new AtomicBoolean();
    private final CompletableFuture<JobState> conclusion = new CompletableFuture<>();
    private final CompletableFuture<Void> readyFuture = new CompletableFuture<>();

    // Guarded by lock; the volatile ones are also read lock-free by state() and progress().
    private volatile JobState state = JobState.CREATED;
    private volatile boolean ready;
    private volatile boolean activelySynced;
    private volatile long errorCount;
    private volatile CopyMode copyMode;
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
        this.copyMode = options.copyMode();
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
        return state;
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
                require(state == JobState.CREATED, "start");
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
                if (state == JobState.CREATED) {
                    require(!pauseOnStart, "pause");
                    pauseOnStart = true;
                    return; // no event: nothing changes until start()
                }
                require((state == JobState.RUNNING || state == JobState.READY) && abandoning == null, "pause");
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
                if (state == JobState.CREATED) {
                    require(pauseOnStart, "resume");
                    pauseOnStart = false;
                    return;
                }
                require(state == JobState.PAUSED && abandoning == null, "resume");
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
                if (state == JobState.PAUSED && resumeTo == JobState.READY && abandoning == null) {
                    drain = Drain.PIVOT;
                    resumeTo = JobState.COMPLETING; // resume() holds the guest again and drains
                    return; // no event: nothing changes until resume()
                }
                require(state == JobState.READY && abandoning == null, "complete");
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
                require(state == JobState.PENDING, "finalize");
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
                require(!state.isConcluded(), "cancel");
                if (abandoning != null) {
                    // Already ending (cancelled or failing): the outcome stands.
                    if (force) {
                        return;
                    }
                    throw new IllegalStateException("cannot cancel a job that is " + state + " and already ending as "
                            + abandoning);
                }
                if (state == JobState.CREATED || state == JobState.PENDING) {
                    // Nothing runs: CREATED never started; PENDING has drained and holds the guest, which
                    // is released onto the source without a pivot.
                    concludeLocked(JobState.CANCELLED, false);
                } else if (force) {
                    if (state != JobState.CANCELLING) {
                        setStateLocked(JobState.CANCELLING);
                    }
                    abandonLocked(JobState.CANCELLED);
                } else {
                    JobState at = state == JobState.PAUSED ? resumeTo : state;
                    require(state == JobState.RUNNING || state == JobState.READY
                            || (state == JobState.PAUSED && (at == JobState.RUNNING || at == JobState.READY
                            || at == JobState.COMPLETING)), "cancel");
                    boolean wasPausedInDrain = state == JobState.PAUSED && at == JobState.COMPLETING;
                    resumeTo = null;
                    if (ready || wasPausedInDrain) {
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
                require(!state.isConcluded() && state != JobState.PENDING, "set-speed");
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
                require(!state.isConcluded() && state != JobState.PENDING, "change copy mode");
                if (mode == copyMode) {
                    return;
                }
                if (mode == CopyMode.BACKGROUND) {
                    throw new IllegalStateException("cannot switch from WRITE_BLOCKING back to BACKGROUND");
                }
                copyMode = mode;
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
        return new MirrorProgress(state, ready, copied, copied + dirty + inFlight, dirty, inFlight, activelySynced,
                errorCount, speed, copyMode);
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
        return ready;
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
                clearPasses);
    }

    /** Why the job failed, or null. */
    public String failureReason() {
        synchronized (lock) {
            return failure;
        }
    }

    @Override
    public String toString() {
        return "MirrorJob[" + state + ", " + options + "]";
    }

    /* ---- Lifecycle (under lock) ---- */

    /** Decides what happens next; called after every change. */
    private void advanceLocked() {
        if (state.isConcluded()) {
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
        if (state == JobState.CREATED || state == JobState.PAUSED || state == JobState.PENDING) {
            return;
        }
        copier.issueLocked();
        if (!copier.convergedLocked()) {
            return;
        }
        if (!ready) {
            ready = true;
            setStateLocked(JobState.READY);
            emitLocked(new MirrorEvent.Ready(nextSequence(), copier.bytesCopied(), copier.bytesCopied()));
            readyFuture.complete(null);
        }
        if (copyMode == CopyMode.WRITE_BLOCKING) {
            activelySynced = true;
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
                } else if (abandoning == null && drain != Drain.NONE && state != JobState.PAUSED
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
        resumeTo = state;
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
        JobState from = state;
        if (from == to) {
            return;
        }
        state = to;
        updateWriteThroughLocked();
        emitLocked(new MirrorEvent.StateChanged(nextSequence(), from, to));
    }

    private void updateWriteThroughLocked() {
        boolean on = copyMode == CopyMode.WRITE_BLOCKING && abandoning == null
                && (state == JobState.RUNNING || state == JobState.READY || state == JobState.COMPLETING
                || (state == JobState.CANCELLING && drain != Drain.NONE));
        filter.setWriteThrough(on);
        if (!on) {
            activelySynced = false;
        }
    }

    /* ---- Errors ---- */

    private void onErrorLocked(MirrorEvent.Side side, MirrorEvent.Operation operation, long offset, long length,
            DeviceException e) {
        ErrorPolicy policy = side == MirrorEvent.Side.SOURCE ? options.onSourceError() : options.onTargetError();
        ErrorAction action = policy.actionFor(e.kind());
        errorCount++;
        activelySynced = false;
        emitLocked(new MirrorEvent.Error(nextSequence(), side, operation, action, offset, length, e));
        if (state.isConcluded() || abandoning != null) {
            return; // already on its way out
        }
        switch (action) {
            case IGNORE:
                copier.backOffLocked();
                break;
            case STOP:
                if (state != JobState.PAUSED && state != JobState.CREATED) {
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

    void onCopyFinished(CopyOperation op, MirrorEvent.Side side, MirrorEvent.Operation operation, DeviceException e) {
        synchronized (lock) {
            beginStep();
            boolean refused = false;
            try {
                copier.finishedLocked(op, e);
                if (e != null) {
                    onErrorLocked(side, operation, op.offset, op.length, e);
                }
                advanceLocked();
            } catch (IllegalStateException refusal) {
                refused = true;
                throw refusal;
            } finally {
                endStep(MirrorTrace.Step.COPY_FINISHED, e == null ? MirrorTrace.OK : MirrorTrace.failKind(e), op.firstChunk);
            }
        }
        deliver();
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
            if (state.isConcluded()) {
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
            clearPasses = clearPasses + 1; // one writer: the clear pass
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
                if (late == null && !state.isConcluded()) {
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

    int copiesInFlight() {
        synchronized (lock) {
            return copier.opsInFlightLocked();
        }
    }

    void execute(Runnable task) {
        try {
            runtime.execute(task);
        } catch (RejectedExecutionException e) {
            if (!state.isConcluded()) {
                throw e;
            }
        }
    }

    void schedule(Runnable task, long delayNanos) {
        try {
            runtime.schedule(task, delayNanos);
        } catch (RejectedExecutionException e) {
            if (!state.isConcluded()) {
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
    private void deliver() {
        while (!outbox.isEmpty()) {
            if (!delivering.compareAndSet(false, true)) {
                return; // the delivering thread re-checks the queue after it lets go
            }
            try {
                MirrorEvent event;
                while ((event = outbox.poll()) != null) {
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
                delivering.set(false);
            }
        }
    }

    private void finalDelivered() {
        JobState end = state;
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
            throw new IllegalStateException("cannot " + command + " a job that is " + state
                    + (state == JobState.PAUSED && resumeTo != null ? " (paused while " + resumeTo + ")" : "")
                    + (abandoning != null ? " (ending as " + abandoning + ")" : ""));
        }
    }
}
