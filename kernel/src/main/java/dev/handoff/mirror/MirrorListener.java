package dev.handoff.mirror;

/**
 * Receives a job's events in sequence order, one at a time, on whichever kernel thread delivers
 * them. Must not block for long; may call the job's commands. An exception thrown by a listener
 * is logged and otherwise ignored.
 */
@FunctionalInterface
public interface MirrorListener {
    void onEvent(MirrorEvent event);
}
