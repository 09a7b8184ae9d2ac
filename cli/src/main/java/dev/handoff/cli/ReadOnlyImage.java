package dev.handoff.cli;

import dev.handoff.device.DeviceException;
import dev.handoff.device.FileDevice;
import java.io.IOException;
import java.nio.channels.FileLock;
import java.nio.file.Path;
import java.util.List;

/**
 * An image served with {@code --read-only}: opened read-only, outside the ownership protocol (no
 * write lock, no epoch, no record written), and locked as QEMU locks an image it only reads, e.g.
 * {@code qemu-nbd --read-only} or a read-only export of qemu-storage-daemon: byte 100 (consistent
 * read) and byte 203 (refuses to share resize), both shared. So QEMU may open the image meanwhile,
 * read-write too, and only a resize is refused, as it is against QEMU's own read-only exporter.
 *
 * <p>Before it locks, it looks for a holder that refuses to share consistent reads (byte 200) or
 * holds resize (byte 103), as QEMU does, in {@code /proc/locks}: a read-only descriptor cannot
 * test-lock exclusively.
 */
final class ReadOnlyImage implements AutoCloseable {
    private static final long CONSISTENT_READ = 100;
    private static final long UNSHARE_CONSISTENT_READ = 200;
    private static final long RESIZE = 103;
    private static final long UNSHARE_RESIZE = 203;

    private final FileDevice device;
    private final List<FileLock> locks;

    private ReadOnlyImage(FileDevice device, List<FileLock> locks) {
        this.device = device;
        this.locks = locks;
    }

    /** Opens and locks {@code path}; on failure nothing is held. */
    static ReadOnlyImage open(Path path) throws CliException {
        if (LockTable.available()) {
            try {
                for (LockTable.Lock l : LockTable.on(path)) {
                    if (l.covers(UNSHARE_CONSISTENT_READ) || l.covers(RESIZE)) {
                        throw new CliException(ExitCodes.BUSY, "image is in use: " + path + " is locked by another process ("
                                + l.describe() + ": " + (l.covers(RESIZE) ? "it is resizing the image"
                                : "it refuses to share consistent reads") + ")");
                    }
                }
            } catch (IOException e) {
                throw new CliException(ExitCodes.BAD_IMAGE, "cannot examine the locks on " + path + ": " + e.getMessage());
            }
        }
        FileDevice device;
        try {
            device = FileDevice.open(path, true);
        } catch (DeviceException e) {
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot open " + path + ": " + e.getMessage());
        }
        try {
            FileLock read = device.channel().tryLock(CONSISTENT_READ, 1, true);
            FileLock resize = device.channel().tryLock(UNSHARE_RESIZE, 1, true);
            if (read == null || resize == null) {
                device.close();
                throw new CliException(ExitCodes.BUSY, "image is in use: " + path + " is locked by another process"
                        + " (byte " + (read == null ? CONSISTENT_READ : UNSHARE_RESIZE) + ")");
            }
            return new ReadOnlyImage(device, List.of(read, resize));
        } catch (IOException e) {
            try {
                device.close();
            } catch (DeviceException ignored) {
                // reporting the lock failure
            }
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot lock " + path + ": " + e.getMessage());
        }
    }

    FileDevice device() {
        return device;
    }

    /** Releases the locks and closes the file; writes nothing. */
    @Override
    public void close() {
        for (FileLock l : locks) {
            try {
                l.release();
            } catch (IOException ignored) {
                // closing the channel drops them
            }
        }
        try {
            device.close();
        } catch (DeviceException ignored) {
            // read-only: nothing to lose
        }
    }
}
