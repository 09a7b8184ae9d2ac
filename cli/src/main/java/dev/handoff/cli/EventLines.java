package dev.handoff.cli;

import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorEvent;
import java.util.Locale;

/** One human line per job event worth a line (state changes the progress view already shows are skipped). */
final class EventLines {
    private EventLines() {
    }

    /** The line for {@code event}, or null. */
    static String describe(MirrorEvent event) {
        if (event instanceof MirrorEvent.StateChanged s) {
            switch (s.to()) {
                case PAUSED:
                    return "PAUSED (was " + s.from() + "): no new copies; writes are tracked meanwhile";
                case RUNNING:
                case READY:
                    return s.from() == JobState.PAUSED ? "RESUMED: " + s.to() : null;
                case COMPLETING:
                    return "COMPLETING: holding new guest writes, copying what is still dirty, flushing the target";
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
            return "COMPLETED" + (c.pivoted() ? " (pivot: guest I/O now goes to the target)" : " (no pivot)")
                    + ": " + Sizes.format(c.offset()) + " copied";
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
