package dev.handoff.properties.mirror;

import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.SteppingRuntime;
import dev.handoff.mirror.SyncMode;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * An independent model of what a management tool reads from a mirror job (QEMU's
 * {@code query-block-jobs}: {@code offset}, {@code len}, the dirty bytes, the bytes in flight,
 * {@code ready}, {@code actively-synced}, {@code speed}, the copy mode) and of where each guest
 * operation must go, kept by {@link MirrorSimulation} from its own observations: the commands it
 * issued and the table's answer, the events, the faults it injected, the copies it saw queued in
 * its runtime and the task it ran. It never reads the kernel's counters, its bitmap or its
 * routing; it states DESIGN's rules over those observations:
 *
 * <ul>
 *   <li><b>Dirty chunks</b> (DESIGN §2.2, §3): {@code start()} with sync FULL makes every chunk
 *       dirty; a guest write or discard on the background path marks the chunks it touches, also
 *       when it fails (§3.1); a write-blocking write clears the chunks it covers completely and
 *       leaves a chunk it covers in part as it was, or marks every chunk it touches if its source
 *       or target write failed (§3.4); a copy clears its chunks when it is issued (§3.2: claim,
 *       then clear), and a copy that failed marks them again (§2.7). After the job concluded,
 *       nothing marks.</li>
 *   <li><b>offset</b>: the bytes of the copies that finished without a fault (QEMU: bytes copied,
 *       never going down); <b>bytes in flight</b>: the bytes of the copies queued in the runtime;
 *       <b>len</b>: offset + dirty bytes + bytes in flight.</li>
 *   <li><b>ready</b>: READY was announced (it stays true through errors and pauses);
 *       <b>speed</b> and the <b>copy mode</b>: the options', then the last accepted command's.</li>
 *   <li><b>actively-synced</b> (DESIGN §2.8): may be true only in write-blocking mode, once READY,
 *       while guest writes go through to the target, when the job was seen converged (nothing
 *       dirty, nothing in flight) after the last ERROR event; must be true once a task of the job
 *       ended with all of that holding and no error during it (every task judges convergence at
 *       its end).</li>
 *   <li><b>Route of a guest operation</b> (DESIGN §2.4–§2.6): while the job runs, reads and flushes go
 *       to the source; writes go to the source, and on to the target on the write-through path
 *       (write-blocking mode; RUNNING, READY, COMPLETING, or CANCELLING in a drain; not while the
 *       job is ending in a forced cancel or a failure; never a discard). After the final event
 *       everything goes to the target if the job pivoted, to the source otherwise, and the job
 *       itself touches neither device again.</li>
 * </ul>
 *
 * <p>Not thread-safe: the simulator's thread only.
 */
final class JobModel {
    /** Which device a guest operation reached, in order: 'S' source, 'T' target. */
    static final char SOURCE = 'S';
    static final char TARGET = 'T';

    private final long size;
    private final int granularity;
    private final boolean[] dirty;
    /** Copies in flight (issued, not finished), by identity, as the simulator saw them queued. */
    private final Map<SteppingRuntime.Copy, Boolean> inFlight = new HashMap<>();
    private long offset;
    private long speed;
    private CopyMode mode;
    private boolean readyAnnounced;
    private boolean syncAllowed;
    private boolean syncRequired;

    JobModel(MirrorScenario.Config config) {
        this.size = config.size();
        this.granularity = config.granularity();
        this.dirty = new boolean[(int) ((size + granularity - 1) / granularity)];
        this.speed = config.speed();
        this.mode = config.copyMode();
    }

    /* ---- Inputs ---- */

    /** An accepted start(): with sync FULL every chunk is dirty (the copies it issues are seen next). */
    void started(SyncMode sync) {
        if (sync == SyncMode.FULL) {
            java.util.Arrays.fill(dirty, true);
        }
    }

    void speedSet(long bytesPerSecond) {
        speed = bytesPerSecond;
    }

    void writeBlockingSet() {
        mode = CopyMode.WRITE_BLOCKING;
    }

    void readyAnnounced() {
        readyAnnounced = true;
    }

    /** A guest write or discard on the background path, or a write-through that failed: its chunks are dirty. */
    void marked(long off, long len) {
        for (long c = off / granularity; c <= (off + len - 1) / granularity; c++) {
            dirty[(int) c] = true;
        }
    }

    /** A write-through that succeeded: the chunks it covers completely are clean, the others as they were. */
    void wroteThrough(long off, long len) {
        for (long c = off / granularity; c <= (off + len - 1) / granularity; c++) {
            long from = c * granularity;
            long to = Math.min(size, from + granularity);
            if (off <= from && off + len >= to) {
                dirty[(int) c] = false;
            }
        }
    }

    /**
     * The copies in flight now (queued, or the one running); {@code ran} is the copy whose step the
     * simulator just ran (or null), {@code ranFailed} whether a fault hit that step. A copy new in
     * the list was issued: its chunks are clean. A copy gone from it finished: it must be
     * {@code ran}; its bytes count as copied, or, if it failed, its chunks are dirty again.
     * Returns a description of what does not fit, or null.
     */
    String copies(List<SteppingRuntime.Copy> now, SteppingRuntime.Copy ran, boolean ranFailed) {
        Map<SteppingRuntime.Copy, Boolean> seen = new HashMap<>();
        for (SteppingRuntime.Copy op : now) {
            seen.put(op, Boolean.TRUE);
            if (inFlight.put(op, Boolean.TRUE) == null) {
                for (long c = op.firstChunk(); c <= op.lastChunk(); c++) {
                    dirty[(int) c] = false;
                }
            }
        }
        String misfit = null;
        for (SteppingRuntime.Copy op : new ArrayList<>(inFlight.keySet())) {
            if (seen.containsKey(op)) {
                continue;
            }
            inFlight.remove(op);
            if (!op.equals(ran)) {
                misfit = "the copy of chunks " + op.firstChunk() + ".." + op.lastChunk() + " left the runtime without running";
                continue;
            }
            if (ranFailed) {
                for (long c = op.firstChunk(); c <= op.lastChunk(); c++) {
                    dirty[(int) c] = true;
                }
            } else {
                offset += op.length();
            }
        }
        return misfit;
    }

    /**
     * Where a task or command ended (every one judges convergence at its end): {@code task} whether
     * it was a task of the job, {@code error} whether an ERROR event came during it, {@code syncing}
     * whether guest writes go through to the target now (see {@link #writesThrough}).
     */
    void ended(boolean task, boolean error, boolean syncing) {
        if (error || !syncing) {
            syncAllowed = false;
            syncRequired = false;
            return;
        }
        if (converged() && readyAnnounced && mode == CopyMode.WRITE_BLOCKING) {
            syncAllowed = true;
            if (task) {
                syncRequired = true;
            }
        }
    }

    /** An ERROR event, or guest writes stopped going through to the target: not actively synced. */
    void unsynced() {
        syncAllowed = false;
        syncRequired = false;
    }

    /* ---- Predictions ---- */

    /**
     * Whether a guest write entering now takes the write-through path: write-blocking mode, a state
     * that mirrors writes synchronously (CANCELLING only in the drain of a cancel after READY), and
     * the job not ending in a cancel before READY, a forced cancel or a failure ({@code abandoning}).
     */
    boolean writesThrough(JobState state, boolean abandoning) {
        return mode == CopyMode.WRITE_BLOCKING && !abandoning && (state == JobState.RUNNING
                || state == JobState.READY || state == JobState.COMPLETING || state == JobState.CANCELLING);
    }

    /**
     * The devices a guest operation must reach, in order: after the final event only the one it
     * ended on; before, reads and flushes the source, writes the source and then (write-through)
     * the target, unless the source write failed.
     */
    static String route(boolean write, boolean concluded, boolean pivoted, boolean writeThrough,
            boolean sourceFailed) {
        if (concluded) {
            return String.valueOf(pivoted ? TARGET : SOURCE);
        }
        if (write && writeThrough && !sourceFailed) {
            return "" + SOURCE + TARGET;
        }
        return String.valueOf(SOURCE);
    }

    long offset() {
        return offset;
    }

    long inFlightBytes() {
        long n = 0;
        for (SteppingRuntime.Copy op : inFlight.keySet()) {
            n += op.length();
        }
        return n;
    }

    long dirtyBytes() {
        long n = 0;
        for (int c = 0; c < dirty.length; c++) {
            if (dirty[c]) {
                n += Math.min(size, (long) (c + 1) * granularity) - (long) c * granularity;
            }
        }
        return n;
    }

    long length() {
        return offset + dirtyBytes() + inFlightBytes();
    }

    boolean converged() {
        if (!inFlight.isEmpty()) {
            return false;
        }
        for (boolean d : dirty) {
            if (d) {
                return false;
            }
        }
        return true;
    }

    long speed() {
        return speed;
    }

    CopyMode mode() {
        return mode;
    }

    boolean ready() {
        return readyAnnounced;
    }

    /** Whether actively-synced may be true now. */
    boolean syncAllowed() {
        return syncAllowed;
    }

    /** Whether actively-synced must be true now. */
    boolean syncRequired() {
        return syncRequired;
    }
}
