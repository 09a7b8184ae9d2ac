package dev.handoff.ownership;

import dev.handoff.device.DeviceException;
import dev.handoff.device.FileDevice;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashMap;
import java.util.Map;

/**
 * One {@link FileDevice} (so one {@code FileChannel}) per image file per process, shared by every
 * {@link OwnedImage} on that file and closed when the last one lets go. POSIX record locks are
 * dropped when any channel on the file closes; sharing the channel is what keeps a second handle
 * on the same file (an incoming-migration handle in the same JVM, say) from silently dropping the
 * active handle's {@link QemuFileLock}.
 *
 * <p>Files are identified by {@link BasicFileAttributes#fileKey()} (device and inode on Linux),
 * so two paths to the same file share one channel; where the file system has no file key, by
 * the real path.
 */
final class ImageFiles {
    /* Every access to OPEN and to an Entry's count is under the ImageFiles.class monitor. */
    private static final Map<Object, Entry> OPEN = new HashMap<>();

    private ImageFiles() {
    }

    private static final class Entry {
        final FileDevice device;
        int leases;

        Entry(FileDevice device) {
            this.device = device;
        }
    }

    /** One handle's share of an open image file. Closing it twice is harmless. */
    static final class Lease implements AutoCloseable {
        private final Object key;
        private final Entry entry;
        private boolean closed; // guarded by ImageFiles.class

        private Lease(Object key, Entry entry) {
            this.key = key;
            this.entry = entry;
        }

        FileDevice device() {
            return entry.device;
        }

        @Override
        public void close() throws DeviceException {
            FileDevice last = null;
            synchronized (ImageFiles.class) {
                if (closed) {
                    return;
                }
                closed = true;
                if (--entry.leases == 0) {
                    OPEN.remove(key, entry);
                    last = entry.device;
                }
            }
            if (last != null) {
                last.close();
            }
        }
    }

    /** Opens {@code image} for reading and writing, or shares the channel already open on it. */
    static Lease open(Path image) throws DeviceException {
        Object key = keyOf(image);
        synchronized (ImageFiles.class) {
            Entry e = OPEN.get(key);
            if (e == null || !e.device.channel().isOpen()) {
                e = new Entry(FileDevice.open(image));
                OPEN.put(key, e);
            }
            e.leases++;
            return new Lease(key, e);
        }
    }

    /** How many images this process holds open (for tests). */
    static synchronized int openCount() {
        return OPEN.size();
    }

    private static Object keyOf(Path image) throws DeviceException {
        try {
            Object key = Files.readAttributes(image, BasicFileAttributes.class).fileKey();
            return key != null ? key : image.toRealPath();
        } catch (NoSuchFileException e) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR, "no such image: " + image, e);
        } catch (IOException e) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR, "cannot open " + image + ": " + e.getMessage(), e);
        }
    }
}
