package dev.handoff.device;

import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * The Linux calls that {@link FileChannel} lacks and a storage tool needs: {@code SEEK_DATA} and
 * {@code SEEK_HOLE} (where a sparse file's data is), {@code fallocate} (punch a hole, zero a
 * range), and a block device's {@code BLKZEROOUT} and {@code BLKDISCARD}. They come from a small
 * JNI library built with this module ({@code kernel/src/main/c}) and packed in its jar; where it
 * cannot load (another OS or architecture, a build without a C compiler, or
 * {@code -Dhandoff.native=off}), {@link #available()} is false and every call returns
 * {@link #UNSUPPORTED}: callers fall back to what Java offers (holes are read, zeroes written).
 *
 * <p>Each call works on the file descriptor of an open channel, never on one of its own: POSIX
 * record locks (QEMU's lock bytes) are dropped when any descriptor of the file is closed.
 * Thread-safety: the calls are as thread-safe as the system calls; {@code lseek} moves the
 * descriptor's file offset, which positional {@code FileChannel} I/O never uses.
 */
final class LinuxFiles {
    /** Returned when the library is absent or the file (system) does not support the call. */
    static final long UNSUPPORTED = Long.MIN_VALUE;
    /** Returned by {@link #seekData} when no data follows the offset. */
    static final long NONE = -1;

    private static final String WHY_NOT;
    private static final int KEEP_SIZE;
    private static final int PUNCH_HOLE;
    private static final int ZERO_RANGE;
    private static final int ENXIO;
    private static final int EINVAL;
    private static final int EOPNOTSUPP;
    private static final int ENOTTY;
    private static final int ENOSPC;
    private static final int EBADF;
    private static final int EDQUOT;

    static {
        String why = load();
        int[] c = new int[10];
        if (why == null) {
            try {
                c = constants0();
            } catch (LinkageError e) {
                why = "the native library does not link: " + e;
            }
        }
        WHY_NOT = why;
        KEEP_SIZE = c[0];
        PUNCH_HOLE = c[1];
        ZERO_RANGE = c[2];
        ENXIO = c[3];
        EINVAL = c[4];
        EOPNOTSUPP = c[5];
        ENOTTY = c[6];
        ENOSPC = c[7];
        EBADF = c[8];
        EDQUOT = c[9];
    }

    private LinuxFiles() {
    }

    /** Whether the native calls are available. */
    static boolean available() {
        return WHY_NOT == null;
    }

    /** Why they are not, or null. */
    static String unavailableReason() {
        return WHY_NOT;
    }

    /**
     * Whether the native calls can reach {@code channel}'s descriptor: a channel of the default file
     * system. Another provider's channel (an in-memory file system in a test) has none, and is
     * treated as a file system that cannot tell holes or punch them, not as a closed channel.
     */
    private static boolean reachable(FileChannel channel) {
        return available() && channel.getClass().getName().equals("sun.nio.ch.FileChannelImpl");
    }

    /**
     * The first offset at or after {@code offset} where the file has data; {@link #NONE} if only a
     * hole follows; {@link #UNSUPPORTED} if the file system (or a block device) cannot tell.
     */
    static long seekData(FileChannel channel, long offset) throws IOException {
        return seek(channel, offset, true);
    }

    /** The first hole at or after {@code offset} (the file's end counts as one), or {@link #UNSUPPORTED}. */
    static long seekHole(FileChannel channel, long offset) throws IOException {
        return seek(channel, offset, false);
    }

    private static long seek(FileChannel channel, long offset, boolean data) throws IOException {
        if (!reachable(channel)) {
            return UNSUPPORTED;
        }
        long r = seek0(channel, offset, data);
        if (r >= 0) {
            return r;
        }
        int errno = (int) -r;
        if (errno == ENXIO) {
            return NONE;
        }
        if (errno == EINVAL || errno == EOPNOTSUPP || errno == ENOTTY) {
            return UNSUPPORTED;
        }
        throw failure(data ? "SEEK_DATA" : "SEEK_HOLE", errno);
    }

    /** Deallocates the range, which then reads as zeroes; false if unsupported here. */
    static boolean punchHole(FileChannel channel, long offset, long length) throws IOException {
        return fallocate(channel, PUNCH_HOLE | KEEP_SIZE, offset, length, "punch hole");
    }

    /** Makes the range read as zeroes, efficiently if the device can (it may allocate); false if unsupported. */
    static boolean zeroRange(FileChannel channel, long offset, long length) throws IOException {
        return fallocate(channel, ZERO_RANGE | KEEP_SIZE, offset, length, "zero range");
    }

    /** A block device's BLKZEROOUT: the device zeroes the range; false if unsupported. */
    static boolean blockZeroOut(FileChannel channel, long offset, long length) throws IOException {
        return blockRange(channel, true, offset, length, "BLKZEROOUT");
    }

    /** A block device's BLKDISCARD: the range's content becomes the device's business; false if unsupported. */
    static boolean blockDiscard(FileChannel channel, long offset, long length) throws IOException {
        return blockRange(channel, false, offset, length, "BLKDISCARD");
    }

    private static boolean fallocate(FileChannel channel, int mode, long offset, long length, String what)
            throws IOException {
        if (!reachable(channel)) {
            return false;
        }
        int r = fallocate0(channel, mode, offset, length);
        return done(r, what);
    }

    private static boolean blockRange(FileChannel channel, boolean zeroout, long offset, long length, String what)
            throws IOException {
        if (!reachable(channel)) {
            return false;
        }
        return done(blockRange0(channel, zeroout, offset, length), what);
    }

    private static boolean done(int r, String what) throws IOException {
        if (r == 0) {
            return true;
        }
        int errno = -r;
        if (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOTTY) {
            return false;
        }
        throw failure(what, errno);
    }

    private static IOException failure(String what, int errno) {
        if (errno == EBADF) {
            return new java.nio.channels.ClosedChannelException(); // as FileChannel reports it
        }
        String text = errno == ENOSPC ? "No space left on device" : errno == EDQUOT ? "Disk quota exceeded"
                : "errno " + errno;
        return new IOException(what + " failed: " + text);
    }

    /** Loads the library; returns null, or why it could not. */
    private static String load() {
        if ("off".equals(System.getProperty("handoff.native"))) {
            return "switched off with -Dhandoff.native=off";
        }
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        if (!os.contains("linux")) {
            return "not Linux (" + os + ")";
        }
        String resource = "native/linux-" + System.getProperty("os.arch") + "/libhandoff.so";
        URL url = LinuxFiles.class.getResource(resource);
        if (url == null) {
            return "no " + resource + " beside " + LinuxFiles.class.getName()
                    + " (built without a C compiler, or for another architecture)";
        }
        try {
            if (url.getProtocol().equals("file")) {
                System.load(Path.of(url.toURI()).toString());
            } else {
                Path copy = Files.createTempFile("handoff-native-", ".so");
                try (InputStream in = url.openStream()) {
                    Files.copy(in, copy, StandardCopyOption.REPLACE_EXISTING);
                }
                try {
                    System.load(copy.toString());
                } finally {
                    Files.deleteIfExists(copy); // mapped once loaded
                }
            }
            return null;
        } catch (IOException | java.net.URISyntaxException | LinkageError | SecurityException e) {
            return "cannot load " + resource + ": " + e;
        }
    }

    private static native long seek0(FileChannel channel, long offset, boolean data);

    private static native int fallocate0(FileChannel channel, int mode, long offset, long length);

    private static native int blockRange0(FileChannel channel, boolean zeroout, long offset, long length);

    private static native int[] constants0();
}
