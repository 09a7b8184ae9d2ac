package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.nbd.NbdDevice;
import dev.handoff.nbd.NbdUri;

/**
 * A remote NBD export as the target ({@code nbd+unix:///NAME?socket=PATH} or
 * {@code nbd://HOST:PORT/NAME}): qemu-nbd, qemu-storage-daemon, or another {@code handoff serve}.
 *
 * <p>The connection is made once, by {@link #check} (to learn the export's size and whether it
 * takes writes; nothing is written), and kept for {@link #open}: a server such as qemu-nbd without
 * {@code --persistent} serves only one connection. The export's server holds its own locks.
 */
final class NbdTarget extends MirrorTarget {
    private final NbdUri uri;
    private NbdDevice device;

    NbdTarget(NbdUri uri) {
        this.uri = uri;
    }

    /** The target for an NBD URI, or a usage error saying what is wrong with it. */
    static NbdTarget parse(String spec) throws CliException {
        try {
            return new NbdTarget(NbdUri.parse(spec));
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "invalid NBD target: " + e.getMessage());
        }
    }

    @Override
    String display() {
        return uri.toString();
    }

    @Override
    void check(SourceImage source, ImageFormat format) throws CliException {
        connect();
        if (device.size() != source.size()) {
            long size = device.size();
            close();
            throw new CliException(ExitCodes.BAD_IMAGE, "target " + uri + " is " + size + " bytes but the source is "
                    + source.size() + " bytes: the export must have the source's size");
        }
        if (device.isReadOnly()) {
            close();
            throw new CliException(ExitCodes.BAD_IMAGE, "target " + uri + " is a read-only export");
        }
        if (format != ImageFormat.RAW) {
            java.nio.ByteBuffer head = java.nio.ByteBuffer.allocate((int) Math.min(ImageFormat.PROBE_BYTES, device.size()));
            String found;
            try {
                device.read(0, head);
                found = ImageFormat.detect(head.flip());
            } catch (DeviceException e) {
                close();
                throw new CliException(ExitCodes.BAD_IMAGE, "cannot read target " + uri + ": " + e.getMessage());
            }
            if (found != null) {
                close();
                throw new CliException(ExitCodes.BAD_IMAGE, "target " + uri + " holds a " + found + " image, not raw:"
                        + " the mirror would overwrite its " + found + " metadata (give --format raw if its bytes"
                        + " really are the disk)");
            }
        }
    }

    @Override
    BlockDevice open(long size) throws CliException {
        connect();
        if (device.size() != size) {
            close();
            throw new CliException(ExitCodes.BAD_IMAGE, "target " + uri + " changed size");
        }
        return device;
    }

    @Override
    BlockDevice openExisting() throws CliException {
        connect();
        return device;
    }

    private void connect() throws CliException {
        if (device != null) {
            return;
        }
        try {
            device = NbdDevice.open(uri);
        } catch (DeviceException e) {
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot use target " + uri + ": " + e.getMessage());
        }
    }

    @Override
    boolean readsAsZeroes() {
        return false;
    }

    @Override
    boolean created() {
        return false;
    }

    @Override
    void abandon() {
        close();
    }

    /** Sends NBD_CMD_DISC once in-flight requests are answered; the job flushed the target before it concluded. */
    @Override
    public void close() {
        if (device != null) {
            device.close();
            device = null;
        }
    }
}
