package dev.handoff.device;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A raw image: a file or a block device, byte {@code i} of the device is byte {@code i} of the
 * file. Positional {@link FileChannel} I/O, so concurrent operations need no lock;
 * {@link #flush()} is {@link FileChannel#force(boolean) force(true)}.
 *
 * <p>The device's size is the file's size when opened, or a block device's capacity.
 *
 * <p>Sparse images: where the kernel offers it ({@link LinuxFiles}), {@link #nextData} and
 * {@link #nextHole} are {@code SEEK_DATA} and {@code SEEK_HOLE}, {@link #writeZeroes} punches a hole
 * (a file) or asks the device to zero the range ({@code fallocate}, then {@code BLKZEROOUT}; a block
 * device), and {@link #discard} punches a hole; otherwise zeroes are written and discard does
 * nothing. With {@link #open(Path, boolean, boolean) direct} I/O ({@code O_DIRECT}) every offset,
 * length and buffer must be aligned to {@link #alignment()}: the page cache is bypassed, so what a
 * write returned is on the device (still not durable before a flush on a volatile cache). A thread interrupted during I/O makes the
 * JDK close the channel ({@link ClosedByInterruptException}); the kernel never interrupts I/O
 * threads, and embedders should not either.
 *
 * <p>{@link #channel()} exposes the one channel this device holds, so the ownership layer can
 * take its byte-range locks on it: POSIX record locks are dropped when <em>any</em> channel to the
 * file in this process is closed, so a second channel must never be opened.
 */
public final class FileDevice implements BlockDevice {
    private static final int ZERO_CHUNK = 1 << 20;
    private static final int SECTOR = 512;
    private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(ZERO_CHUNK).asReadOnlyBuffer();

    private final Path path;
    private final FileChannel channel;
    private final long size;
    private final boolean readOnly;
    private final boolean blockDevice;
    private final int alignment;           // 1 unless direct
    private final ByteBuffer zeroes;       // what writeZeroes falls back to writing: aligned if direct
    private volatile boolean noSeekHoles;  // the file system cannot tell holes: stop asking (benign race)
    /**
     * The last run of data {@code SEEK_HOLE} found, or null. On some file systems (tmpfs)
     * {@code SEEK_HOLE} walks every page up to the next hole: tens of milliseconds on a dense 1 GiB
     * image, and a mirror asks once per copy. Inside a known run {@link #nextHole} needs no system
     * call. Only data is remembered, never a hole (a write can fill a hole at any time): a write
     * reaching the run's end (which may extend it) and every punched hole forget it, each after
     * its own I/O. A racing query may still store a run a concurrent punch or write just changed;
     * its answer is then one SEEK_HOLE could have given an instant earlier, and where it calls a
     * punched range data, a reader reads zeroes, which is what is there. Volatile: an immutable
     * pair, published whole.
     */
    private volatile DataRun knownData;

    private record DataRun(long from, long to) {
    }

    private FileDevice(Path path, FileChannel channel, long size, boolean readOnly, boolean blockDevice,
            int alignment) {
        this.path = path;
        this.channel = channel;
        this.size = size;
        this.readOnly = readOnly;
        this.blockDevice = blockDevice;
        this.alignment = alignment;
        this.zeroes = alignment > 1
                ? ByteBuffer.allocateDirect(ZERO_CHUNK + alignment).alignedSlice(alignment).limit(ZERO_CHUNK)
                        .slice().asReadOnlyBuffer()
                : ZEROES;
    }

    /** Opens an existing raw image (a file or a block device) for reading and writing. */
    public static FileDevice open(Path path) throws DeviceException {
        return open(path, false);
    }

    /** Opens an existing raw image, read-only if asked. */
    public static FileDevice open(Path path, boolean readOnly) throws DeviceException {
        return open(path, readOnly, false);
    }

    /**
     * Opens an existing raw image, read-only if asked, with direct I/O ({@code O_DIRECT}, bypassing
     * the page cache) if asked: then every offset, length and buffer address of its I/O must be a
     * multiple of {@link #alignment()}, or the operation fails with an I/O error.
     */
    public static FileDevice open(Path path, boolean readOnly, boolean direct) throws DeviceException {
        try {
            java.util.Set<java.nio.file.OpenOption> options = new java.util.HashSet<>();
            options.add(StandardOpenOption.READ);
            if (!readOnly) {
                options.add(StandardOpenOption.WRITE);
            }
            if (direct) {
                options.add(com.sun.nio.file.ExtendedOpenOption.DIRECT);
            }
            FileChannel channel = FileChannel.open(path, options);
            int alignment = direct ? Math.toIntExact(Files.getFileStore(path).getBlockSize()) : 1;
            return new FileDevice(path, channel, channel.size(), readOnly, isBlockDevice(path), alignment);
        } catch (NoSuchFileException e) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR, "no such image: " + path, e);
        } catch (java.nio.file.AccessDeniedException e) {
            throw new DeviceException(DeviceException.Kind.READ_ONLY, "permission denied: " + path, e);
        } catch (IOException e) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR, "cannot open " + path + ": " + e.getMessage(), e);
        }
    }

    /**
     * Creates a new all-zero raw image of {@code size} bytes (sparse where the file system allows)
     * and opens it for reading and writing. Refuses to overwrite an existing file.
     */
    public static FileDevice create(Path path, long size) throws DeviceException {
        if (size < 0) {
            throw new IllegalArgumentException("image size must be >= 0, got " + size);
        }
        FileChannel channel;
        try {
            channel = FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
        } catch (FileAlreadyExistsException e) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR, "image already exists: " + path, e);
        } catch (IOException e) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR, "cannot create " + path + ": " + e.getMessage(), e);
        }
        try {
            if (size > 0) {
                // ftruncate: the whole file is a hole. A second descriptor, closed at once, which is
                // harmless here: nothing can hold a lock on a file that did not exist a moment ago.
                try (java.io.RandomAccessFile raf = new java.io.RandomAccessFile(path.toFile(), "rw")) {
                    raf.setLength(size);
                }
            }
            return new FileDevice(path, channel, size, false, false, 1);
        } catch (IOException e) {
            try {
                channel.close();
                Files.deleteIfExists(path);
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw new DeviceException(e.getMessage() != null && e.getMessage().contains("No space left")
                    ? DeviceException.Kind.NO_SPACE : DeviceException.Kind.IO_ERROR,
                    "cannot size " + path + " to " + size + " bytes: " + e.getMessage(), e);
        }
    }

    /** The image file. */
    public Path path() {
        return path;
    }

    /** The single channel this device holds on its file (see the class comment). */
    public FileChannel channel() {
        return channel;
    }

    /** Whether the device was opened read-only. */
    public boolean isReadOnly() {
        return readOnly;
    }

    /** Whether the image is a block device rather than a regular file. */
    public boolean isBlockDevice() {
        return blockDevice;
    }

    /** What offsets, lengths and buffers of its I/O must be multiples of: 1, or the block size with direct I/O. */
    public int alignment() {
        return alignment;
    }

    /** Whether {@code path} (following links) is a block device. */
    public static boolean isBlockDevice(Path path) {
        try {
            int mode = (Integer) Files.getAttribute(path, "unix:mode");
            return (mode & 0170000) == 0060000;
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return false;
        }
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        BlockDevice.checkRange(offset, dst.remaining(), size);
        try {
            long pos = offset;
            while (dst.hasRemaining()) {
                int n = channel.read(dst, pos);
                if (n < 0) {
                    // The file shrank under us: its tail reads as zeroes, like a hole.
                    while (dst.hasRemaining()) {
                        dst.put((byte) 0);
                    }
                    return;
                }
                pos += n;
            }
        } catch (IOException e) {
            throw map("read", e);
        }
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        ensureWritable();
        BlockDevice.checkRange(offset, src.remaining(), size);
        long end = offset + src.remaining();
        try {
            long pos = offset;
            while (src.hasRemaining()) {
                pos += channel.write(src, pos);
            }
        } catch (IOException e) {
            throw map("write", e);
        } finally {
            DataRun k = knownData;
            if (k != null && offset <= k.to && end >= k.to) {
                knownData = null; // the run may now extend past its known end
            }
        }
    }

    /**
     * Makes the range read as zeroes: a hole punched in a file; on a block device the device's own
     * zeroing ({@code fallocate} with unmap, else {@code BLKZEROOUT}); zeroes written where neither
     * is offered (or a block device's range is not sector-aligned).
     */
    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        ensureWritable();
        BlockDevice.checkRange(offset, length, size);
        ensureOpen();
        if (length == 0) {
            return;
        }
        try {
            if (!blockDevice) {
                if (LinuxFiles.punchHole(channel, offset, length) || LinuxFiles.zeroRange(channel, offset, length)) {
                    return;
                }
            } else if (offset % SECTOR == 0 && length % SECTOR == 0
                    && (LinuxFiles.punchHole(channel, offset, length) || LinuxFiles.blockZeroOut(channel, offset, length))) {
                return;
            }
            long pos = offset;
            long end = offset + length;
            while (pos < end) {
                ByteBuffer z = zeroes.duplicate();
                z.limit((int) Math.min(z.capacity(), end - pos));
                while (z.hasRemaining()) {
                    pos += channel.write(z, pos);
                }
            }
        } catch (IOException e) {
            throw map("write-zeroes", e);
        } finally {
            knownData = null; // a punched hole may split the known run; zeroes written may extend it
        }
    }

    /**
     * Advisory: punches a hole in a file, or has a block device unmap the range where it can do so
     * and read zeroes after (never a discard that could leave unstable bytes); otherwise nothing.
     */
    @Override
    public void discard(long offset, long length) throws DeviceException {
        ensureWritable();
        BlockDevice.checkRange(offset, length, size);
        ensureOpen();
        if (length == 0 || (blockDevice && (offset % SECTOR != 0 || length % SECTOR != 0))) {
            return;
        }
        try {
            LinuxFiles.punchHole(channel, offset, length);
        } catch (IOException e) {
            throw map("discard", e);
        } finally {
            knownData = null; // a punched hole may split the known run
        }
    }

    /** {@code SEEK_DATA} where the file system can tell; {@code offset} (all may be data) otherwise. */
    @Override
    public long nextData(long offset) throws DeviceException {
        BlockDevice.checkRange(offset, 0, size);
        ensureOpen();
        if (offset == size || noSeekHoles) {
            return offset;
        }
        try {
            long d = LinuxFiles.seekData(channel, offset);
            if (d == LinuxFiles.UNSUPPORTED) {
                noSeekHoles = true;
                return offset;
            }
            return d == LinuxFiles.NONE ? size : Math.min(d, size);
        } catch (IOException e) {
            throw map("SEEK_DATA", e);
        }
    }

    /** {@code SEEK_HOLE} where the file system can tell; {@code size()} (no hole known) otherwise. */
    @Override
    public long nextHole(long offset) throws DeviceException {
        BlockDevice.checkRange(offset, 0, size);
        ensureOpen();
        if (offset == size || noSeekHoles) {
            return size;
        }
        DataRun k = knownData;
        if (k != null && k.from <= offset && offset < k.to) {
            return k.to;
        }
        try {
            long h = LinuxFiles.seekHole(channel, offset);
            if (h == LinuxFiles.UNSUPPORTED) {
                noSeekHoles = true;
                return size;
            }
            h = h < 0 ? size : Math.min(h, size);
            if (h > offset) {
                knownData = new DataRun(offset, h);
            }
            return h;
        } catch (IOException e) {
            throw map("SEEK_HOLE", e);
        }
    }

    private void ensureOpen() throws DeviceException {
        if (!channel.isOpen()) {
            throw closed();
        }
    }

    @Override
    public void flush() throws DeviceException {
        if (readOnly) {
            // Nothing of ours to make durable.
            if (!channel.isOpen()) {
                throw closed();
            }
            return;
        }
        try {
            channel.force(true);
        } catch (IOException e) {
            throw map("flush", e);
        }
    }

    @Override
    public void close() throws DeviceException {
        try {
            channel.close();
        } catch (IOException e) {
            throw map("close", e);
        }
    }

    @Override
    public String toString() {
        return "FileDevice[" + path + ", " + size + " bytes" + (blockDevice ? ", block device" : "")
                + (readOnly ? ", read-only" : "") + (alignment > 1 ? ", direct" : "") + "]";
    }

    private void ensureWritable() throws DeviceException {
        if (readOnly) {
            throw new DeviceException(DeviceException.Kind.READ_ONLY, path + " is open read-only");
        }
    }

    private DeviceException closed() {
        return new DeviceException(DeviceException.Kind.CLOSED, path + " is closed");
    }

    private DeviceException map(String op, IOException e) {
        if (e instanceof ClosedByInterruptException) {
            return new DeviceException(DeviceException.Kind.CLOSED,
                    op + " on " + path + " was interrupted and the JDK closed the channel", e);
        }
        if (e instanceof ClosedChannelException) {
            DeviceException c = closed();
            c.initCause(e);
            return c;
        }
        String message = String.valueOf(e.getMessage());
        if (message.contains("No space left") || message.contains("Disk quota exceeded")) {
            return new DeviceException(DeviceException.Kind.NO_SPACE, op + " on " + path + ": " + message, e);
        }
        return new DeviceException(DeviceException.Kind.IO_ERROR, op + " on " + path + ": " + message, e);
    }
}
