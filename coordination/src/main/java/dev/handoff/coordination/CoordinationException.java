package dev.handoff.coordination;

import dev.handoff.device.DeviceException;

/**
 * The coordination service refused or could not serve an ownership operation, for a reason the
 * caller acts on ({@link #reason()}): the ensemble cannot be reached, the PATH belongs to another
 * image, or the session that held the image's lock was lost. Nothing was written to the image,
 * and the ownership record was left as it was.
 */
public final class CoordinationException extends DeviceException {
    private static final long serialVersionUID = 1L;

    /** Why. */
    public enum Reason {
        /** No server of the ensemble answered in time. */
        UNREACHABLE,
        /** The PATH znode names another image (another name or size). */
        WRONG_IMAGE,
        /** The ZooKeeper session that held the lock expired or was closed: the holder is fenced. */
        SESSION_LOST
    }

    private final Reason reason;

    public CoordinationException(Reason reason, String message) {
        super(reason == Reason.SESSION_LOST ? Kind.FENCED : Kind.IO_ERROR, message);
        this.reason = reason;
    }

    public CoordinationException(Reason reason, String message, Throwable cause) {
        super(reason == Reason.SESSION_LOST ? Kind.FENCED : Kind.IO_ERROR, message, cause);
        this.reason = reason;
    }

    /** Why the operation failed. */
    public Reason reason() {
        return reason;
    }
}
