package dev.handoff.ownership;

import dev.handoff.device.DeviceException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The record of a file image, in its sidecar file (layout and crash safety: {@link OwnershipRecord}).
 *
 * <p>{@link #compareAndWrite} holds an exclusive lock on a lock file beside the sidecar,
 * {@code <sidecar>.lock}, from its read to its rename: fcntl locks exclude other processes, and a
 * per-path {@link ReentrantLock} other threads of this process (the JDK refuses overlapping file
 * locks within one JVM). The lock file is never replaced or deleted, so every writer locks the
 * same inode; it is created by the first record write, never by an inactive handle. Closing its
 * channel drops only locks on the lock file, never the image's.
 *
 * <p>Temporary files are named {@code .<sidecar>.<pid>.<n>.tmp}, unique per process and write, so
 * two writers (which the lock should prevent anyway) never interleave bytes in one file. Every
 * read and write opens and closes its own channel on the sidecar; that is safe for the image's
 * locks, which live on the image file, not on the sidecar.
 */
final class SidecarRecordStore implements RecordStore {
    private static final AtomicLong TEMP_COUNTER = new AtomicLong(); // atomic for uniqueness only; orders nothing
    private static final long PID = ProcessHandle.current().pid();
    /** One lock per sidecar path for the threads of this process; entries are tiny and kept. */
    private static final ConcurrentHashMap<Path, ReentrantLock> IN_PROCESS = new ConcurrentHashMap<>();
    static final String LOCK_SUFFIX = ".lock";

    private final Path sidecar;
    private final Path lockFile;

    SidecarRecordStore(Path sidecar) {
        this.sidecar = sidecar.toAbsolutePath().normalize();
        this.lockFile = this.sidecar.resolveSibling(this.sidecar.getFileName() + LOCK_SUFFIX);
    }

    Path path() {
        return sidecar;
    }

    @Override
    public OwnershipRecord read() throws DeviceException {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(sidecar);
        } catch (NoSuchFileException e) {
            return OwnershipRecord.ABSENT;
        } catch (IOException e) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR,
                    "cannot read ownership record " + sidecar + ": " + e.getMessage(), e);
        }
        return OwnershipRecord.decode(bytes, sidecar.toString());
    }

    @Override
    public OwnershipRecord compareAndWrite(long expectedEpoch, OwnershipRecord next) throws DeviceException {
        ReentrantLock threads = IN_PROCESS.computeIfAbsent(sidecar, p -> new ReentrantLock());
        threads.lock();
        try (FileChannel ch = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            ch.lock(); // released when the channel closes
            OwnershipRecord found = read();
            if (found.epoch() == expectedEpoch) {
                replace(next);
            }
            return found;
        } catch (IOException e) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR,
                    "cannot lock ownership record " + lockFile + ": " + e.getMessage(), e);
        } finally {
            threads.unlock();
        }
    }

    /**
     * Replaces the sidecar with {@code record}: a temporary file written and forced, renamed over
     * the sidecar atomically, then the directory forced so that the rename survives a crash.
     * Called only by {@link #compareAndWrite}, holding the record's lock.
     */
    private void replace(OwnershipRecord record) throws DeviceException {
        Path dir = sidecar.getParent();
        Path temp = dir.resolve("." + sidecar.getFileName() + "." + PID + "." + TEMP_COUNTER.incrementAndGet() + ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                ByteBuffer b = ByteBuffer.wrap(record.encode());
                while (b.hasRemaining()) {
                    ch.write(b);
                }
                ch.force(true);
            }
            try {
                Files.move(temp, sidecar, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                throw new IOException("the file system cannot rename atomically", e);
            }
            try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
                d.force(true);
            }
        } catch (IOException e) {
            try {
                Files.deleteIfExists(temp);
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            String message = String.valueOf(e.getMessage());
            throw new DeviceException(message.contains("No space left") ? DeviceException.Kind.NO_SPACE
                    : DeviceException.Kind.IO_ERROR, "cannot write ownership record " + sidecar + ": " + message, e);
        }
    }

    @Override
    public String describe() {
        return sidecar.toString();
    }
}
