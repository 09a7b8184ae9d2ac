package dev.handoff.mirror;

/**
 * The job's lifecycle:
 * <pre>
 *   CREATED ─start→ RUNNING ─(in sync)→ READY ─complete→ COMPLETING ─→ COMPLETED (pivoted)
 *                      │                  └──cancel──→ CANCELLING ─→ COMPLETED (not pivoted)
 *                      └────cancel──→ CANCELLING ─→ CANCELLED
 *   RUNNING, READY ⇄ PAUSED (pause/resume, or a STOP error policy)
 *   auto-finalize off: COMPLETING, CANCELLING after READY ─→ PENDING ─finalizeJob→ COMPLETED; ─cancel→ CANCELLED
 *   any state but a concluded one ─error with REPORT→ FAILED;  ─cancel(force)→ CANCELLED
 * </pre>
 */
public enum JobState {
    CREATED, RUNNING, READY, PAUSED, COMPLETING, CANCELLING,
    /** Drained and flushed, the guest held, waiting for {@link MirrorJob#finalizeJob()} (auto-finalize off). */
    PENDING,
    COMPLETED, CANCELLED, FAILED;

    /** Whether the job has ended; no command is accepted any more. */
    public boolean isConcluded() {
        return this == COMPLETED || this == CANCELLED || this == FAILED;
    }
}
