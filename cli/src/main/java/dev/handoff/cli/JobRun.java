package dev.handoff.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.mirror.MirrorEvent;
import dev.handoff.mirror.MirrorJob;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A running mirror job as the command line sees it: its QMP job id, its events translated to QMP
 * ({@link QmpEvents}), and a fan-out of every event to sinks (the terminal, {@code --json}, the
 * control socket's clients, the auto-complete rule).
 *
 * <p>The kernel delivers events on its own threads and asks listeners not to block; the listener
 * here only translates and queues, and one dispatcher thread feeds the sinks in sequence order,
 * so a slow socket client or terminal never holds up the job. Sinks may call the job's commands.
 */
final class JobRun {

    /** Receives each event with its QMP translation, on the dispatcher thread, in order. */
    interface Sink {
        void accept(MirrorEvent event, List<ObjectNode> qmp);
    }

    private record Item(MirrorEvent event, List<ObjectNode> qmp) {
    }

    private final MirrorJob job;
    private final QmpEvents qmp;
    private final LinkedBlockingQueue<Item> queue = new LinkedBlockingQueue<>();
    private final List<Sink> sinks = new CopyOnWriteArrayList<>();
    private final CountDownLatch finalDelivered = new CountDownLatch(1);

    JobRun(MirrorJob job, String jobId) {
        this.job = job;
        this.qmp = new QmpEvents(jobId, job::progress);
        Json.warmUp(); // before the job starts: see Json.warmUp
        job.addListener(e -> queue.add(new Item(e, qmp.translate(e))));
        Thread dispatcher = new Thread(this::dispatch, "job-events");
        dispatcher.setDaemon(true);
        dispatcher.start();
    }

    MirrorJob job() {
        return job;
    }

    QmpEvents qmp() {
        return qmp;
    }

    /** Adds a sink; add them all before the job starts to see every event. */
    void addSink(Sink sink) {
        sinks.add(sink);
    }

    /**
     * Starts the job, unless a command on the control socket has already ended it: the socket is
     * up before the job starts, so a management tool can cancel a job that never started. That is
     * not an error; the job's end is reported like any other.
     */
    void start() {
        try {
            job.start();
        } catch (IllegalStateException e) {
            if (!job.state().isConcluded()) {
                throw e;
            }
        }
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
}
