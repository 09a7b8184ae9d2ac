package dev.handoff.ownership;

/**
 * Activation (or a handoff call) was refused because another holder has the image's
 * {@link OwnershipLock}: another process (Handoff or QEMU) or another handle in this process.
 * The handle stays inactive and nothing was written.
 */
public class ImageLockedException extends ImageInactiveException {
    private static final long serialVersionUID = 1L;

    public ImageLockedException(String message) {
        super(message);
    }

    public ImageLockedException(String message, Throwable cause) {
        super(message, cause);
    }
}
