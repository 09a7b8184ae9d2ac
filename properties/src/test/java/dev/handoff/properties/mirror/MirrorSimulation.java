package dev.handoff.properties.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.DirtyBitmap;
import dev.handoff.mirror.ErrorAction;
import dev.handoff.mirror.ErrorPolicy;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorEvent;
import dev.handoff.mirror.MirrorFilter;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorProbe;
import dev.handoff.mirror.MirrorProgress;
import dev.handoff.mirror.MirrorTraceRecorder;
import dev.handoff.mirror.SteppingRuntime;
import dev.handoff.mirror.SyncMode;
import dev.handoff.properties.mirror.MirrorScenario.Action;
import dev.handoff.properties.mirror.MirrorScenario.Advance;
import dev.handoff.properties.mirror.MirrorScenario.Cmd;
import dev.handoff.properties.mirror.MirrorScenario.Command;
import dev.handoff.properties.mirror.MirrorScenario.Config;
import dev.handoff.properties.mirror.MirrorScenario.Crash;
import dev.handoff.properties.mirror.MirrorScenario.Fault;
import dev.handoff.properties.mirror.MirrorScenario.Fill;
import dev.handoff.properties.mirror.MirrorScenario.Flush;
import dev.handoff.properties.mirror.MirrorScenario.Read;
import dev.handoff.properties.mirror.MirrorScenario.SetSpeed;
import dev.handoff.properties.mirror.MirrorScenario.Side;
import dev.handoff.properties.mirror.MirrorScenario.Step;
import dev.handoff.properties.mirror.MirrorScenario.Write;
import dev.handoff.properties.sim.PropertyViolation;
import dev.handoff.properties.sim.SimDevice;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.UnaryOperator;

/**
 * The deterministic mirror simulator: the real {@code MirrorJob}, {@code Copier},
 * {@code CopyOperation}, {@link MirrorFilter}, {@link DirtyBitmap}, {@code InFlightChunks} and
 * {@code GuestGate}, over two {@link SimDevice}s and the kernel test-jar's {@link SteppingRuntime};
 * it sees inside the job only through {@link MirrorProbe} and the runtime's copies in flight.
 *
 * <h2>How a run goes</h2>
 * The simulator applies a scenario's actions one by one: a guest operation through the filter,
 * one queued task of the job (a copy's read step, its write step, a pump, a timer, the final
 * flush-and-pivot), a management command, a fault switched on or off, a jump of virtual time,
 * or a crash. Between two actions nothing runs, so the state the checks see is exact: the
 * copies in flight are the copies queued in the runtime, and no guest operation is half done
 * (but the one blocked guest below, asleep in the job). After the last action the run
 * <em>heals</em>: faults off, no more guest writes, resume if paused, start if never started,
 * run tasks until READY, complete, run until concluded.
 *
 * <h2>Interleaving inside an operation</h2>
 * Tasks and guest operations are atomic only as far as the scenario wants: every device call
 * (SimDevice's hook, just before or just after the call takes effect) is a point where the
 * simulator can run other actions. A guest write can carry {@code nest}: job tasks run inside its
 * source write, i.e. between the data landing and the dirty mark (or before it lands); a step can
 * carry {@code nested}: a guest write inside the task's first device call, at an offset relative to
 * that call, i.e. on the chunk being copied, between a copy's source read and the rest of its step.
 * This is what catches the single-thread-invisible orders: mark-before-write, clear-after-read.
 * Nesting is one level deep, so runs stay deterministic.
 *
 * <h2>Blocking guests</h2>
 * A guest operation that would wait in the job (at the gate while a drain holds guests out, or, as
 * a write-blocking write, for a chunk a copy holds) runs on a thread of its own and waits there in
 * the kernel's own code ({@code GuestGate.awaitOpen}, {@code InFlightChunks.awaitClaim}), until the
 * release or the open it waits for. One thread runs at a time: the simulator holds the locks those
 * waits sleep under ({@link MirrorProbe#holdWakeUps}) whenever it runs, so a wake-up in the middle
 * of a step only queues the waiter for its lock; after each action (and each heal step) it lets go,
 * and the woken guest runs alone until it finishes or sleeps again ({@link MirrorProbe#sleepsIn}).
 * The guest's route and the clears it makes are judged against the job as it was when it got past
 * each wait. One guest blocks at a time; another operation that would wait meanwhile, or one nested
 * in a task other than a copy step, or any under trace validation, is skipped (counted). A guest
 * still asleep when the job has concluded is a lost wake-up ({@code liveness}); a guest that neither
 * finishes nor sleeps within a minute of real time is a hang ({@code no-exception}).
 *
 * <h2>Properties, checked after every action</h2>
 * <ul>
 *   <li>{@code guest-image}: the device the guest is routed to holds exactly the bytes of every
 *       acknowledged guest write in order (a byte-array model); guest reads return them.</li>
 *   <li>{@code key-invariant}: while the job runs, every chunk that is neither dirty nor covered
 *       by a copy in flight is equal on source and target (DESIGN §3.6).</li>
 *   <li>{@code ready-in-sync}: when READY is emitted no copy is in flight, nothing is dirty and
 *       the target equals the source.</li>
 *   <li>{@code completed-consistent}: COMPLETED leaves the target equal to the source and
 *       flushed; pivoted: the guest is on the target and sees all its writes; not pivoted: it is
 *       on the source.</li>
 *   <li>{@code cancelled-source-intact}: CANCELLED and FAILED leave the guest on the source.</li>
 *   <li>{@code error-policy}: every injected fault on a job path is one ERROR event, whose action
 *       is the one DESIGN §2.7 gives the side's policy for that kind; STOP leaves the job PAUSED;
 *       IGNORE neither pauses nor fails it; after a REPORT the job ends FAILED.</li>
 *   <li>{@code event-stream}: sequence numbers 1, 2, 3, ...; each state change starts where the
 *       previous one ended; one final event, nothing after it.</li>
 *   <li>{@code command-table}: each command is accepted exactly where MirrorJob's state x command
 *       table allows it, and a refused one changes nothing.</li>
 *   <li>{@code write-blocking-clear}: a write-blocking guest write that succeeded with no fault
 *       during it leaves every chunk it covered completely clean (DESIGN §3.4: it clears them,
 *       holding their claims) and every chunk it covered only in part as dirty or clean as it
 *       was before (the part it did not write may still differ).</li>
 *   <li>{@code guest-op-failure}: a guest operation fails only when a fault was injected.</li>
 *   <li>{@code crash-durability}: after a crash the guest's device holds every write acknowledged
 *       before its last successful flush (or before the pivot, which flushes the target), and each
 *       other byte comes from a later write.</li>
 *   <li>{@code liveness} (at the end): once guest writes and faults stop, the job reaches READY,
 *       and complete() then pivots with the target equal to every acknowledged write.</li>
 *   <li>{@code no-exception}: no task or command throws anything unexpected.</li>
 * </ul>
 *
 * <h2>What a management tool reads, and where guest writes go (against {@link JobModel})</h2>
 * An independent model, kept from the simulator's own observations (commands and the table's
 * answers, events, injected faults, the copies queued in its runtime, the device calls the kernel
 * makes), never from the kernel's counters, bitmap or routing flags. After every action:
 * <ul>
 *   <li>{@code progress-offset}: {@code offset} is the bytes of the copies that finished without a
 *       fault;</li>
 *   <li>{@code progress-in-flight}: the bytes in flight are those of the copies queued;</li>
 *   <li>{@code progress-dirty}: the dirty bytes are those of the model's dirty chunks (DESIGN's
 *       rules: sync FULL marks all at start; background writes mark, even failed; a write-blocking
 *       write clears what it covers whole before its source write and marks all on a failure; a
 *       copy clears its chunks when issued and marks them again if it fails);</li>
 *   <li>{@code progress-length}: {@code len} = offset + dirty + in flight;</li>
 *   <li>{@code progress-ready}: {@code ready} is true exactly once READY was announced;</li>
 *   <li>{@code progress-settings}: speed and copy mode are the last accepted ones;</li>
 *   <li>{@code actively-synced}: true only in write-blocking mode, after READY, while writes go
 *       through, once the job was seen converged after its last error; and true after any task
 *       that ended with all of that holding;</li>
 *   <li>{@code guest-route}: every guest write reaches the source, then (write-through) the target,
 *       in that order, or only the source; after the final event, only the device the job ended
 *       on (the target after a pivot; the source after a cancel before or after READY, a forced
 *       cancel or a failure under any policy); reads and flushes the source, or the target after a
 *       pivot; the job pivots exactly when complete() started its drain (a cancel after READY never
 *       pivots, also when it waited in PENDING for a finalize); and the job touches neither device
 *       after its final event.</li>
 * </ul>
 * {@code state} (with {@code event-stream}) and the error count (with {@code error-policy}) are
 * checked above. QEMU's {@code busy} (bytes in flight), {@code paused} and {@code status} (the
 * state, READY announced), {@code io-status} (STOP errors, resumes) and {@code ready} are composed
 * from these fields and the events by the CLI's QMP layer ({@code JobControlTest},
 * {@code QmpEventsTest} and the QMP comparison with qemu-storage-daemon check that composition).
 *
 * <p>QEMU's job lifecycle: scenarios turn auto-finalize off in one run of four; the drained job
 * then waits in PENDING (guests held) for a finalize, which the command table checks (refused
 * elsewhere; set-speed and the copy mode refused in PENDING; a cancel there ends CANCELLED).
 */
public final class MirrorSimulation {

    /** What a run did, for coverage statistics. */
    public record Result(JobState outcome, boolean pivoted, boolean crashed, int tasks, int guestWrites,
            int skippedGuestOps, int blockedGuestOps, long errors, boolean reachedReady, boolean readyBeforeHeal, boolean healed,
            boolean wasPending) {
    }

    /** A decorator of the devices the job sees, for broken-device self-tests. */
    public interface DeviceWrapper extends UnaryOperator<BlockDevice> {
    }

    private enum Context { COMMAND, GUEST, JOB }

    private interface Nest {
        boolean after();

        void run(long offset, long length);
    }

    private static final int HEAL_STEPS = 60_000;
    /** -Dhandoff.trace=true prints every action, task and event of a run (use with -Dhandoff.seed). */
    private static final boolean TRACE = Boolean.getBoolean("handoff.trace");
    /**
     * Virtual time healing may take beyond what the speed limit needs: the job must be READY
     * within this plus {@link #copyTimeNanos} of the moment writes and faults stop.
     */
    private static final long HEAL_NANOS = 3_600_000_000_000L;
    /** How long, in real time, a blocked guest may take to finish or fall asleep again: a hang is a failure. */
    private static final long SETTLE_NANOS = 60_000_000_000L;

    private final MirrorScenario scenario;
    private final Config config;
    private final int size;
    private final int granularity;
    private final SteppingRuntime runtime;
    private final SimDevice source;
    private final SimDevice target;
    private final BlockDevice jobSource;
    private final BlockDevice jobTarget;
    private final MirrorJob job;
    private final MirrorFilter guest;
    private final DirtyBitmap bitmap;
    private final SplittableRandom healRandom;
    /** Null unless the run is traced for TraceMirrorCopy.tla. */
    private final MirrorTraceRecorder recorder;

    private final List<MirrorEvent> events = new ArrayList<>();
    private int eventsSeen;
    private long lastSequence;
    private JobState lastState = JobState.CREATED;
    private MirrorEvent terminal;
    private JobState pausedFrom;
    /** Whether a pause was accepted while CREATED (the job pauses as it starts). */
    private boolean pauseOnStart;
    /** Whether the drain in progress was asked for by complete() (a pivot) rather than by a cancel after READY. */
    private boolean pivotAsked;
    /** Whether the job was PENDING at some point (auto-finalize off). */
    private boolean wasPending;

    private final byte[] model;
    /** What a management tool must read and where each guest operation must go (see {@link JobModel}). */
    private final JobModel expected;
    /** The guest operation running now, here or on the blocked guest's thread, or null. */
    private GuestOp active;
    /** The one guest operation waiting in the job (at the gate or for a claim), or null. */
    private GuestOp blocked;
    /** The blocked guest's thread once its run is abandoned: its device calls throw. */
    private volatile Thread abandoned;
    private int blockedOps;
    /** Faults injected on the job's own device calls (not a guest's, not a nested guest write's). */
    private long jobFaults;
    private byte[] floor;
    private final List<long[]> sinceFloorRanges = new ArrayList<>();
    private final List<byte[]> sinceFloorData = new ArrayList<>();

    private Context context = Context.COMMAND;
    /** One-shot action to run inside the next device call of the current action (see Write.nest, Step.nested). */
    private Nest nest;
    private boolean nesting;
    /** The byte range of the guest write in progress (a task may run inside it), or null. */
    private long[] guestInProgress;
    private boolean stopInAction;
    private boolean ignoreOnlyInAction;
    private boolean errorInAction;
    private boolean abandonBeforeAction;
    private boolean pausedInAction;
    private boolean failedInAction;
    private JobState stateBeforeAction = JobState.CREATED;
    private int action = -1;
    private long expectedErrors;
    private long errorsSeen;
    private long ignoredErrors;
    private int failedWriteBlockingWrites;
    private boolean abandonKnown;
    private boolean reportPending;
    private boolean commandInStep;
    private boolean crashed;
    private boolean reachedReady;
    private boolean readyBeforeHeal;
    private boolean healed;
    private int tasks;
    private int writeId;
    private int guestWrites;
    private int skipped;

    public MirrorSimulation(MirrorScenario scenario) {
        this(scenario, d -> d);
    }


    /** A simulation whose job sees the devices through {@code wrap} (a broken-device self-test). */
    public MirrorSimulation(MirrorScenario scenario, DeviceWrapper wrap) {
        this(scenario, wrap, null);
    }

    /**
     * A simulation whose job records its spec-level steps in {@code recorder} (trace validation):
     * the outer guest operation acts as guest "g1", a guest write nested inside another step as
     * "g2".
     */
    public MirrorSimulation(MirrorScenario scenario, MirrorTraceRecorder recorder) {
        this(scenario, d -> d, recorder);
    }

    private MirrorSimulation(MirrorScenario scenario, DeviceWrapper wrap, MirrorTraceRecorder recorder) {
        this.scenario = scenario;
        this.config = scenario.config();
        this.size = config.size();
        this.granularity = config.granularity();
        SplittableRandom r = new SplittableRandom(config.seed());
        byte[] src = initialContent(r, size, granularity);
        byte[] tgt;
        if (config.targetIsZero()) {
            tgt = new byte[size];
            if (config.sync() == SyncMode.NONE) {
                src = new byte[size];
            }
        } else if (config.sync() == SyncMode.NONE) {
            tgt = src.clone();
        } else {
            tgt = initialContent(r, size, granularity);
        }
        this.source = new SimDevice("source", src, r.nextLong());
        this.target = new SimDevice("target", tgt, r.nextLong());
        this.runtime = SteppingRuntime.withLatency(r.nextLong(), config.maxLatencyMicros() * 1_000L, 1_000_000_000L);
        this.healRandom = new SplittableRandom(r.nextLong());
        this.model = src.clone();
        this.expected = new JobModel(config);
        this.floor = src.clone();
        source.setHook(this::atDevice);
        target.setHook(this::atDevice);
        source.setObserver(f -> onFault(Side.SOURCE));
        target.setObserver(f -> onFault(Side.TARGET));
        // A torn write leaves bytes the guest cannot know: allow it only where the guest model
        // does not look (the target while it is not the guest's device).
        target.setTornAllowed(() -> context == Context.JOB
                || (context == Context.GUEST && !job().state().isConcluded()));
        // Outermost: what the kernel calls, noted for the route checks (guest-route).
        this.jobSource = new Recorder(wrap.apply(source), Side.SOURCE);
        this.jobTarget = new Recorder(wrap.apply(target), Side.TARGET);
        this.recorder = recorder;
        this.job = recorder == null ? MirrorJob.create(jobSource, jobTarget, config.options(), runtime)
                : MirrorTraceRecorder.createJob(jobSource, jobTarget, config.options(), runtime, recorder);
        job.addListener(this::onEvent);
        this.guest = job.guestDevice();
        this.bitmap = MirrorProbe.bitmap(job);
    }

    private MirrorJob job() {
        return job;
    }

    /** Who acts now; a traced run also tells the recorder which guest, if any. */
    private void context(Context c) {
        context = c;
        if (recorder != null) {
            recorder.actingGuest(c == Context.GUEST ? (nesting ? "g2" : "g1") : null);
        }
    }

    /** Runs the scenario; throws {@link PropertyViolation} on the first property that fails. */
    public Result run() {
        MirrorProbe.holdWakeUps(job);
        try {
            runActions();
        } finally {
            abandonBlocked();
            MirrorProbe.releaseWakeUps(job);
        }
        return new Result(job.state(), terminal instanceof MirrorEvent.Completed c && c.pivoted(), crashed, tasks,
                guestWrites, skipped, blockedOps, errorsSeen, reachedReady, readyBeforeHeal, healed, wasPending);
    }

    private void runActions() {
        List<Action> actions = scenario.actions();
        for (action = 0; action < actions.size() && !crashed; action++) {
            beforeAction();
            trace("action " + action + ": " + actions.get(action));
            apply(actions.get(action));
            nest = null;
            if (!crashed) {
                settle(false);
            }
            afterAction();
        }
        action = -1;
        if (!crashed) {
            heal();
        }
    }

    /* ---- Actions ---- */

    private void apply(Action a) {
        if (a instanceof Write w) {
            guestWrite(w);
        } else if (a instanceof Read r) {
            guestRead(r);
        } else if (a instanceof Flush) {
            guestFlush();
        } else if (a instanceof Step s) {
            if (s.nested() != null) {
                MirrorScenario.Nested n = s.nested();
                nest = new Nest() {
                    public boolean after() {
                        return n.after();
                    }

                    public void run(long offset, long length) {
                        guestWrite(new Write(offset + Math.floorMod(n.offset(), Math.max(1, length)), n.length(),
                                n.fill()));
                    }
                };
            }
            step(s.pick());
        } else if (a instanceof Advance adv) {
            runtime.moveClock(adv.micros() * 1_000L);
        } else if (a instanceof Command c) {
            command(c.cmd());
        } else if (a instanceof SetSpeed s) {
            long speed = s.bytesPerSecond();
            JobState now = job.state();
            command("setSpeed(" + speed + ")", !now.isConcluded() && now != JobState.PENDING, () -> job.setSpeed(speed),
                    () -> expected.speedSet(speed));
        } else if (a instanceof Fault f) {
            SimDevice d = f.side() == Side.SOURCE ? source : target;
            d.setFault(f.op(), f.kind(), f.percent());
        } else if (a instanceof Crash) {
            crash();
        }
    }

    private void step(int pick) {
        if (runtime.isEmpty()) {
            return;
        }
        Context outer = context;
        context(Context.JOB);
        long faultsBefore = jobFaults;
        long errorsBefore = errorsSeen;
        SteppingRuntime.Task t;
        try {
            t = runtime.step(pick);
            if (TRACE) {
                trace("  ran " + t + " at " + runtime.nanoTime());
            }
            tasks++;
        } catch (RuntimeException | Error e) {
            if (e instanceof PropertyViolation) {
                throw e;
            }
            throw violation("no-exception", "a job task threw " + e, e);
        } finally {
            context(outer);
        }
        SteppingRuntime.Copy ran = t.copy();
        afterJobWork(ran, ran != null && jobFaults != faultsBefore, true, errorsSeen != errorsBefore);
    }

    /**
     * The end of a task or an accepted command: the model sees the copies in flight now (issued,
     * finished) and whether the job may or must now be actively synced.
     */
    private void afterJobWork(SteppingRuntime.Copy ran, boolean ranFailed, boolean task, boolean error) {
        String misfit = expected.copies(runtime.copiesWithRunning(), ran, ranFailed);
        if (misfit != null) {
            throw violation("progress-in-flight", misfit);
        }
        expected.ended(task, error, terminal == null && expected.writesThrough(lastState, abandonKnown));
    }

    /* ---- Guest operations ---- */

    /**
     * The job as a guest operation finds it when it gets past its waits: what it must reach
     * (concluded, write-through expected), the kernel's write-through flag, the dirty bits of its
     * end chunks before its clears, and the job faults seen so far. Taken when an operation starts,
     * and again before each run of a blocked one: nothing else runs between that and its passage.
     */
    private record Snapshot(boolean concluded, boolean throughExpected, boolean writeBlocking, boolean writesThrough,
            boolean firstWasDirty, boolean lastWasDirty, long jobFaults) {
    }

    /**
     * One guest operation: the devices it reached and the faults it met; for one that waits in the
     * job, its thread and where it sleeps (see "Blocking guests" in the class comment).
     */
    private final class GuestOp {
        final String what;
        final Fill fill; // null for a read or a flush
        final long off;
        final int len;
        final StringBuilder route = new StringBuilder();
        long sourceFaults;
        long targetFaults;
        /** Faults on the device the guest is routed to. */
        long faults;
        /** Tasks to run inside its first device call (Write.nest), or null. */
        Nest nest;
        /** The job before the operation's latest run. */
        Snapshot pending;
        /** The job when it entered the gate (its route), and when it got past every wait (its clears). */
        Snapshot atGate;
        Snapshot atPass;
        Thread thread;
        volatile boolean done;
        volatile Throwable failure;
        /** Where it sleeps after its latest run ("gate", "claim"), or null. */
        String sleepsIn;

        GuestOp(String what, Fill fill, long off, int len) {
            this.what = what;
            this.fill = fill;
            this.off = off;
            this.len = len;
        }

        boolean isWrite() {
            return fill != null;
        }
    }

    private Snapshot snapshot(GuestOp op) {
        boolean write = op.isWrite();
        boolean concluded = terminal != null;
        boolean discard = op.fill == Fill.DISCARD;
        long firstChunk = bitmap.chunkOf(op.off);
        long lastChunk = bitmap.chunkOf(op.off + op.len - 1);
        return new Snapshot(concluded,
                write && !discard && !concluded && expected.writesThrough(lastState, abandonKnown),
                write && job.progress().copyMode() == CopyMode.WRITE_BLOCKING && !job.state().isConcluded(),
                write && !discard && MirrorProbe.writesThrough(guest),
                bitmap.isDirty(firstChunk), bitmap.isDirty(lastChunk), expectedErrors);
    }

    /**
     * Whether a guest operation would wait in the job now: at a closed gate, or, for a write that
     * may be write-blocking, for a chunk of its range that a copy or the blocked guest holds.
     * Over-approximates (a paused write-blocking job writes nothing through) rather than ever
     * letting this thread wait.
     */
    private boolean wouldWait(GuestOp op) {
        if (MirrorProbe.gateClosed(job)) {
            return true;
        }
        if (!op.isWrite() || op.fill == Fill.DISCARD || job.progress().copyMode() != CopyMode.WRITE_BLOCKING
                || job.state().isConcluded()) {
            return false;
        }
        for (long c = bitmap.chunkOf(op.off); c <= bitmap.chunkOf(op.off + op.len - 1); c++) {
            if (MirrorProbe.isClaimed(job, c)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Runs a guest operation: here, if it will not wait; on its own thread as the blocked guest, if
     * it would wait and may (one at a time; never under trace validation, nor nested in a task
     * other than a copy step); otherwise it is skipped, as a guest that gave up.
     */
    private void guestOp(GuestOp op, Runnable body) {
        if (!wouldWait(op)) {
            op.pending = snapshot(op);
            GuestOp outer = active;
            active = op;
            try {
                body.run();
            } finally {
                active = outer;
            }
            return;
        }
        SteppingRuntime.Task running = runtime.running();
        if (blocked != null || recorder != null || (running != null && running.copy() == null)) {
            skipped++;
            return;
        }
        blockedOps++;
        trace("  " + op.what + " waits in the job");
        blocked = op;
        op.thread = new Thread(() -> {
            try {
                body.run();
            } catch (Throwable t) {
                op.failure = t;
            } finally {
                op.done = true;
            }
        }, "simulated-guest");
        op.thread.setDaemon(true);
        settle(true);
    }

    /**
     * Lets the blocked guest run, if a release or an open woke it, until it finishes or sleeps in
     * the job again: the wake-ups its waits received while other work ran were held back
     * ({@link MirrorProbe#holdWakeUps}), so it runs here, alone, at a point of the schedule. Called
     * after every action and heal step (and when a guest starts blocking).
     */
    private void settle(boolean start) {
        GuestOp op = blocked;
        if (op == null) {
            return;
        }
        op.pending = snapshot(op);
        Context outerContext = context;
        GuestOp outerActive = active;
        boolean outerNesting = nesting;
        context(Context.GUEST);
        active = op;
        nesting = false;
        MirrorProbe.releaseWakeUps(job);
        try {
            if (start) {
                op.thread.start();
            }
            awaitGuest(op);
        } finally {
            MirrorProbe.holdWakeUps(job);
            context(outerContext);
            active = outerActive;
            nesting = outerNesting;
        }
        if (op.done) {
            blocked = null;
            join(op.thread);
            trace("  " + op.what + " done after waiting");
            Throwable failure = op.failure;
            if (failure instanceof RuntimeException e) {
                throw e;
            }
            if (failure instanceof Error e) {
                throw e;
            }
        } else if ("claim".equals(op.sleepsIn) && op.atGate == null) {
            op.atGate = op.pending; // it entered the gate in this run, and now waits for a claim
        }
    }

    /** Waits until {@code op}'s thread finished or sleeps in the job's gate or claims, at most {@link #SETTLE_NANOS}. */
    private void awaitGuest(GuestOp op) {
        long deadline = System.nanoTime() + SETTLE_NANOS;
        for (int spins = 0; !op.done; spins++) {
            String where = MirrorProbe.sleepsIn(job, op.thread);
            if (where != null) {
                op.sleepsIn = where;
                return;
            }
            if (System.nanoTime() - deadline > 0) {
                throw violation("no-exception", op.what + " neither finished nor slept in the job's gate or claims"
                        + " (thread " + op.thread.getState() + " at " + Arrays.toString(op.thread.getStackTrace()) + ")");
            }
            if (spins < 200) {
                Thread.onSpinWait();
            } else {
                Thread.yield();
            }
        }
        op.sleepsIn = null;
    }

    private static void join(Thread t) {
        try {
            t.join(SETTLE_NANOS / 1_000_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Ends a run that stops with a guest still blocked (a crash, a failed check): lets it go
     * ({@link MirrorProbe#abandonWaiters}); its device calls then throw, and its thread ends. The
     * thread is also interrupted: the kernel's waits re-check their condition when interrupted,
     * so it ends even where the wake-up itself is what a broken kernel loses (after a lost
     * wake-up was reported, or a crash), instead of keeping the run until {@link #SETTLE_NANOS}.
     */
    private void abandonBlocked() {
        GuestOp op = blocked;
        blocked = null;
        if (op == null || op.thread == null || !op.thread.isAlive()) {
            return;
        }
        abandoned = op.thread;
        MirrorProbe.abandonWaiters(job, bitmap.chunkOf(op.off), bitmap.chunkOf(op.off + op.len - 1));
        op.thread.interrupt();
        MirrorProbe.releaseWakeUps(job);
        try {
            join(op.thread);
        } finally {
            MirrorProbe.holdWakeUps(job);
        }
    }

    /** The operation got past its waits (its first device call): the job it found, its clears. */
    private void passed(GuestOp op) {
        if (op.atGate == null) {
            op.atGate = op.pending;
        }
        op.atPass = op.pending;
        if (op.isWrite()) {
            guestInProgress = new long[] {op.off, op.len};
            if (op.atGate.throughExpected()) {
                // DESIGN §3.4: holding its claims, it clears the chunks it covers completely before its
                // source write (where tasks nested in it run).
                expected.wroteThrough(op.off, op.len);
            }
        }
    }

    private void guestWrite(Write w) {
        long off = Math.floorMod(w.offset(), (long) size);
        int len = (int) (1 + Math.floorMod(w.length() - 1L, Math.min(size - off, 1L << 16)));
        GuestOp op = new GuestOp("guest " + w + " at " + off + "+" + len, w.fill(), off, len);
        guestOp(op, () -> runGuestWrite(op, w));
    }

    private void runGuestWrite(GuestOp op, Write w) {
        long off = op.off;
        int len = op.len;
        int id = ++writeId;
        byte[] data = new byte[len];
        if (w.fill() == Fill.PATTERN) {
            fillPattern(data, id, off);
        }
        trace("  guest " + w + " -> " + off + "+" + len + (nesting ? " (nested)" : ""));
        if (w.nest() != 0 && !nesting) {
            int tasksInside = w.nest() & 7;
            boolean after = (w.nest() & 8) != 0;
            int firstPick = w.nest() >> 4;
            op.nest = new Nest() {
                public boolean after() {
                    return after;
                }

                public void run(long offset, long length) {
                    for (int i = 0; i < tasksInside; i++) {
                        step(firstPick + 3 * i);
                    }
                }
            };
        }
        boolean failed = false;
        Context outer = context;
        context(Context.GUEST);
        try {
            switch (w.fill()) {
                case PATTERN, ZERO_DATA -> guest.write(off, ByteBuffer.wrap(data));
                case WRITE_ZEROES -> guest.writeZeroes(off, len);
                case DISCARD -> guest.discard(off, len);
            }
        } catch (DeviceException e) {
            if (op.faults == 0) {
                throw violation("guest-op-failure", "guest " + w + " failed with no fault injected: " + e, e);
            }
            failed = true; // faults on the guest's device never tear: nothing was applied
        } catch (RuntimeException e) {
            throw violation("no-exception", "guest " + w + " threw " + e, e);
        } finally {
            context(outer);
            guestInProgress = null;
        }
        if (op.atPass == null) {
            passed(op);
        }
        Snapshot g = op.atGate;
        Snapshot p = op.atPass;
        if (failed && g.writeBlocking()) {
            failedWriteBlockingWrites++;
        }
        String reached = op.route.toString();
        boolean sourceFailed = op.sourceFaults > 0;
        boolean anyFailed = sourceFailed || op.targetFaults > 0;
        String want = JobModel.route(true, g.concluded(), g.concluded() && pivotedAtEnd(), g.throughExpected(),
                sourceFailed);
        if (!reached.equals(want)) {
            throw violation("guest-route", "guest " + w + " at " + off + "+" + len + " reached " + devices(reached)
                    + " but must reach " + devices(want) + " (job " + lastState + (abandonKnown ? ", ending" : "")
                    + ", copy mode " + expected.mode() + ")");
        }
        if (!g.concluded() && (!g.throughExpected() || anyFailed)) {
            expected.marked(off, len); // the background path marks; a failed write-through marks again
        }
        afterGuestOp();
        if (failed) {
            return;
        }
        guestWrites++;
        if (g.writesThrough() && expectedErrors == p.jobFaults()) {
            checkWriteBlockingClear(off, len, bitmap.chunkOf(off), bitmap.chunkOf(off + len - 1), p.firstWasDirty(),
                    p.lastWasDirty());
        }
        System.arraycopy(data, 0, model, (int) off, len);
        sinceFloorRanges.add(new long[] {off, len});
        sinceFloorData.add(data);
    }

    private void guestRead(Read r) {
        long off = Math.floorMod(r.offset(), (long) size);
        int len = (int) (1 + Math.floorMod(r.length() - 1L, Math.min(size - off, 1L << 16)));
        GuestOp op = new GuestOp("guest read " + off + "+" + len, null, off, len);
        guestOp(op, () -> runGuestRead(op));
    }

    private void runGuestRead(GuestOp op) {
        long off = op.off;
        int len = op.len;
        ByteBuffer dst = ByteBuffer.allocate(len);
        Context outer = context;
        context(Context.GUEST);
        boolean failed = false;
        try {
            guest.read(off, dst);
        } catch (DeviceException e) {
            if (op.faults == 0) {
                throw violation("guest-op-failure", "guest read failed with no fault injected: " + e, e);
            }
            failed = true;
        } catch (RuntimeException e) {
            throw violation("no-exception", "guest read threw " + e, e);
        } finally {
            context(outer);
        }
        checkRoute(op, "guest read " + off + "+" + len);
        if (failed) {
            return;
        }
        int at = Arrays.mismatch(dst.array(), 0, len, model, (int) off, (int) off + len);
        if (at >= 0) {
            throw violation("guest-image", "guest read " + off + "+" + len + " returned byte " + dst.array()[at]
                    + " at " + (off + at) + " but the last acknowledged write there left " + model[(int) off + at]);
        }
    }

    private void guestFlush() {
        GuestOp op = new GuestOp("guest flush", null, 0, 1);
        guestOp(op, () -> runGuestFlush(op));
    }

    private void runGuestFlush(GuestOp op) {
        Context outer = context;
        context(Context.GUEST);
        boolean failed = false;
        try {
            guest.flush();
        } catch (DeviceException e) {
            if (op.faults == 0) {
                throw violation("guest-op-failure", "guest flush failed with no fault injected: " + e, e);
            }
            failed = true;
        } catch (RuntimeException e) {
            throw violation("no-exception", "guest flush threw " + e, e);
        } finally {
            context(outer);
        }
        checkRoute(op, "guest flush");
        if (failed) {
            return;
        }
        resetFloor();
    }

    private void command(Cmd cmd) {
        JobState s = job.state();
        boolean concluded = s.isConcluded();
        boolean ready = expected.ready(); // announced, as the model saw it (progress-ready pins the job's own flag)
        switch (cmd) {
            case START -> {
                if (command("start", s == JobState.CREATED, job::start, () -> expected.started(config.sync()))) {
                    pauseOnStart = false;
                }
            }
            case PAUSE -> {
                // QEMU's table: a job paused while CREATED stays CREATED and pauses when it starts.
                if (command("pause", ((s == JobState.RUNNING || s == JobState.READY) && !abandonKnown)
                        || (s == JobState.CREATED && !pauseOnStart), job::pause) && s == JobState.CREATED) {
                    pauseOnStart = true;
                }
            }
            case RESUME -> {
                if (command("resume", (s == JobState.PAUSED && !abandonKnown) || (s == JobState.CREATED && pauseOnStart),
                        job::resume) && s == JobState.CREATED) {
                    pauseOnStart = false;
                }
            }
            case WRITE_BLOCKING -> command("setCopyMode(WRITE_BLOCKING)", !concluded && s != JobState.PENDING,
                    () -> job.setCopyMode(CopyMode.WRITE_BLOCKING), expected::writeBlockingSet);
            case COMPLETE -> {
                // In standby (paused after READY) complete is accepted and takes effect on resume.
                boolean standby = s == JobState.PAUSED && pausedFrom == JobState.READY && !abandonKnown;
                if (command("complete", (s == JobState.READY && !abandonKnown) || standby, job::complete,
                        () -> pivotAsked = true) && standby) {
                    pausedFrom = JobState.COMPLETING;
                }
            }
            case CANCEL -> {
                JobState at = s == JobState.PAUSED ? pausedFrom : s;
                // A job already ending (failing under REPORT, or cancelled before READY) refuses it.
                // PENDING (drained, auto-finalize off) cancels at once, without a pivot.
                boolean allowed = !abandonKnown && (s == JobState.CREATED || s == JobState.RUNNING
                        || s == JobState.READY || s == JobState.PENDING || (s == JobState.PAUSED
                        && (at == JobState.RUNNING || at == JobState.READY || at == JobState.COMPLETING)));
                // Before READY (and not paused in a drain) a cancel abandons the job; after, it drains.
                command("cancel", allowed, job::cancel, () -> {
                    pivotAsked = false; // a cancel never pivots, also one that drains
                    if (s != JobState.CREATED && !(ready || at == JobState.COMPLETING)) {
                        abandonKnown = true;
                    }
                });
            }
            case FORCE_CANCEL -> command("cancel(force)", !concluded, () -> job.cancel(true), () -> {
                if (s != JobState.CREATED) {
                    abandonKnown = true;
                }
            });
            // Auto-finalize off: the drained job concludes (with the pivot complete() asked for) on finalize only.
            case FINALIZE -> command("finalize", s == JobState.PENDING, job::finalizeJob);
        }
    }

    /** Runs a command and checks it against the state x command table; returns whether it was accepted. */
    private boolean command(String name, boolean allowed, Runnable run) {
        return command(name, allowed, run, () -> { });
    }

    /**
     * As {@link #command(String, boolean, Runnable)}; {@code accepted} tells the model what an
     * accepted command changed before the model looks at the copies it issued.
     */
    private boolean command(String name, boolean allowed, Runnable run, Runnable accepted) {
        JobState before = job.state();
        int eventsBefore = events.size();
        long errorsBefore = errorsSeen;
        commandInStep = true;
        context(Context.COMMAND);
        try {
            run.run();
        } catch (IllegalStateException e) {
            if (allowed) {
                throw violation("command-table", name + " was refused in state " + before
                        + (before == JobState.PAUSED ? " (paused from " + pausedFrom + ")" : "") + ": " + e.getMessage());
            }
            if (job.state() != before || events.size() != eventsBefore) {
                throw violation("command-table", "the refused " + name + " changed the job: " + before + " -> "
                        + job.state() + ", events " + events.subList(eventsBefore, events.size()));
            }
            return false;
        } catch (RuntimeException e) {
            throw violation("no-exception", name + " threw " + e, e);
        }
        if (!allowed) {
            throw violation("command-table", name + " was accepted in state " + before
                    + (before == JobState.PAUSED ? " (paused from " + pausedFrom + ")" : "")
                    + " where the table refuses it");
        }
        accepted.run();
        afterJobWork(null, false, false, errorsSeen != errorsBefore);
        return true;
    }

    private void crash() {
        SimDevice guestDevice = (SimDevice) unwrap(guest.currentDevice());
        source.crash();
        target.crash();
        crashed = true;
        byte[] after = guestDevice.peek();
        for (int b = 0; b < size; b++) {
            if (after[b] == floor[b]) {
                continue;
            }
            boolean fromLaterWrite = false;
            for (int i = 0; i < sinceFloorRanges.size() && !fromLaterWrite; i++) {
                long[] range = sinceFloorRanges.get(i);
                if (b >= range[0] && b < range[0] + range[1] && sinceFloorData.get(i)[(int) (b - range[0])] == after[b]) {
                    fromLaterWrite = true;
                }
            }
            if (!fromLaterWrite) {
                throw violation("crash-durability", "after a crash byte " + b + " of the guest's device ("
                        + guestDevice + ") is " + after[b] + ": neither the " + floor[b]
                        + " made durable by the last flush or pivot nor any later write");
            }
        }
    }

    /* ---- Checks ---- */

    private void beforeAction() {
        commandInStep = false;
        stopInAction = false;
        ignoreOnlyInAction = true;
        errorInAction = false;
        pausedInAction = false;
        failedInAction = false;
        abandonBeforeAction = abandonKnown;
        stateBeforeAction = lastState;
    }

    private void afterAction() {
        checkActionEvents();
        if (crashed) {
            return;
        }
        checkGuestImage();
        checkKeyInvariant();
        checkCopierAwake();
        checkProgress();
    }

    /** Runs as the job's listener, on the simulator's thread, right after the change it reports. */
    private void onEvent(MirrorEvent e) {
        trace("  event " + e);
        if (e.sequence() != lastSequence + 1) {
            throw violation("event-stream", "event " + e + " follows sequence " + lastSequence);
        }
        lastSequence = e.sequence();
        if (terminal != null) {
            throw violation("event-stream", "event " + e + " after the final event " + terminal);
        }
        if (e instanceof MirrorEvent.StateChanged sc) {
            if (sc.from() != lastState) {
                throw violation("event-stream", sc + " but the previous change ended in " + lastState);
            }
            lastState = sc.to();
            if (sc.to() == JobState.PAUSED) {
                pausedFrom = sc.from();
                pausedInAction = true;
            }
            if (sc.to() == JobState.FAILED) {
                failedInAction = true;
            }
            if (sc.to() == JobState.PENDING) {
                wasPending = true;
            }
        } else if (e instanceof MirrorEvent.Ready) {
            reachedReady = true;
            expected.readyAnnounced();
            readyBeforeHeal = action >= 0;
            checkReady(e);
        } else if (e instanceof MirrorEvent.Error err) {
            errorInAction = true;
            errorsSeen++;
            expected.unsynced();
            checkErrorAction(err);
            if (err.action() != ErrorAction.IGNORE) {
                ignoreOnlyInAction = false;
            } else {
                ignoredErrors++;
            }
            if (err.action() == ErrorAction.STOP && !abandonKnown) {
                stopInAction = true;
            }
            if (err.action() == ErrorAction.REPORT && !abandonKnown) {
                reportPending = true;
                abandonKnown = true;
            }
        } else {
            terminal = e;
            checkTerminal(e);
        }
    }

    private void checkActionEvents() {
        if (expectedErrors != errorsSeen) {
            throw violation("error-policy", expectedErrors + " faults were injected on the job's paths but "
                    + errorsSeen + " ERROR events were emitted");
        }
        if (job.progress().errorCount() != errorsSeen) {
            throw violation("error-policy", "progress reports " + job.progress().errorCount() + " errors, events "
                    + errorsSeen);
        }
        if (stopInAction && job.state() != JobState.PAUSED && !(job.state().isConcluded() && abandonKnown)) {
            throw violation("error-policy", "a STOP error left the job " + job.state() + ", not PAUSED");
        }
        if (errorInAction && ignoreOnlyInAction && !abandonBeforeAction && !commandInStep
                && (pausedInAction || failedInAction)) {
            throw violation("error-policy", "an IGNORE error moved the job from " + stateBeforeAction + " to "
                    + lastState);
        }
        if (job.state() != lastState) {
            throw violation("event-stream", "state() is " + job.state() + " but the events say " + lastState);
        }
    }

    /**
     * A running job with dirty chunks always has something queued that will copy them (a copy,
     * a pump, a timer): otherwise it would wait for a guest write that may never come.
     */
    private void checkCopierAwake() {
        JobState s = job.state();
        if ((s == JobState.RUNNING || s == JobState.READY) && !abandonKnown && runtime.isEmpty()
                && bitmap.count() > 0) {
            throw violation("liveness", "the job is " + s + " with " + bitmap.count()
                    + " dirty chunks and nothing queued: the copier is asleep");
        }
    }

    private void checkErrorAction(MirrorEvent.Error err) {
        ErrorPolicy policy = err.side() == MirrorEvent.Side.SOURCE ? config.onSourceError() : config.onTargetError();
        ErrorAction expected = switch (policy) {
            case REPORT -> ErrorAction.REPORT;
            case IGNORE -> ErrorAction.IGNORE;
            case STOP -> ErrorAction.STOP;
            case ENOSPC -> err.cause().kind() == DeviceException.Kind.NO_SPACE ? ErrorAction.STOP : ErrorAction.REPORT;
        };
        if (err.action() != expected) {
            throw violation("error-policy", err.side() + " policy " + policy + " on " + err.cause().kind()
                    + " must " + expected + " but the job did " + err.action());
        }
    }

    private void checkReady(MirrorEvent e) {
        List<SteppingRuntime.Copy> inFlight = runtime.copies();
        if (!inFlight.isEmpty()) {
            throw violation("ready-in-sync", e + " with " + inFlight.size() + " copies in flight (first: chunks "
                    + inFlight.get(0).firstChunk() + ".." + inFlight.get(0).lastChunk() + ")");
        }
        if (bitmap.count() != 0) {
            throw violation("ready-in-sync", e + " with " + bitmap.count() + " dirty chunks");
        }
        // A guest write may be in progress around the task that got here (its data on the source,
        // its mark still to come): READY does not cover it, it is copied after it marks.
        byte[] src = source.peek();
        byte[] tgt = target.peek();
        long[] busy = guestInProgress;
        for (int c = 0; c < bitmap.chunkCount(); c++) {
            int from = c * granularity;
            int to = (int) Math.min(size, (long) from + granularity);
            if (busy != null && from < busy[0] + busy[1] && to > busy[0]) {
                continue;
            }
            int at = Arrays.mismatch(src, from, to, tgt, from, to);
            if (at >= 0) {
                throw violation("ready-in-sync", e + " but target differs from source at byte " + (from + at));
            }
        }
    }

    private void checkTerminal(MirrorEvent e) {
        BlockDevice routed = unwrap(guest.currentDevice());
        if (e instanceof MirrorEvent.Completed c) {
            if (reportPending) {
                throw violation("error-policy", "a REPORT error was followed by " + e + ", not FAILED");
            }
            int at = Arrays.mismatch(source.peek(), target.peek());
            if (at >= 0) {
                throw violation("completed-consistent", e + " but target differs from source at byte " + at);
            }
            if (!target.isClean()) {
                throw violation("completed-consistent", e + " but the target holds unflushed writes");
            }
            if (c.pivoted() != (routed == target)) {
                throw violation("completed-consistent", e + " but the guest is routed to " + routed);
            }
            if (c.pivoted() != pivotAsked) {
                throw violation("guest-route", e + " but the drain it ends was started by "
                        + (pivotAsked ? "complete(), which pivots" : "a cancel after READY, which never pivots"));
            }
            if (c.pivoted()) {
                resetFloor(); // the pivot flushed the target, which holds every acknowledged write
            }
        } else {
            if (routed != source) {
                throw violation("cancelled-source-intact", e + " but the guest is routed to " + routed);
            }
            if (e instanceof MirrorEvent.Cancelled && reportPending) {
                throw violation("error-policy", "a REPORT error was followed by " + e + ", not FAILED");
            }
            if (e instanceof MirrorEvent.Failed && errorsSeen == 0) {
                throw violation("error-policy", e + " without any ERROR event");
            }
        }
    }

    /** DESIGN §3.4: see the class comment's {@code write-blocking-clear}. */
    private void checkWriteBlockingClear(long off, int len, long firstChunk, long lastChunk, boolean firstWasDirty,
            boolean lastWasDirty) {
        for (long c = firstChunk; c <= lastChunk; c++) {
            long from = bitmap.offsetOf(c);
            long to = Math.min(size, bitmap.offsetOf(c + 1));
            boolean whole = off <= from && off + len >= to;
            boolean dirty = bitmap.isDirty(c);
            if (whole && dirty) {
                throw violation("write-blocking-clear", "the write-blocking write " + off + "+" + len
                        + " covered chunk " + c + " completely and succeeded, but left it dirty");
            }
            if (!whole && dirty != (c == firstChunk ? firstWasDirty : lastWasDirty)) {
                throw violation("write-blocking-clear", "the write-blocking write " + off + "+" + len
                        + " covered chunk " + c + " only in part but left it " + (dirty ? "dirty" : "clean")
                        + " where it was " + (dirty ? "clean" : "dirty"));
            }
        }
    }

    private void checkGuestImage() {
        SimDevice routed = (SimDevice) unwrap(guest.currentDevice());
        int at = Arrays.mismatch(routed.peek(), model);
        if (at >= 0) {
            throw violation("guest-image", "the guest's device (" + routed + ") holds " + routed.peek()[at]
                    + " at byte " + at + " (chunk " + at / granularity + ") but the last acknowledged write there left "
                    + model[at]);
        }
    }

    private void checkKeyInvariant() {
        JobState s = job.state();
        if (s.isConcluded() || (s == JobState.CREATED && config.sync() == SyncMode.FULL)) {
            return;
        }
        long chunks = bitmap.chunkCount();
        boolean[] inFlight = new boolean[(int) chunks];
        for (SteppingRuntime.Copy op : runtime.copies()) {
            for (long c = op.firstChunk(); c <= op.lastChunk(); c++) {
                inFlight[(int) c] = true;
            }
        }
        byte[] src = source.peek();
        byte[] tgt = target.peek();
        for (int c = 0; c < chunks; c++) {
            if (inFlight[c] || bitmap.isDirty(c)) {
                continue;
            }
            int from = c * granularity;
            int to = (int) Math.min(size, (long) from + granularity);
            int at = Arrays.mismatch(src, from, to, tgt, from, to);
            if (at >= 0) {
                throw violation("key-invariant", "chunk " + c + " is neither dirty nor in flight but target byte "
                        + (from + at) + " is " + tgt[from + at] + " where source has " + src[from + at] + " (job "
                        + s + ")");
            }
        }
    }

    /* ---- Healing: writes and faults stop; the job must get to READY and pivot ---- */

    private void heal() {
        source.clearFaults();
        target.clearFaults();
        long allowed = HEAL_NANOS + copyTimeNanos(job.progress().speed());
        long deadline = runtime.nanoTime() + allowed;
        boolean completeIssued = false;
        int steps = 0;
        while (!job.state().isConcluded()) {
            beforeAction();
            if (++steps > HEAL_STEPS || runtime.nanoTime() - deadline > 0) {
                throw violation("liveness", "writes and faults stopped but after " + steps + " steps and "
                        + (runtime.nanoTime() - deadline + allowed) / 1_000_000 + " ms of virtual time the job is "
                        + job.state() + " with " + bitmap.count() + " dirty chunks and " + runtime.queued() + " tasks queued");
            }
            JobState s = job.state();
            if (s == JobState.CREATED) {
                command(Cmd.START);
            } else if (s == JobState.PAUSED && !abandonKnown) {
                command(Cmd.RESUME);
            } else if (s == JobState.READY && !completeIssued && !abandonKnown) {
                command(Cmd.COMPLETE);
                completeIssued = true;
            } else if (s == JobState.PENDING) {
                command(Cmd.FINALIZE);
            } else if (runtime.isEmpty()) {
                throw violation("liveness", "the job is " + s + " with " + bitmap.count()
                        + " dirty chunks but nothing is queued: it can never move again");
            } else {
                step(healRandom.nextInt(1 << 16));
            }
            settle(false);
            afterAction();
        }
        healed = true;
        if (blocked != null) {
            throw violation("liveness", "the job is " + job.state() + " but " + blocked.what + " still sleeps in the job ("
                    + blocked.sleepsIn + "): a wake-up was lost");
        }
        if (completeIssued && !reportPending && !(terminal instanceof MirrorEvent.Completed c && c.pivoted())) {
            throw violation("liveness", "complete() from READY ended with " + terminal);
        }
    }

    /**
     * The virtual time a speed-limited copier needs to copy the whole device twice. The limiter
     * grants {@code max(1, speed / 10)} bytes per 100 ms slice, at least half the speed (and at
     * least 10 bytes/s), so copying {@code n} bytes takes at most {@code 2n / speed} seconds. A
     * job slowed to a few bytes per second is not stalled; it is slow, and liveness must not
     * call it stalled (a 4 bytes/s limit on a 64 KiB device needs hours).
     */
    private long copyTimeNanos(long speed) {
        if (speed == 0) {
            return 0;
        }
        return (long) Math.ceil(2.0 * 2.0 * size / speed * 1e9);
    }

    /* ---- Helpers ---- */

    private static void trace(String line) {
        if (TRACE) {
            System.out.println(line);
        }
    }

    private void atDevice(SimDevice device, boolean write, long offset, long length, boolean after) {
        GuestOp op = context == Context.GUEST ? active : null;
        Nest n = op != null ? op.nest : nest;
        if (n == null || nesting || n.after() != after) {
            return;
        }
        if (op != null) {
            op.nest = null;
        } else {
            nest = null;
        }
        nesting = true;
        try {
            if (recorder != null) {
                recorder.runNested(() -> n.run(offset, length));
            } else {
                n.run(offset, length);
            }
        } finally {
            nesting = false;
        }
    }

    private void onFault(Side side) {
        if (context == Context.JOB) {
            expectedErrors++;
            jobFaults++;
        } else if (context == Context.GUEST && active != null) {
            if (side == Side.SOURCE) {
                active.sourceFaults++;
            } else {
                active.targetFaults++;
            }
            if (side == Side.TARGET && !job.state().isConcluded()) {
                expectedErrors++; // a write-blocking guest write's target half: the job's error, not the guest's
            } else {
                active.faults++; // a fault on the device the guest is routed to
            }
        }
    }

    /** A call the kernel makes on one of its devices: noted in the guest's route, or checked for the job. */
    private void reached(Side side) {
        if (abandoned != null && Thread.currentThread() == abandoned) {
            throw new IllegalStateException("the run was abandoned");
        }
        if (context == Context.GUEST && active != null) {
            if (active.atPass == null) {
                passed(active);
            }
            active.route.append(side == Side.SOURCE ? JobModel.SOURCE : JobModel.TARGET);
        } else if (context == Context.JOB && terminal != null) {
            throw violation("guest-route", "the job touched the " + side.name().toLowerCase(java.util.Locale.ROOT)
                    + " after its final event " + terminal);
        }
    }

    /** Whether the final event says the guest was switched to the target. */
    private boolean pivotedAtEnd() {
        return terminal instanceof MirrorEvent.Completed c && c.pivoted();
    }

    private static String devices(String route) {
        return route.isEmpty() ? "no device" : route.replace("S", "source, ").replace("T", "target, ")
                .replaceAll(", $", "");
    }

    /** A guest read or flush must reach the source while the job runs and the device it ended on after. */
    private void checkRoute(GuestOp op, String what) {
        String reached = op.route.toString();
        boolean concluded = terminal != null;
        String want = JobModel.route(false, concluded, concluded && pivotedAtEnd(), false, false);
        if (!reached.equals(want)) {
            throw violation("guest-route", what + " reached " + devices(reached) + " but must reach " + devices(want)
                    + " (job " + lastState + ")");
        }
    }

    /**
     * The end of a guest operation: the model sees the copies it issued (a failed write-through goes
     * to the policy, which may issue copies). Its ERROR event, if any, already told the model.
     */
    private void afterGuestOp() {
        String misfit = expected.copies(runtime.copiesWithRunning(), null, false);
        if (misfit != null) {
            throw violation("progress-in-flight", misfit);
        }
    }

    /**
     * Every field a management tool reads (QEMU's query-block-jobs, from {@link MirrorProgress})
     * against {@link JobModel}; see the class comment for each property.
     */
    private void checkProgress() {
        MirrorProgress p = job.progress();
        if (p.state() != lastState) {
            throw violation("event-stream", "progress says " + p.state() + " but the events say " + lastState);
        }
        if (p.ready() != expected.ready()) {
            throw violation("progress-ready", "ready is " + p.ready() + " but READY was "
                    + (expected.ready() ? "" : "never ") + "announced (job " + lastState + ")");
        }
        if (p.bytesInFlight() != expected.inFlightBytes()) {
            throw violation("progress-in-flight", "bytes in flight " + p.bytesInFlight() + " but the copies queued hold "
                    + expected.inFlightBytes());
        }
        if (p.offset() != expected.offset()) {
            throw violation("progress-offset", "offset " + p.offset() + " but the copies that finished without a fault"
                    + " copied " + expected.offset() + " bytes");
        }
        if (p.dirtyBytes() != expected.dirtyBytes()) {
            throw violation("progress-dirty", "dirty bytes " + p.dirtyBytes() + " but the model's dirty chunks hold "
                    + expected.dirtyBytes() + " (job " + lastState + ")");
        }
        if (p.length() != expected.length()) {
            throw violation("progress-length", "len " + p.length() + " but offset + dirty + in flight = "
                    + expected.offset() + " + " + expected.dirtyBytes() + " + " + expected.inFlightBytes());
        }
        if (p.speed() != expected.speed() || p.copyMode() != expected.mode()) {
            throw violation("progress-settings", "speed " + p.speed() + ", copy mode " + p.copyMode() + " but the last"
                    + " accepted settings were " + expected.speed() + ", " + expected.mode());
        }
        if (p.activelySynced() && !expected.syncAllowed()) {
            throw violation("actively-synced", "actively-synced is true but the job is " + lastState
                    + (abandonKnown ? " (ending)" : "") + ", copy mode " + expected.mode() + ", ready " + expected.ready()
                    + ", and was not seen converged since its last error");
        }
        if (!p.activelySynced() && expected.syncRequired()) {
            throw violation("actively-synced", "actively-synced is false but the job is " + lastState + " in "
                    + expected.mode() + " mode and converged with no error since");
        }
    }

    private void resetFloor() {
        floor = model.clone();
        sinceFloorRanges.clear();
        sinceFloorData.clear();
    }

    private BlockDevice unwrap(BlockDevice d) {
        if (d == jobSource) {
            return source;
        }
        if (d == jobTarget) {
            return target;
        }
        return d;
    }

    private PropertyViolation violation(String property, String message) {
        return new PropertyViolation(property, action, message);
    }

    private PropertyViolation violation(String property, String message, Throwable cause) {
        return new PropertyViolation(property, action, message, cause);
    }

    /** The device the kernel is given: notes every call it makes (see {@link #reached}), then forwards it. */
    private final class Recorder implements BlockDevice {
        private final BlockDevice inner;
        private final Side side;

        Recorder(BlockDevice inner, Side side) {
            this.inner = inner;
            this.side = side;
        }

        @Override
        public long size() {
            return inner.size();
        }

        @Override
        public void read(long offset, ByteBuffer dst) throws DeviceException {
            reached(side);
            inner.read(offset, dst);
        }

        @Override
        public void write(long offset, ByteBuffer src) throws DeviceException {
            reached(side);
            inner.write(offset, src);
        }

        @Override
        public void writeZeroes(long offset, long length) throws DeviceException {
            reached(side);
            inner.writeZeroes(offset, length);
        }

        @Override
        public void discard(long offset, long length) throws DeviceException {
            reached(side);
            inner.discard(offset, length);
        }

        @Override
        public void flush() throws DeviceException {
            reached(side);
            inner.flush();
        }

        @Override
        public void close() throws DeviceException {
            inner.close();
        }

        @Override
        public String toString() {
            return inner.toString();
        }
    }

    /** Self-identifying content: byte at device offset p of write w is a hash of (w, p). */
    static void fillPattern(byte[] data, int writeId, long offset) {
        for (int i = 0; i < data.length; i++) {
            long x = (writeId * 0x9E3779B97F4A7C15L) ^ (offset + i) * 0xBF58476D1CE4E5B9L;
            x ^= x >>> 31;
            data[i] = (byte) (x | 1);
        }
    }

    private static byte[] initialContent(SplittableRandom r, int size, int granularity) {
        byte[] b = new byte[size];
        for (int from = 0; from < size; from += granularity) {
            int to = Math.min(size, from + granularity);
            int kind = r.nextInt(4);
            if (kind == 0) {
                continue; // a zero chunk: exercises zero detection
            }
            for (int i = from; i < to; i++) {
                b[i] = (byte) r.nextInt(256);
            }
        }
        return b;
    }
}
