package dev.handoff.cli;

import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorEvent;
import java.util.Locale;

/** One human line per job event worth a line (state changes the progress view already shows are skipped). */
final class EventLines {
    private EventLines() {
    }

    /** The line for {@code event}, or null; a pivot is described as the guest moving to the target. */
    static String describe(MirrorEvent event) {
        return describe(event, true);
    }

    /**
     * The line for {@code event}, or null. Without a guest ({@code handoff mirror} copies an image
     * no one writes through the job) a completion is only a copy: no one's I/O moved anywhere.
     */
    static String describe(MirrorEvent event, boolean hasGuest) {
        if (event == null) {
            return null;
        }
        if (event instanceof MirrorEvent.StateChanged s) {
            switch (s.to()) {
                case PAUSED:
                    return "PAUSED (was " + s.from() + "): no new copies; writes are tracked meanwhile";
                case RUNNING:
                case READY:
                    return s.from() == JobState.PAUSED ? "RESUMED: " + s.to() : null;
                case COMPLETING:
                    return hasGuest ? "COMPLETING: holding new guest writes, copying what is still dirty, flushing the target"
                            : "COMPLETING: flushing the target";
                case PENDING:
                    return "PENDING: drained and flushed" + (hasGuest ? ", guest writes held" : "")
                            + "; waiting for job-finalize";
                case CANCELLING:
                    return "CANCELLING";
                default:
                    return null;
            }
        }
        if (event instanceof MirrorEvent.Ready r) {
            return "READY: " + Sizes.format(r.offset()) + " copied; the target is in sync and stays in sync";
        }
        if (event instanceof MirrorEvent.Completed c) {
            String how = !c.pivoted() ? " (no pivot)" : hasGuest ? " (pivot: guest I/O now goes to the target)" : "";
            return "COMPLETED" + how + ": " + Sizes.format(c.offset()) + " copied";
        }
        if (event instanceof MirrorEvent.Cancelled c) {
            return "CANCELLED after " + Sizes.format(c.offset()) + " copied";
        }
        if (event instanceof MirrorEvent.Failed f) {
            return "FAILED: " + f.reason();
        }
        if (event instanceof MirrorEvent.Error e) {
            return "ERROR " + e.side().name().toLowerCase(Locale.ROOT) + " " + e.operation().name().toLowerCase(Locale.ROOT)
                    .replace('_', '-') + " at " + e.offset() + "+" + e.length() + ": "
                    + (e.cause() != null ? e.cause().getMessage() : "?") + " -> " + e.action().name().toLowerCase(Locale.ROOT);
        }
        return null;
    }
}
