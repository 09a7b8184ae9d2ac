package dev.handoff.ownership;

import dev.handoff.device.DeviceException;
import dev.handoff.device.FileDevice;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Path;
import java.util.Objects;

/**
 * An {@link OwnershipLock} made of byte-range locks on the image file itself, at the offsets QEMU
 * uses, so that QEMU's tools and Handoff see each other's ownership.
 *
 * <h2>QEMU's convention</h2>
 * QEMU locks byte {@code 100 + n} of an image for each permission {@code n} it holds and byte
 * {@code 200 + n} for each permission it refuses to share (n = 0 consistent read, 1 write,
 * 2 write-unchanged, 3 resize). Before it uses a set of locks it takes them (shared), then tests
 * that no other process holds {@code 200 + n} for a permission it wants, nor {@code 100 + n} for
 * a permission it refuses to share. A running VM holds 101 and 201.
 *
 * <h2>What this lock holds</h2>
 * <pre>
 *   byte 101  shared     "I hold write permission"
 *   byte 201  exclusive  "I refuse to share write permission"
 * </pre>
 * A QEMU process that wants to write tests byte 201 and fails with {@code Failed to get "write"
 * lock}; one that refuses to share writes tests byte 101 and fails the same way. Handoff refuses
 * to activate while another process holds 101 (QEMU writing, e.g. {@code qemu-io} or
 * {@code qemu-nbd} opened read-write) or 201 (another Handoff owner, or QEMU refusing to share
 * writes).
 *
 * <h2>Protocol</h2>
 * <ol>
 *   <li>{@code tryLock(201, exclusive)}: fails if anyone holds 201 in any mode.</li>
 *   <li>{@code tryLock(101, exclusive)}: fails if anyone holds 101 (a writer); on failure release 201.</li>
 *   <li>Release the exclusive 101 and take 101 shared.</li>
 * </ol>
 * Byte 201 is held <em>exclusive</em> from the first step on, where QEMU would hold it shared.
 * QEMU's own test on 201 conflicts with either mode, so QEMU sees the same thing; the exclusive
 * mode closes the window between checking and taking: a QEMU writer that takes 101 after step 2
 * then finds 201 held and backs off, and a second Handoff owner fails step 1. The shared 101 lets
 * QEMU tools that only read (and share writes) keep working, e.g. {@code qemu-img info}.
 *
 * <h2>Pitfall</h2>
 * Java's file locks are POSIX record locks: the process loses all of them when <em>any</em>
 * channel on the file is closed. Take this lock only on the one channel the process holds on the
 * image ({@link OwnedImage#openFile} shares one per file), and never open and close another
 * channel (not even {@code Files.readAllBytes}) on a locked image in the same process. Inside one
 * JVM, a second handle on the same file is refused by the JVM's own lock table
 * ({@link OverlappingFileLockException}), reported as "locked by another handle in this process".
 */
public final class QemuFileLock implements OwnershipLock {
    /*
     * Threading: acquire/release/isHeld are synchronized on this instance; the two FileLock fields
     * are guarded by that monitor. Exclusion against other instances and processes is the
     * kernel's (fcntl record locks) and, inside this JVM, the JDK's FileLockTable.
     */

    /** QEMU's base offset for held permissions. */
    static final long PERM_BASE = 100;
    /** QEMU's base offset for permissions refused to others. */
    static final long SHARED_BASE = 200;
    /** QEMU's permission number for "write". */
    static final long PERM_WRITE = 1;
    static final long WRITE_BYTE = PERM_BASE + PERM_WRITE;
    static final long UNSHARE_WRITE_BYTE = SHARED_BASE + PERM_WRITE;

    private final FileChannel channel;
    private final Path path;
    private FileLock write;          // shared on byte 101; guarded by this
    private FileLock unshareWrite;   // exclusive on byte 201; guarded by this

    /** A lock on {@code image}'s own channel (see the class comment about channels). */
    public QemuFileLock(FileDevice image) {
        this(image.channel(), image.path());
    }

    QemuFileLock(FileChannel channel, Path path) {
        this.channel = Objects.requireNonNull(channel, "channel");
        this.path = Objects.requireNonNull(path, "path");
    }

    @Override
    public synchronized void acquire() throws DeviceException {
        if (write != null && write.isValid() && unshareWrite != null && unshareWrite.isValid()) {
            return;
        }
        release();
        FileLock x201 = tryLock(UNSHARE_WRITE_BYTE, false);
        if (x201 == null) {
            throw refused(UNSHARE_WRITE_BYTE, "another process refuses to share write permission");
        }
        boolean done = false;
        try {
            FileLock x101 = tryLock(WRITE_BYTE, false);
            if (x101 == null) {
                throw refused(WRITE_BYTE, "another process has it open for writing");
            }
            unlock(x101);
            // Between unlock and lock a QEMU writer may take 101 shared; it then tests 201, which we
            // hold, and backs off. A Handoff peer cannot get here: it fails on 201 first.
            FileLock s101 = tryLock(WRITE_BYTE, true);
            if (s101 == null) {
                throw refused(WRITE_BYTE, "another process took write permission");
            }
            write = s101;
            unshareWrite = x201;
            done = true;
        } finally {
            if (!done) {
                unlockQuietly(x201);
            }
        }
    }

    @Override
    public synchronized void release() throws DeviceException {
        FileLock w = write;
        FileLock u = unshareWrite;
        write = null;
        unshareWrite = null;
        DeviceException failure = null;
        for (FileLock l : new FileLock[] {w, u}) {
            if (l == null) {
                continue;
            }
            try {
                unlock(l);
            } catch (DeviceException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    @Override
    public synchronized boolean isHeld() {
        return write != null && write.isValid() && unshareWrite != null && unshareWrite.isValid();
    }

    @Override
    public String toString() {
        return "QemuFileLock[" + path + (isHeld() ? ", held" : "") + "]";
    }

    /** Returns the lock, or null if another process holds a conflicting one. */
    private FileLock tryLock(long position, boolean shared) throws DeviceException {
        try {
            return channel.tryLock(position, 1, shared);
        } catch (OverlappingFileLockException e) {
            throw new ImageLockedException("Failed to get \"write\" lock: " + path
                    + " is locked by another handle in this process (byte " + position + ")", e);
        } catch (IOException e) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR,
                    "cannot lock byte " + position + " of " + path + ": " + e.getMessage(), e);
        }
    }

    private ImageLockedException refused(long position, String why) {
        return new ImageLockedException("Failed to get \"write\" lock: " + path
                + " is locked by another process (byte " + position + ": " + why
                + "). Is another process using the image?");
    }

    private void unlock(FileLock l) throws DeviceException {
        try {
            if (l.isValid()) {
                l.release();
            }
        } catch (IOException e) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR,
                    "cannot unlock byte " + l.position() + " of " + path + ": " + e.getMessage(), e);
        }
    }

    private void unlockQuietly(FileLock l) {
        try {
            unlock(l);
        } catch (DeviceException ignored) {
            // The lock dies with the channel at the latest; the caller's failure is the one to report.
        }
    }
}
