package dev.handoff.mirror;

/** Which chunks the job starts with dirty. */
public enum SyncMode {
    /** Every chunk: the target becomes a full copy of the source. */
    FULL,
    /** None: only chunks the guest writes after the job is created are copied. */
    NONE
}
