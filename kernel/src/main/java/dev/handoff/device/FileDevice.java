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
 * A raw image file: byte {@code i} of the device is byte {@code i} of the file. Positional
 * {@link FileChannel} I/O, so concurrent operations need no lock; {@link #flush()} is
 * {@link FileChannel#force(boolean) force(true)}.
 *
 * <p>The device's size is the file's size when opened. A thread interrupted during I/O makes the
 * JDK close the channel ({@link ClosedByInterruptException}); the kernel never interrupts I/O
 * threads, and embedders should not either.
 *
 * <p>{@link #channel()} exposes the one channel this device holds, so the ownership layer can
 * take its byte-range locks on it: POSIX record locks are dropped when <em>any</em> channel to the
 * file in this process is closed, so a second channel must never be opened.
 */
public final class FileDevice implements BlockDevice {
    private static final int ZERO_CHUNK = 1 << 20;
    private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(ZERO_CHUNK).asReadOnlyBuffer();

    private final Path path;
    private final FileChannel channel;
    private final long size;
    private final boolean readOnly;

    private FileDevice(Path path, FileChannel channel, long size, boolean readOnly) {
        this.path = path;
        this.channel = channel;
        this.size = size;
        this.readOnly = readOnly;
    }

    /** Opens an existing raw image for reading and writing. */
    public static FileDevice open(Path path) throws DeviceException {
        return open(path, false);
    }

    /** Opens an existing raw image, read-only if asked. */
    public static FileDevice open(Path path, boolean readOnly) throws DeviceException {
        try {
            FileChannel channel = readOnly
                    ? FileChannel.open(path, StandardOpenOption.READ)
                    : FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
            return new FileDevice(path, channel, channel.size(), readOnly);
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
                // Writing the last byte sets the size; the rest stays a hole.
                channel.write(ByteBuffer.wrap(new byte[1]), size - 1);
            }
            return new FileDevice(path, channel, size, false);
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

    @Override
    public long size() {
        return size;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        DeviceException.checkRange(offset, dst.remaining(), size);
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
        DeviceException.checkRange(offset, src.remaining(), size);
        try {
            long pos = offset;
            while (src.hasRemaining()) {
                pos += channel.write(src, pos);
            }
        } catch (IOException e) {
            throw map("write", e);
        }
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        ensureWritable();
        DeviceException.checkRange(offset, length, size);
        long pos = offset;
        long end = offset + length;
        try {
            while (pos < end) {
                ByteBuffer zeroes = ZEROES.duplicate();
                zeroes.limit((int) Math.min(ZERO_CHUNK, end - pos));
                while (zeroes.hasRemaining()) {
                    pos += channel.write(zeroes, pos);
                }
            }
        } catch (IOException e) {
            throw map("write-zeroes", e);
        }
    }

    /** Advisory and a no-op for raw files: Java has no portable hole punching. */
    @Override
    public void discard(long offset, long length) throws DeviceException {
        ensureWritable();
        DeviceException.checkRange(offset, length, size);
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
        return "FileDevice[" + path + ", " + size + " bytes" + (readOnly ? ", read-only" : "") + "]";
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
