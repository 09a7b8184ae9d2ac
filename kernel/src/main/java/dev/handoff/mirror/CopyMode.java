package dev.handoff.mirror;

/** How guest writes reach the target while the job runs. */
public enum CopyMode {
    /**
     * Guest writes go to the source and mark their chunks dirty; the copier copies them later.
     * Converges only if the copier outruns the guest.
     */
    BACKGROUND,
    /**
     * Active mirroring: a guest write goes to the source and then to the target before it
     * returns, ordered with any copy of the same chunk. Converges whatever the guest's write rate.
     */
    WRITE_BLOCKING
}
