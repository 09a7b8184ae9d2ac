package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * Records the spec-level steps of one mirror job ({@link MirrorTrace}) and writes them as a TLA+
 * module for {@code TraceMirrorCopy.tla}. The published test seam for trace validation: tests in
 * other modules create traced jobs with {@link #createJob} and read the trace with
 * {@link #toTlaModule}.
 *
 * <p>Each step holds a reentrant lock from {@code begin} to {@code end}, so the steps of all
 * threads are totally ordered as they took effect, and only the outermost step of a nest is
 * recorded (the claims and clears inside a section are that section). After each recorded step
 * the recorder reads, still holding the lock, the dirty chunks, the claimed chunks and the job's
 * state: the trace spec checks that the spec reaches exactly those.
 *
 * <p>Who took a step: a guest thread names itself with {@link #guest(String)} (the simulator,
 * which runs every actor on one thread, sets the acting guest before each guest operation, and
 * clears it for the job's tasks); any other step is the job's (a copy, a task, a command).
 *
 * <p>A test that stages an interleaving on real threads can watch the steps as they happen
 * ({@link #afterEachStep}) and hold the thread that took one.
 *
 * <p>Threading: any thread may take steps; {@link #events()} and {@link #toTlaModule} read a
 * consistent copy.
 */
public final class MirrorTraceRecorder implements MirrorTrace {

    /** One recorded step, in the spec's terms (chunks counted from 1). */
    public record Event(String step, String guest, int copy, String kind, int c1, int h1, int c2, int h2,
            int ok, long a, int chunk, long dirty, long claimed, String state) {
    }

    private final ReentrantLock lock = new ReentrantLock();
    private final ThreadLocal<String> threadGuest = new ThreadLocal<>();
    private final List<Event> events = new ArrayList<>();
    private MirrorJob job;
    private long size;
    private int granularity;
    private int depth;       // guarded by lock
    private String simGuest; // set by a single-threaded driver; guarded by lock's owner
    private volatile Consumer<Event> afterStep;

    /** A traced job (see {@link MirrorJob#create(BlockDevice, BlockDevice, MirrorOptions, JobRuntime, MirrorTrace)}). */
    public static MirrorJob createJob(BlockDevice source, BlockDevice target, MirrorOptions options, JobRuntime runtime,
            MirrorTraceRecorder recorder) {
        MirrorJob job = MirrorJob.create(source, target, options, runtime, recorder);
        recorder.attach(job);
        return job;
    }

    private void attach(MirrorJob j) {
        if (j.bitmap().chunkCount() > 63) {
            throw new IllegalArgumentException("trace validation keeps the dirty and claimed chunks as one word: at most 63 chunks");
        }
        this.job = j;
        this.size = j.bitmap().deviceSize();
        this.granularity = j.bitmap().granularity();
    }

    /**
     * Calls {@code hook} with each event recorded from now on, on the thread that took its step,
     * right after the step and outside the recorder's lock: it may block that thread (to stage an
     * interleaving) without holding up the other threads' steps. A claim or release of a word's
     * run is one step of several events: the hook sees them all after it. Not called for a step
     * taken inside another thread's step ({@link #runNested}).
     */
    public void afterEachStep(Consumer<Event> hook) {
        afterStep = hook;
    }

    /** Names the calling thread's guest for the steps it takes from now on (null: not a guest). */
    public void guest(String id) {
        threadGuest.set(id);
    }

    /** For a driver that plays every actor on one thread: the guest that acts now (null: the job). */
    public void actingGuest(String id) {
        simGuest = id;
    }

    /**
     * Runs {@code nested} as steps of their own although the current thread is inside a step: a
     * simulator runs other actors inside a device call (before or after it takes effect), and
     * those are not part of the call's step.
     */
    public void runNested(Runnable nested) {
        int saved = depth;
        String savedGuest = simGuest;
        depth = 0;
        try {
            nested.run();
        } finally {
            depth = saved;
            simGuest = savedGuest;
        }
    }

    @Override
    public void begin() {
        lock.lock();
        depth++;
    }

    @Override
    public void end(Step step, int op, long a, long b) {
        List<Event> recorded = List.of();
        try {
            if (depth == 1 && step != Step.NONE) {
                recorded = record(step, op, a, b);
            }
        } finally {
            depth--;
            lock.unlock();
        }
        Consumer<Event> hook = afterStep;
        if (hook != null && !lock.isHeldByCurrentThread()) {
            recorded.forEach(hook);
        }
    }

    /** Records the step; returns its events (several for a claim or release of a word's run). */
    private List<Event> record(Step step, int op, long a, long b) {
        if ((step == Step.WB_CLAIM || step == Step.RELEASE) && b > 1) {
            // One CAS (or RMW) took a word's run of b chunks from a: the spec's steps for them, one
            // per chunk in ascending order with nothing between, each with the claims it leaves.
            List<Event> run = new ArrayList<>();
            for (long k = 0; k < b; k++) {
                long later = 0; // the chunks of the run after this one
                for (long c = a + k + 1; c < a + b; c++) {
                    later |= 1L << c;
                }
                long claimedNow = bits(false);
                run.add(recordOne(step, op, a + k, 0, step == Step.WB_CLAIM ? claimedNow & ~later : claimedNow | later));
            }
            return run;
        }
        return List.of(recordOne(step, op, a, b, bits(false)));
    }

    /** One step; {@code claimed}: the claimed chunks to record after it. */
    private Event recordOne(Step step, int op, long a, long b, long claimed) {
        String g = simGuest != null ? simGuest : threadGuest.get();
        String kind = "write";
        int c1 = 1;
        int h1 = 1;
        int c2 = 1;
        int h2 = 2;
        int ok = 0;
        long arg = a;
        int chunk = 0;
        int copy = 0;
        switch (step) {
            case FAST_PATH, GATE_ENTER, GATE_HELD, GUEST_IO -> {
                kind = op == OP_DISCARD ? "discard" : (op == OP_READ || op == OP_FLUSH) ? "read" : "write";
                if (!kind.equals("read") && b > 0) {
                    long end = a + b;
                    c1 = (int) (a / granularity) + 1;
                    c2 = (int) ((end - 1) / granularity) + 1;
                    h1 = a % granularity == 0 ? 1 : 2;
                    h2 = end % granularity == 0 || end == size ? 2 : 1;
                    if (c1 == c2 && h1 == 2 && h2 == 1) {
                        h1 = 1; // inside one chunk, touching neither end: a part of it
                        h2 = 1;
                    }
                }
                arg = 0;
            }
            case BG_SOURCE, WB_SOURCE, WB_TARGET, FINISH_FLUSH -> {
                ok = op;
                arg = 0;
            }
            case WB_CLAIM, RELEASE -> {
                chunk = (int) a + 1;
                arg = 0;
            }
            case COPY_READ, COPY_WRITE -> {
                ok = op;
                copy = (int) a + 1;
                arg = 0;
            }
            case COPY_MARK -> {
                copy = (int) a + 1;
                arg = 0;
            }
            case COPY_FINISHED -> {
                ok = op;
                copy = (int) a + 1;
                arg = 0;
            }
            case GUEST_TARGET_ERROR -> {
                ok = op;
                arg = 0;
            }
            default -> {
            }
        }
        Event e = new Event(step.name(), g == null ? "none" : g, copy, kind, c1, h1, c2, h2, ok, arg, chunk,
                bits(true), claimed, job.state().name().toLowerCase(Locale.ROOT));
        events.add(e);
        return e;
    }

    /** The dirty (or claimed) chunks now, chunk c as bit c (so that chunk c + 1 of the spec is bit c). */
    private long bits(boolean dirty) {
        long n = job.bitmap().chunkCount();
        long word = 0;
        for (long c = 0; c < n; c++) {
            if (dirty ? job.bitmap().isDirty(c) : job.claims().isClaimed(c)) {
                word |= 1L << c;
            }
        }
        return word;
    }

    /** The steps recorded so far. */
    public List<Event> events() {
        lock.lock();
        try {
            return List.copyOf(events);
        } finally {
            lock.unlock();
        }
    }

    /** Chunks of the traced job. */
    public int chunks() {
        return (int) job.bitmap().chunkCount();
    }

    /**
     * The trace as a TLA+ module named {@code module}: {@code Trace == << [...], ... >>}, one record
     * per step, with the same fields in every record.
     */
    public String toTlaModule(String module) {
        return toTlaModule(module, events());
    }

    /** As {@link #toTlaModule(String)}, for a given (say, mutated) list of events. */
    public static String toTlaModule(String module, List<Event> events) {
        StringBuilder b = new StringBuilder();
        b.append("---- MODULE ").append(module).append(" ----\n");
        b.append("\\* Generated by MirrorTraceRecorder: the steps of one mirror job, in order.\n");
        b.append("Trace == <<\n");
        for (int i = 0; i < events.size(); i++) {
            Event e = events.get(i);
            b.append("  [s |-> \"").append(e.step()).append("\", g |-> \"").append(e.guest())
                    .append("\", f |-> ").append(e.copy())
                    .append(", kind |-> \"").append(e.kind()).append("\", c1 |-> ").append(e.c1())
                    .append(", h1 |-> ").append(e.h1()).append(", c2 |-> ").append(e.c2())
                    .append(", h2 |-> ").append(e.h2()).append(", ok |-> ").append(e.ok())
                    .append(", a |-> ").append(e.a()).append(", c |-> ").append(e.chunk())
                    .append(", dirty |-> ").append(set(e.dirty())).append(", claimed |-> ")
                    .append(set(e.claimed())).append(", st |-> \"").append(e.state()).append("\"]")
                    .append(i + 1 < events.size() ? ",\n" : "\n");
        }
        b.append(">>\n====\n");
        return b.toString();
    }

    private static String set(long bits) {
        StringBuilder b = new StringBuilder("{");
        for (int c = 0; c < 63; c++) {
            if ((bits & (1L << c)) != 0) {
                if (b.length() > 1) {
                    b.append(", ");
                }
                b.append(c + 1);
            }
        }
        return b.append('}').toString();
    }
}
