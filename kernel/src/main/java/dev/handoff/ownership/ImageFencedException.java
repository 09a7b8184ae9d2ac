package dev.handoff.ownership;

import dev.handoff.device.DeviceException;

/**
 * An operation was refused because the image's ownership record shows a newer epoch than the
 * one this handle activated with (another owner took over), or because a handoff token no
 * longer matches the record. Nothing reached the device and the record was not written.
 */
public class ImageFencedException extends DeviceException {
    private static final long serialVersionUID = 1L;

    private final long handleEpoch;
    private final long recordEpoch;

    /**
     * @param handleEpoch the epoch this handle (or the token it acted on) holds
     * @param recordEpoch the epoch found in the record
     */
    public ImageFencedException(String message, long handleEpoch, long recordEpoch) {
        super(Kind.FENCED, message);
        this.handleEpoch = handleEpoch;
        this.recordEpoch = recordEpoch;
    }

    /** The epoch this handle activated with, or the epoch of the token it acted on. */
    public long handleEpoch() {
        return handleEpoch;
    }

    /** The epoch the ownership record showed when the operation was refused. */
    public long recordEpoch() {
        return recordEpoch;
    }
}
