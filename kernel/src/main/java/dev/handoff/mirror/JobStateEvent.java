package dev.handoff.mirror;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/**
 * JFR event: a mirror job's state change (the {@link MirrorEvent.StateChanged} it emits), so a
 * recording's copies and guest writes can be cut at RUNNING, READY, COMPLETING and the end.
 * Committed by the job under its lock, a few times per job, once {@link RecorderGate} says a
 * recording exists: no probe needed, and nothing is written when no recording takes the type
 * ({@link Event#shouldCommit} is false).
 */
@Name("dev.handoff.JobState")
@Label("Mirror Job State")
@Category({"Handoff", "Mirror"})
@Description("A mirror job changed state")
@StackTrace(false)
final class JobStateEvent extends Event {
    @Label("Job")
    @Description("The job's identity hash, to tell jobs of one process apart")
    int job;

    @Label("From")
    String from;

    @Label("To")
    String to;

    @Label("Copied")
    @DataAmount
    long copied;

    @Label("Dirty")
    @DataAmount
    long dirty;

    static void emit(Object job, JobState from, JobState to, long copied, long dirty) {
        JobStateEvent e = new JobStateEvent();
        if (e.shouldCommit()) {
            e.job = System.identityHashCode(job);
            e.from = from.name();
            e.to = to.name();
            e.copied = copied;
            e.dirty = dirty;
            e.commit();
        }
    }
}
