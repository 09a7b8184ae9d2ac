package dev.handoff.nbd;

import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.MirrorJob;
import java.time.Duration;

/** Waiting for READY while a guest writes as fast as it can. */
final class Converge {
    /** How long the background copy gets to catch up with the guest on its own. */
    private static final Duration BACKGROUND_GRACE = Duration.ofSeconds(5);

    private Converge() {
    }

    /**
     * Whether {@code job} became READY within {@code wait}. In background mode READY is not
     * guaranteed while an unthrottled guest dirties chunks faster than the copier copies them (on
     * a loaded machine it often does); after a grace period this switches to write-blocking, as a
     * QEMU user does with {@code block-job-change}, which converges whatever the guest does.
     */
    static boolean awaitReady(MirrorJob job, Duration wait) throws InterruptedException {
        if (job.awaitReady(BACKGROUND_GRACE)) {
            return true;
        }
        try {
            job.setCopyMode(CopyMode.WRITE_BLOCKING);
        } catch (IllegalStateException concluded) {
            return job.awaitReady(Duration.ZERO);
        }
        return job.awaitReady(wait);
    }
}
