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
 * JFR event: one guest write on the write-blocking path of {@link MirrorFilter} (DESIGN §3.3),
 * from its claim to its release. The duration is what the write took inside the job; it splits
 * into the wait for the claim (a copy of one of its chunks in flight, or another write-blocking
 * write to it), the source write and the target write.
 *
 * <p>Zero cost when no recording takes it: as {@link CopyEvent}, {@link RecorderGate} (so that
 * without a recording this class is not loaded) and then a shared probe answer whether the type
 * is enabled, and the guest path allocates and times nothing otherwise (a static load or two and
 * a never-taken branch). An instance is confined to the guest thread that started it.
 */
@Name("dev.handoff.WriteBlockingWrite")
@Label("Write-Blocking Guest Write")
@Category({"Handoff", "Mirror"})
@Description("A guest write that went to source and target before it returned")
@StackTrace(false)
final class WriteBlockingEvent extends Event {
    /** Never committed: asked only whether the type is enabled. */
    private static final WriteBlockingEvent PROBE = new WriteBlockingEvent();

    @Label("Offset")
    @DataAmount
    long offset;

    @Label("Length")
    @DataAmount
    long length;

    @Label("Claim Wait")
    @Description("Waiting for the chunks' claim: a copy or another write-blocking write held one of them")
    @Timespan
    long claimWait;

    @Label("Source Time")
    @Timespan
    long sourceTime;

    @Label("Target Time")
    @Description("From the source write's end to the release: the target write (or, after a failure, marking the chunks dirty again)")
    @Timespan
    long targetTime;

    @Label("Cleared Chunks")
    @Description("Whether the write covered a dirty chunk whole and so cleared it")
    boolean cleared;

    @Label("Failed")
    @Description("Whether the source or the target write failed")
    boolean failed;

    private transient long mark;

    /** A started event if a recording takes this type, else null (nothing allocated). */
    static WriteBlockingEvent startIfRecording() {
        if (!PROBE.isEnabled()) {
            return null;
        }
        WriteBlockingEvent e = new WriteBlockingEvent();
        e.begin();
        e.mark = System.nanoTime();
        return e;
    }

    void claimed() {
        long now = System.nanoTime();
        claimWait = now - mark;
        mark = now;
    }

    void sourceWritten() {
        long now = System.nanoTime();
        sourceTime = now - mark;
        mark = now;
    }

    void targetWritten() {
        targetTime = System.nanoTime() - mark;
    }

    void finish(long offset, long length, boolean cleared, boolean failed) {
        end();
        if (shouldCommit()) {
            this.offset = offset;
            this.length = length;
            this.cleared = cleared;
            this.failed = failed;
            commit();
        }
    }
}
