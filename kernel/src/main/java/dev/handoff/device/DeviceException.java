package dev.handoff.device;

import java.io.IOException;

/**
 * A failed device operation, with a {@link Kind} that callers and error policies act on.
 *
 * <p>The kind, not the message, is the contract: the mirror's {@code ENOSPC} policy stops on
 * {@link Kind#NO_SPACE} only, and an embedder maps kinds to its own protocol's errors (NBD's
 * {@code EIO}, {@code ENOSPC}, {@code EPERM}, ...).
 */
public class DeviceException extends IOException {
    private static final long serialVersionUID = 1L;

    /** What went wrong, independent of the device that reports it. */
    public enum Kind {
        /** The medium or the transport failed; the operation may have been partly applied. */
        IO_ERROR,
        /** The device is out of space; nothing past the failure point was written. */
        NO_SPACE,
        /** The device, or this handle to it, does not accept writes. */
        READ_ONLY,
        /** The byte range is not inside the device; nothing was touched. */
        OUT_OF_RANGE,
        /** The device was closed. */
        CLOSED,
        /** The image is held inactive: another owner may be writing it. */
        INACTIVE,
        /**
         * The image was taken over by a newer owner (a higher epoch), or this holder's claim on it
         * ran out (a coordination service's lease that lapsed): this handle is fenced and nothing
         * it does is acknowledged.
         */
        FENCED
    }

    private final Kind kind;

    public DeviceException(Kind kind, String message) {
        super(message);
        this.kind = java.util.Objects.requireNonNull(kind, "kind");
    }

    public DeviceException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = java.util.Objects.requireNonNull(kind, "kind");
    }

    /** The kind of failure. */
    public Kind kind() {
        return kind;
    }

    /**
     * Checks that {@code [offset, offset + length)} lies inside a device of {@code size} bytes:
     * the same check as {@link BlockDevice#checkRange}, which a device's data path should call
     * instead. HotSpot's C2 compiler never inlines a static method of an exception class into
     * other code, so every call of this one stays a call; {@code BlockDevice.checkRange} compiles
     * to four compares in its caller.
     *
     * @throws DeviceException of kind {@link Kind#OUT_OF_RANGE} naming the range and the size
     */
    public static void checkRange(long offset, long length, long size) throws DeviceException {
        BlockDevice.checkRange(offset, length, size);
    }

    /** The failure of {@link BlockDevice#checkRange}: kept out of the check so that the check stays small. */
    static DeviceException outOfRange(long offset, long length, long size) {
        return new DeviceException(Kind.OUT_OF_RANGE, "range [" + offset + ", " + offset + "+" + length
                + ") is outside the device of " + size + " bytes");
    }
}
