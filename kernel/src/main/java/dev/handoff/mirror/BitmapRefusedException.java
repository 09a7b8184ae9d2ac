package dev.handoff.mirror;

import java.util.Objects;

/**
 * A persistent write-intent bitmap that cannot be used for the images given, and why. Nothing was
 * changed: neither the bitmap file nor the images. The {@link Reason}, not the message, is the
 * contract (the CLI maps it to an exit code).
 */
public final class BitmapRefusedException extends Exception {
    private static final long serialVersionUID = 1L;

    /** Why a bitmap was refused. */
    public enum Reason {
        /** Not a bitmap, or damaged: bad magic, checksum, layout or length. */
        CORRUPT,
        /** Written by a newer format version than this kernel reads. */
        UNSUPPORTED_VERSION,
        /** It belongs to other images (sizes or identities differ). */
        FOREIGN,
        /** Its job stopped cleanly and an image changed since: the bits no longer say what differs. */
        STALE,
        /** Another live process (or handle) has it open. */
        LOCKED
    }

    private final Reason reason;

    public BitmapRefusedException(Reason reason, String message) {
        super(message);
        this.reason = Objects.requireNonNull(reason, "reason");
    }

    public Reason reason() {
        return reason;
    }
}
