package dev.handoff.mirror;

/**
 * The mirror's chunk claims ({@link InFlightChunks}) on their own, outside a job, published in the
 * kernel's test-jar for checks that race them directly (the Lincheck wake-up tests of
 * {@code stress/}): a table of {@code chunkCount} chunks, each claimed by at most one holder. Each
 * method is the kernel method of the same name, unchanged; a job's own claims are reached through
 * {@link MirrorProbe} instead.
 *
 * <p>Threading: as {@link InFlightChunks}: every method from any thread.
 */
public final class StandaloneClaims {
    private final InFlightChunks claims;

    /** A table of {@code chunkCount} unclaimed chunks. */
    public StandaloneClaims(long chunkCount) {
        this.claims = new InFlightChunks(chunkCount);
    }

    /** A copier's claim of {@code chunk}: never waits; false if it is held. */
    public boolean tryClaim(long chunk) {
        return claims.tryClaim(chunk);
    }

    /** A write-blocking guest's claim of chunks {@code [first, last]}: ascending, waiting for held ones. */
    public void claim(long first, long last) {
        claims.claim(first, last);
    }

    /** Releases chunks {@code [first, last]} and wakes whoever waits for one of them. */
    public void release(long first, long last) {
        claims.release(first, last);
    }

    /** Whether {@code chunk} is claimed now. */
    public boolean isClaimed(long chunk) {
        return claims.isClaimed(chunk);
    }

    /** Whether any chunk of {@code [first, last]} is claimed now. */
    public boolean anyClaimed(long first, long last) {
        return claims.anyClaimed(first, last);
    }
}
