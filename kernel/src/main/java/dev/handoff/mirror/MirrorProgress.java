package dev.handoff.mirror;

/**
 * A snapshot of a job's progress, QEMU style: {@code offset} counts bytes copied and never goes
 * down; {@code length} is {@code offset + dirtyBytes + bytesInFlight}, so {@code offset == length}
 * means nothing is left to copy at this instant.
 *
 * @param state          the job's state
 * @param ready          whether READY has been reached (it stays true through errors and pauses)
 * @param offset         bytes copied so far (monotone)
 * @param length         {@code offset} plus the bytes still dirty or in flight
 * @param dirtyBytes     bytes in dirty chunks
 * @param bytesInFlight  bytes being copied now
 * @param activelySynced write-blocking mode, READY, and no error since the target last converged
 * @param errorCount     errors seen (each also sent as an ERROR event)
 * @param speed          the speed limit in bytes per second (0 = unlimited)
 * @param copyMode       the current copy mode
 */
public record MirrorProgress(JobState state, boolean ready, long offset, long length, long dirtyBytes,
        long bytesInFlight, boolean activelySynced, long errorCount, long speed, CopyMode copyMode) {
}
