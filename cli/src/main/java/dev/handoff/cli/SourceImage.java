package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.FileDevice;
import dev.handoff.ownership.ImageInactiveException;
import dev.handoff.ownership.OwnedImage;
import dev.handoff.ownership.QemuFileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * The source of {@code handoff mirror}: a raw image file or block device, held with QEMU's write
 * locks while the job runs so that neither QEMU nor another Handoff process writes it behind the job's back (no
 * guest writes through the job here, so nothing would track such writes).
 *
 * <p>{@link #check} only looks; {@link #openAndLock} opens the file read-write (fcntl write locks
 * need a writable descriptor) but never writes it. With a coordinator, {@link #openOwned} holds
 * the source ACTIVE through ZooKeeper instead (its lock and epoch, the only ones that reach other
 * hosts); closing then marks the record clean.
 */
final class SourceImage implements AutoCloseable {
    private final Path path;
    private final long size;
    private FileDevice device;
    private QemuFileLock lock;
    private OwnedImage owned;

    private SourceImage(Path path, long size) {
        this.path = path;
        this.size = size;
    }

    /**
     * Checks that {@code path} is a non-empty, readable raw image: a regular file or a block device
     * whose first bytes are not another format's header (unless {@code format} forces raw). Changes
     * nothing.
     */
    static SourceImage check(Path path, ImageFormat format) throws CliException {
        if (!Files.exists(path)) {
            throw new CliException(ExitCodes.BAD_IMAGE, "source " + path + " does not exist");
        }
        boolean device = Devices.isBlockDevice(path);
        if (!Files.isRegularFile(path) && !device) {
            throw new CliException(ExitCodes.BAD_IMAGE, "source " + path + " is neither a regular file nor a block"
                    + " device (a raw image is needed)");
        }
        if (!Files.isReadable(path)) {
            throw new CliException(ExitCodes.BAD_IMAGE, "source " + path + " is not readable");
        }
        long size;
        try {
            size = Devices.size(path);
        } catch (java.io.IOException e) {
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot read the size of source " + path + ": " + e.getMessage());
        }
        if (size == 0) {
            throw new CliException(ExitCodes.BAD_IMAGE, "source " + path + " is empty: nothing to mirror");
        }
        if (format != ImageFormat.RAW) {
            String found;
            try {
                found = ImageFormat.probe(path);
            } catch (java.io.IOException e) {
                throw new CliException(ExitCodes.BAD_IMAGE, "cannot read source " + path + ": " + e.getMessage());
            }
            if (found != null) {
                throw new CliException(ExitCodes.BAD_IMAGE, ImageFormat.refusal("source", path, found));
            }
        }
        return new SourceImage(path, size);
    }

    /** A source already open elsewhere (the image a {@code serve} exports), for checking a target against. */
    static SourceImage ofSize(Path path, long size) {
        return new SourceImage(path, size);
    }

    Path path() {
        return path;
    }

    long size() {
        return size;
    }

    /** What the job reads: the file, or the owned image. */
    BlockDevice device() {
        return owned != null ? owned : device;
    }

    /**
     * Holds the source ACTIVE with its ownership in the coordinator (lock, epoch + 1); on failure
     * nothing is held. {@code onLost} hears that the session was lost mid-command.
     */
    void openOwned(CoordinatorOptions coordinator, String owner, Consumer<String> onLost) throws CliException {
        owned = coordinator.open(path, owner, OwnedImage.State.ACTIVE, onLost);
        if (owned.size() != size) {
            close();
            throw new CliException(ExitCodes.BAD_IMAGE, "source " + path + " changed size while being opened");
        }
    }

    /** Opens the file and takes QEMU's write locks (bytes 101 and 201); on failure nothing is held. */
    void openAndLock() throws CliException {
        openAndLock(false);
    }

    /** {@link #openAndLock()}, with direct I/O (O_DIRECT) if asked. */
    void openAndLock(boolean direct) throws CliException {
        try {
            device = FileDevice.open(path, false, direct);
        } catch (DeviceException e) {
            if (e.kind() == DeviceException.Kind.READ_ONLY) {
                throw new CliException(ExitCodes.BAD_IMAGE, "cannot lock source " + path + ": it is not writable by"
                        + " this user, and QEMU's write lock (which keeps other writers out while the job runs) needs"
                        + " read-write access; the source is never written");
            }
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot open source: " + e.getMessage());
        }
        if (device.size() != size) {
            close();
            throw new CliException(ExitCodes.BAD_IMAGE, "source " + path + " changed size while being opened");
        }
        lock = new QemuFileLock(device);
        try {
            lock.acquire();
        } catch (ImageInactiveException e) {
            close();
            throw new CliException(ExitCodes.BUSY, "source is in use: " + e.getMessage());
        } catch (DeviceException e) {
            close();
            throw new CliException(ExitCodes.FAILED, "cannot lock source " + path + ": " + e.getMessage());
        }
    }

    /** Releases the locks and closes the file. Harmless twice. */
    @Override
    public void close() {
        if (owned != null) {
            try {
                owned.close();
            } catch (DeviceException ignored) {
                // never written: nothing to lose; a fenced close leaves the record as it was
            }
            owned = null;
        }
        if (lock != null) {
            try {
                lock.release();
            } catch (DeviceException ignored) {
                // the channel's close below drops the locks anyway
            }
            lock = null;
        }
        if (device != null) {
            try {
                device.close();
            } catch (DeviceException ignored) {
                // read-only use: nothing to lose
            }
            device = null;
        }
    }
}
