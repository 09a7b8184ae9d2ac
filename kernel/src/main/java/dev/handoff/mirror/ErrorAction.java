package dev.handoff.mirror;

/** What the job did about an error, as reported in {@link MirrorEvent.Error}. */
public enum ErrorAction {
    /** The job failed. */
    REPORT,
    /** The chunk stays dirty and will be retried. */
    IGNORE,
    /** The job paused. */
    STOP
}
