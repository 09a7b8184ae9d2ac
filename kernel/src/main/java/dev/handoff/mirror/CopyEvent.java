package dev.handoff.mirror;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;
import jdk.jfr.Timespan;

/**
 * JFR event: one copy of a run of chunks by the copier, from its source read to its release
 * (DESIGN §3.2's steps 3–5). Its duration is the whole copy; {@link #readTime} and
 * {@link #writeTime} split it into the source read (holes zero-filled) and the target write.
 *
 * <p>Zero cost when no recording takes it: callers ask {@link RecorderGate} first, so that without a
 * recording this class is not even loaded; then {@link #startIfRecording} asks a shared probe whether
 * the event type is enabled (a static field read once JFR has instrumented the class; a constant
 * {@code false} before) and returns null otherwise, so a copy allocates and times nothing. An
 * instance belongs to one {@link CopyOperation}, whose steps hand it over through the job's
 * runtime (happens-before), like the operation's own fields.
 */
@Name("dev.handoff.Copy")
@Label("Mirror Copy")
@Category({"Handoff", "Mirror"})
@Description("One copy of a run of dirty chunks, source to target")
@StackTrace(false)
final class CopyEvent extends Event {
    /** Never committed: asked only whether the type is enabled ({@link Event#isEnabled} reads no instance state). */
    private static final CopyEvent PROBE = new CopyEvent();

    @Label("Offset")
    @DataAmount
    long offset;

    @Label("Length")
    @DataAmount
    int length;

    @Label("Read Time")
    @Description("Reading the source (holes are zero-filled, not read)")
    @Timespan
    long readTime;

    @Label("Write Time")
    @Description("Writing the target (data, write-zeroes, or nothing where the target reads as zeroes)")
    @Timespan
    long writeTime;

    @Label("Zero Chunks Skipped")
    boolean zeroSkipped;

    @Label("Failed Side")
    @Description("SOURCE or TARGET if the copy failed (its chunks are dirty again), null otherwise")
    String failedSide;

    private transient long mark;

    /** A started event if a recording takes this type, else null (nothing allocated). */
    static CopyEvent startIfRecording() {
        if (!PROBE.isEnabled()) {
            return null;
        }
        CopyEvent e = new CopyEvent();
        e.begin();
        e.mark = System.nanoTime();
        return e;
    }

    /** The source read is done (or failed). */
    void readDone() {
        long now = System.nanoTime();
        readTime = now - mark;
        mark = now;
    }

    /** The target write is done (or failed). */
    void writeDone() {
        writeTime = System.nanoTime() - mark;
    }

    /** Ends and commits the event for a copy of {@code length} bytes at {@code offset}. */
    void finish(long offset, int length, boolean zeroSkipped, MirrorEvent.Side failedSide) {
        end();
        if (shouldCommit()) {
            this.offset = offset;
            this.length = length;
            this.zeroSkipped = zeroSkipped;
            this.failedSide = failedSide == null ? null : failedSide.name();
            commit();
        }
    }
}
