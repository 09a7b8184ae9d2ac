package dev.handoff.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.mirror.MirrorEvent;
import dev.handoff.mirror.MirrorJob;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A mirror job as the command line sees it: its QMP job id, its events translated to QMP
 * ({@link QmpEvents}), and a fan-out of every event to sinks (the terminal, {@code --json}, the
 * control socket's clients, the auto-complete rule). Made by {@link JobLauncher}.
 *
 * <p>The kernel delivers events on its own threads and asks listeners not to block; the listener
 * here only translates and queues, and one dispatcher thread feeds the sinks in sequence order,
 * so a slow socket client or terminal never holds up the job. Sinks may call the job's commands.
 * The dispatcher starts with {@link #start()}, so sinks added before it see every event.
 *
 * <p>Access modes (CONTRIBUTING, "One accessor convention"): {@code dispatching} is set once by
 * {@link #casDispatching} (one dispatcher, whoever starts it first). {@code completeRequested}
 * ({@link #svCompleteRequested} by a control session, {@link #lvCompleteRequested} by another)
 * and {@code bitmapFile} ({@link #svBitmapFile} by the launcher, {@link #lvBitmapFile} by
 * {@code query-block-jobs}) are flags and immutable values read from other threads, each load
 * pairing with its store; release stores and acquire loads would do, as nothing else is published
 * through them.
 */
final class JobRun {
    private static final VarHandle DISPATCHING;
    private static final VarHandle COMPLETE_REQUESTED;
    private static final VarHandle BITMAP_FILE;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            DISPATCHING = l.findVarHandle(JobRun.class, "dispatching", boolean.class);
            COMPLETE_REQUESTED = l.findVarHandle(JobRun.class, "completeRequested", boolean.class);
            BITMAP_FILE = l.findVarHandle(JobRun.class, "bitmapFile", java.nio.file.Path.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }


    /** Receives each event with its QMP translation, on the dispatcher thread, in order. */
    interface Sink {
        /** {@code event} is null for events of the QMP job alone ({@code job-dismiss}). */
        void accept(MirrorEvent event, List<ObjectNode> qmp);
    }

    private record Item(MirrorEvent event, List<ObjectNode> qmp) {
    }

    private final MirrorJob job;
    private final QmpEvents qmp;
    private final Runnable disarmFaults;
    private final LinkedBlockingQueue<Item> queue = new LinkedBlockingQueue<>();
    private final List<Sink> sinks = new CopyOnWriteArrayList<>();
    private final CountDownLatch finalDelivered = new CountDownLatch(1);
    /* Only through the accessors below ("Access modes"). */
    private volatile boolean dispatching;
    private volatile boolean completeRequested;
    private volatile java.nio.file.Path bitmapFile;

    JobRun(MirrorJob job, String jobId) {
        this(job, jobId, () -> { }, true);
    }

    JobRun(MirrorJob job, String jobId, Runnable disarmFaults, boolean autoDismiss) {
        this.job = job;
        this.qmp = new QmpEvents(jobId, job::progress, autoDismiss);
        this.disarmFaults = disarmFaults;
        Json.warmUp(); // before the job starts: see Json.warmUp
        job.addListener(e -> queue.add(new Item(e, qmp.translate(e))));
    }

    MirrorJob job() {
        return job;
    }

    /** The job's --bitmap FILE, for query-block-jobs. */
    void bitmapFile(java.nio.file.Path file) {
        svBitmapFile(file);
    }

    java.nio.file.Path bitmapFile() {
        return lvBitmapFile();
    }

    QmpEvents qmp() {
        return qmp;
    }

    String jobId() {
        return qmp.jobId();
    }

    /** Whether a complete was accepted while paused after READY (it takes effect on resume). */
    boolean completeRequested() {
        return lvCompleteRequested();
    }

    void noteCompleteRequested() {
        svCompleteRequested();
    }

    /** Stops the faults of {@code --inject-target-errors}, if any. */
    void disarmFaults() {
        disarmFaults.run();
    }

    /** Adds a sink; add them all before {@link #start()} to see every event. */
    void addSink(Sink sink) {
        sinks.add(sink);
    }

    /**
     * Starts delivering events, then the job, unless a command on the control socket has already
     * ended it: the socket is up before the job starts, so a management tool can cancel a job that
     * never started. That is not an error; the job's end is reported like any other.
     */
    void start() {
        startDispatcher();
        try {
            job.start();
        } catch (IllegalStateException e) {
            if (!job.state().isConcluded()) {
                throw e;
            }
        }
    }

    /** Starts delivering events without starting the job (a job ended before it ran). */
    void startDispatcher() {
        if (casDispatching(false, true)) {
            Thread dispatcher = new Thread(this::dispatch, "job-events");
            dispatcher.setDaemon(true);
            dispatcher.start();
        }
    }

    /**
     * job-dismiss: a concluded job leaves the QMP list; its {@code null} status goes to the sinks
     * after every earlier event. Returns false if the job is not concluded.
     */
    boolean dismiss() {
        List<ObjectNode> events = qmp.dismiss();
        if (events == null) {
            return false;
        }
        queue.add(new Item(null, events));
        return true;
    }

    /** Waits until the job's final event has reached every sink. */
    boolean awaitDelivered(Duration timeout) throws InterruptedException {
        return finalDelivered.await(timeout.toNanos(), TimeUnit.NANOSECONDS);
    }

    private void dispatch() {
        while (true) {
            Item item;
            try {
                item = queue.take();
            } catch (InterruptedException e) {
                return;
            }
            for (Sink s : sinks) {
                try {
                    s.accept(item.event(), item.qmp());
                } catch (RuntimeException e) {
                    System.err.println("handoff: event handler failed on " + item.event() + ": " + e);
                }
            }
            MirrorEvent e = item.event();
            if (e instanceof MirrorEvent.Completed || e instanceof MirrorEvent.Cancelled
                    || e instanceof MirrorEvent.Failed) {
                finalDelivered.countDown();
            }
        }
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private boolean casDispatching(boolean expected, boolean next) {
        return DISPATCHING.compareAndSet(this, expected, next); // one dispatcher
    }

    private boolean lvCompleteRequested() {
        return (boolean) COMPLETE_REQUESTED.getVolatile(this); // pairs with svCompleteRequested
    }

    private void svCompleteRequested() {
        COMPLETE_REQUESTED.setVolatile(this, true); // a control session; a release would do
    }

    private java.nio.file.Path lvBitmapFile() {
        return (java.nio.file.Path) BITMAP_FILE.getVolatile(this); // pairs with svBitmapFile
    }

    private void svBitmapFile(java.nio.file.Path file) {
        BITMAP_FILE.setVolatile(this, file); // the launcher, once; a release would do
    }
}
