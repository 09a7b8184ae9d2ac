package dev.handoff.mirror;

import dev.handoff.device.DeviceException;

/** What the job does when a source read or a target write fails. */
public enum ErrorPolicy {
    /** The job fails with an ERROR event. The default. */
    REPORT,
    /** The chunk stays dirty and is retried later (with back-off); nothing is corrupted. */
    IGNORE,
    /** The job pauses with an ERROR event until resumed; the chunk stays dirty. */
    STOP,
    /** Stop on {@link DeviceException.Kind#NO_SPACE}, report anything else. */
    ENOSPC;

    /** The action this policy takes for a failure of {@code kind}. */
    public ErrorAction actionFor(DeviceException.Kind kind) {
        switch (this) {
            case IGNORE:
                return ErrorAction.IGNORE;
            case STOP:
                return ErrorAction.STOP;
            case ENOSPC:
                return kind == DeviceException.Kind.NO_SPACE ? ErrorAction.STOP : ErrorAction.REPORT;
            default:
                return ErrorAction.REPORT;
        }
    }
}
