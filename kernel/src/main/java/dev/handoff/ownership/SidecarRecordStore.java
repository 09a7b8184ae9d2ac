package dev.handoff.ownership;

import dev.handoff.device.DeviceException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.EnumSet;
import java.util.Set;
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
 *
 * <p>The record and the lock file take the image's owner, group and permissions (DESIGN §7.1; without execute
 * bits; always readable and writable by the owner, whom the lock file's lock needs), so that whoever may use the image may use its record, and nobody else may: a record
 * written by root for a user's 0600 image stays the user's and stays 0600, instead of root's and
 * umask's. Each file is created with at most the image's permissions (the umask can only narrow
 * them), given its owner and group where the process may (a process that is not root keeps its
 * own user and may give only one of its groups), and then exactly the image's permissions, all
 * before the rename makes it the record.
 */
final class SidecarRecordStore implements RecordStore {
    private static final AtomicLong TEMP_COUNTER = new AtomicLong(); // atomic for uniqueness only; orders nothing
    private static final long PID = ProcessHandle.current().pid();
    /** One lock per sidecar path for the threads of this process; entries are tiny and kept. */
    private static final ConcurrentHashMap<Path, ReentrantLock> IN_PROCESS = new ConcurrentHashMap<>();
    static final String LOCK_SUFFIX = ".lock";

    private final Path sidecar;
    private final Path lockFile;
    /** The file whose owner, group and permissions the record and lock files take, or null. */
    private final Path image;

    /** A store whose files get the process's user and umask (tests). */
    SidecarRecordStore(Path sidecar) {
        this(sidecar, null);
    }

    /** A store whose files get {@code image}'s owner, group and permissions. */
    SidecarRecordStore(Path sidecar, Path image) {
        this.sidecar = sidecar.toAbsolutePath().normalize();
        this.lockFile = this.sidecar.resolveSibling(this.sidecar.getFileName() + LOCK_SUFFIX);
        this.image = image;
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
        try (FileChannel ch = openLockFile()) {
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
            try (FileChannel ch = FileChannel.open(temp, Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
                    createAttributes())) {
                adopt(temp);
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

    /** The lock file, created (with the image's owner and mode) by the first record write. */
    private FileChannel openLockFile() throws IOException {
        try {
            FileChannel created = FileChannel.open(lockFile, Set.of(StandardOpenOption.CREATE_NEW,
                    StandardOpenOption.WRITE), createAttributes());
            try {
                adopt(lockFile);
            } catch (IOException | RuntimeException e) {
                created.close();
                throw e;
            }
            return created;
        } catch (FileAlreadyExistsException exists) {
            return FileChannel.open(lockFile, StandardOpenOption.WRITE);
        }
    }

    /** At most the image's permissions at creation (the umask narrows them further). */
    private FileAttribute<?>[] createAttributes() throws IOException {
        if (image == null) {
            return new FileAttribute<?>[0];
        }
        return new FileAttribute<?>[] {PosixFilePermissions.asFileAttribute(imagePermissions())};
    }

    /** Gives {@code file} the image's group, owner and permissions, as far as this process may. */
    private void adopt(Path file) throws IOException {
        if (image == null) {
            return;
        }
        PosixFileAttributes of = Files.readAttributes(image, PosixFileAttributes.class);
        PosixFileAttributeView view = Files.getFileAttributeView(file, PosixFileAttributeView.class);
        PosixFileAttributes now = view.readAttributes();
        try {
            if (!now.group().equals(of.group())) {
                view.setGroup(of.group());
            }
            if (!now.owner().equals(of.owner())) {
                view.setOwner(of.owner());
            }
        } catch (IOException notPermitted) {
            // Not root, or not in the image's group: the file stays ours, with the image's permissions.
        }
        view.setPermissions(imagePermissions(of));
    }

    private Set<PosixFilePermission> imagePermissions() throws IOException {
        return imagePermissions(Files.readAttributes(image, PosixFileAttributes.class));
    }

    private static Set<PosixFilePermission> imagePermissions(PosixFileAttributes of) {
        Set<PosixFilePermission> mode = EnumSet.noneOf(PosixFilePermission.class);
        mode.addAll(of.permissions());
        mode.removeAll(EnumSet.of(PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.GROUP_EXECUTE,
                PosixFilePermission.OTHERS_EXECUTE));
        mode.add(PosixFilePermission.OWNER_READ); // the record must stay readable to its owner
        mode.add(PosixFilePermission.OWNER_WRITE);
        return mode;
    }

    @Override
    public String describe() {
        return sidecar.toString();
    }
}
