package dev.handoff.ownership;

import dev.handoff.device.DeviceException;

/**
 * An operation was refused because the image is held inactive by this handle: another owner may
 * be writing it. Nothing reached the device.
 *
 * <p>Its subclass {@link ImageLockedException} is thrown by {@link OwnedImage#activate()} (and the
 * handoff calls) when the image's {@link OwnershipLock} is held by another holder; the message
 * then says who ("locked by another process", as QEMU says it) and the handle stays inactive.
 */
public class ImageInactiveException extends DeviceException {
    private static final long serialVersionUID = 1L;

    public ImageInactiveException(String message) {
        super(Kind.INACTIVE, message);
    }

    public ImageInactiveException(String message, Throwable cause) {
        super(Kind.INACTIVE, message, cause);
    }
}
