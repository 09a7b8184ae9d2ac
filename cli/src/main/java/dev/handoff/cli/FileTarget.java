package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.FileDevice;
import dev.handoff.ownership.ImageInactiveException;
import dev.handoff.ownership.QemuFileLock;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/** A raw image target: an existing file or block device of the source's size, or a new (sparse) file. */
final class FileTarget extends MirrorTarget {
    private final Path path;
    private FileDevice device;
    private QemuFileLock lock;
    private boolean created;
    private boolean direct;

    FileTarget(Path path) {
        this.path = path;
    }

    /** Opens the target with direct I/O (O_DIRECT) from now on. */
    void direct(boolean on) {
        direct = on;
    }

    @Override
    String display() {
        return path.toString();
    }

    @Override
    void check(SourceImage source, ImageFormat format) throws CliException {
        if (Files.exists(path)) {
            try {
                if (Files.isSameFile(source.path(), path)) {
                    throw new CliException(ExitCodes.BAD_IMAGE, "target " + path + " is the source " + source.path()
                            + " (the same file under another name)");
                }
            } catch (IOException e) {
                throw new CliException(ExitCodes.BAD_IMAGE, "cannot examine target " + path + ": " + e.getMessage());
            }
            if (!Files.isRegularFile(path) && !Devices.isBlockDevice(path)) {
                throw new CliException(ExitCodes.BAD_IMAGE, "target " + path + " is neither a regular file nor a block"
                        + " device");
            }
            long size;
            try {
                size = Devices.size(path);
            } catch (IOException e) {
                throw new CliException(ExitCodes.BAD_IMAGE, "cannot read the size of target " + path + ": " + e.getMessage());
            }
            if (size != source.size()) {
                throw new CliException(ExitCodes.BAD_IMAGE, "target " + path + " is " + size + " bytes but the source is "
                        + source.size() + " bytes: an existing target must have the source's size");
            }
            if (!Files.isWritable(path)) {
                throw new CliException(ExitCodes.BAD_IMAGE, "target " + path + " is not writable");
            }
            if (format != ImageFormat.RAW) {
                String found;
                try {
                    found = ImageFormat.probe(path);
                } catch (IOException e) {
                    throw new CliException(ExitCodes.BAD_IMAGE, "cannot read target " + path + ": " + e.getMessage());
                }
                if (found != null) {
                    throw new CliException(ExitCodes.BAD_IMAGE, ImageFormat.refusal("target", path, found)
                            .replace("would treat its", "would overwrite its"));
                }
            }
            return;
        }
        if (Files.isSymbolicLink(path)) {
            throw new CliException(ExitCodes.BAD_IMAGE, "target " + path + " is a dangling symbolic link");
        }
        Path parent = path.toAbsolutePath().getParent();
        if (parent == null || !Files.isDirectory(parent)) {
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot create target " + path + ": no such directory " + parent);
        }
        if (!Files.isWritable(parent)) {
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot create target " + path + ": directory " + parent
                    + " is not writable");
        }
    }

    /** Whether the target exists already. */
    boolean exists() {
        return Files.exists(path);
    }

    Path path() {
        return path;
    }

    @Override
    BlockDevice openExisting() throws CliException {
        if (!Files.exists(path)) {
            throw new CliException(ExitCodes.BAD_IMAGE, "Could not open '" + path + "': No such file or directory");
        }
        try {
            device = FileDevice.open(path);
        } catch (DeviceException e) {
            throw new CliException(ExitCodes.BAD_IMAGE, "Could not open '" + path + "': " + e.getMessage());
        }
        lock();
        return device;
    }

    @Override
    BlockDevice open(long size) throws CliException {
        try {
            if (Files.exists(path, LinkOption.NOFOLLOW_LINKS) || Files.exists(path)) {
                device = FileDevice.open(path, false, direct);
            } else {
                FileDevice.create(path, size).close(); // nothing locks a file that did not exist
                created = true;
                device = FileDevice.open(path, false, direct);
            }
        } catch (DeviceException e) {
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot open target: " + e.getMessage());
        }
        if (device.size() != size) {
            abandon();
            throw new CliException(ExitCodes.BAD_IMAGE, "target " + path + " changed size while being opened");
        }
        lock();
        return device;
    }

    private void lock() throws CliException {
        lock = new QemuFileLock(device);
        try {
            lock.acquire();
        } catch (ImageInactiveException e) {
            abandon();
            throw new CliException(ExitCodes.BUSY, "target is in use: " + e.getMessage());
        } catch (DeviceException e) {
            abandon();
            throw new CliException(ExitCodes.FAILED, "cannot lock target " + path + ": " + e.getMessage());
        }
    }

    @Override
    boolean readsAsZeroes() {
        return created;
    }

    @Override
    boolean created() {
        return created;
    }

    @Override
    void abandon() {
        close();
        if (created) {
            try {
                Files.deleteIfExists(path);
            } catch (IOException ignored) {
                // best effort: the message the caller prints still stands
            }
            created = false;
        }
    }

    @Override
    public void close() {
        if (lock != null) {
            try {
                lock.release();
            } catch (DeviceException ignored) {
                // closing the channel drops the locks anyway
            }
            lock = null;
        }
        if (device != null) {
            try {
                device.close();
            } catch (DeviceException ignored) {
                // flushed before close by the caller when it matters
            }
            device = null;
        }
    }
}
