package dev.handoff.ownership;

/**
 * Deliberate protocol bugs, one per ownership check, so that the tests can show each check
 * catches the bug it exists for (see {@code BrokenVariantTest}). Reachable only through the
 * package-private {@link OwnedImage#assemble} factory; the public factories always use
 * {@link #NONE}.
 */
enum Flaw {
    /** The correct protocol. */
    NONE,
    /** Inactivation skips the device flush: acknowledged writes may not survive the handoff. */
    INACTIVATE_WITHOUT_FLUSH,
    /** Inactivation does not wait for in-flight writes: a write lands after the flush. */
    INACTIVATE_WITHOUT_DRAIN,
    /**
     * Activation keeps the header cache filled before another owner's writes. (The record is
     * re-read regardless: the epoch compare needs it.)
     */
    ACTIVATE_WITHOUT_DROPPING_CACHES,
    /**
     * Activation writes its epoch without comparing the record with the epoch it read: two
     * activations whose locks failed both win.
     */
    BUMP_WITHOUT_COMPARE,
    /** Activation does not take the ownership lock: two holders can be active at once. */
    ACTIVATE_WITHOUT_LOCK,
    /** Closing an inactive handle marks the record clean: a write by a non-owner. */
    CLOSE_INACTIVE_WRITES_RECORD,
    /** Writes are not refused while inactive. */
    INACTIVE_ACCEPTS_WRITES,
    /** Writes and flushes ignore a newer epoch in the record. */
    WRITE_WITHOUT_FENCING_CHECK,
    /** acceptHandoff/abortHandoff do not compare the record's epoch with the token. */
    HANDOFF_WITHOUT_EPOCH_CHECK
}
