package dev.handoff.fs;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.NonWritableChannelException;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.util.Arrays;

/**
 * A channel on a {@link CrashFileSystem} file, or on a directory (read-only; {@link #force} makes
 * the directory's entries durable). Every call holds the file system's monitor.
 */
final class CrashFileChannel extends FileChannel {
    private final CrashFileSystem fs;
    private final CrashPath path;
    private final CrashFileSystem.FileNode file;
    private final CrashFileSystem.DirNode dir;
    private final boolean writable;
    private final boolean append;
    private long position;

    CrashFileChannel(CrashFileSystem fs, CrashPath path, CrashFileSystem.FileNode file, CrashFileSystem.DirNode dir,
            boolean writable, boolean append) {
        this.fs = fs;
        this.path = path;
        this.file = file;
        this.dir = dir;
        this.writable = writable;
        this.append = append;
    }

    private CrashFileSystem.FileNode file() throws IOException {
        if (!isOpen()) {
            throw new ClosedChannelException();
        }
        if (file == null) {
            throw new IOException(path + ": is a directory");
        }
        return file;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        synchronized (fs) {
            int n = read(dst, position);
            if (n > 0) {
                position += n;
            }
            return n;
        }
    }

    @Override
    public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
        long total = 0;
        for (int i = offset; i < offset + length; i++) {
            int n = read(dsts[i]);
            if (n < 0) {
                return total == 0 ? -1 : total;
            }
            total += n;
        }
        return total;
    }

    @Override
    public int read(ByteBuffer dst, long at) throws IOException {
        synchronized (fs) {
            fs.checkPower("read " + path);
            byte[] data = file().data;
            if (at >= data.length) {
                return -1;
            }
            int n = (int) Math.min(dst.remaining(), data.length - at);
            dst.put(data, (int) at, n);
            return n;
        }
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        synchronized (fs) {
            if (append) {
                position = file().data.length;
            }
            int n = write(src, position);
            position += n;
            return n;
        }
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
        long total = 0;
        for (int i = offset; i < offset + length; i++) {
            total += write(srcs[i]);
        }
        return total;
    }

    @Override
    public int write(ByteBuffer src, long at) throws IOException {
        synchronized (fs) {
            CrashFileSystem.FileNode f = file();
            if (!writable) {
                throw new NonWritableChannelException();
            }
            fs.mutate("write " + path);
            int n = src.remaining();
            long end = at + n;
            if (end > f.data.length) {
                f.data = Arrays.copyOf(f.data, (int) end);
            }
            src.get(f.data, (int) at, n);
            return n;
        }
    }

    @Override
    public long position() throws IOException {
        synchronized (fs) {
            file();
            return position;
        }
    }

    @Override
    public FileChannel position(long newPosition) throws IOException {
        synchronized (fs) {
            file();
            position = newPosition;
            return this;
        }
    }

    @Override
    public long size() throws IOException {
        synchronized (fs) {
            return file().data.length;
        }
    }

    @Override
    public FileChannel truncate(long size) throws IOException {
        synchronized (fs) {
            CrashFileSystem.FileNode f = file();
            if (!writable) {
                throw new NonWritableChannelException();
            }
            if (size < f.data.length) {
                fs.mutate("truncate " + path);
                f.data = Arrays.copyOf(f.data, (int) size);
            }
            position = Math.min(position, size);
            return this;
        }
    }

    /** Makes the file's content, or the directory's entries, durable (both arguments alike). */
    @Override
    public void force(boolean metaData) throws IOException {
        synchronized (fs) {
            if (!isOpen()) {
                throw new ClosedChannelException();
            }
            fs.mutate("force " + path);
            if (dir != null) {
                dir.synced.clear();
                dir.synced.putAll(dir.entries);
            } else {
                file.synced = file.data.clone();
            }
        }
    }

    @Override
    public long transferTo(long position, long count, WritableByteChannel target) {
        throw new UnsupportedOperationException("transferTo");
    }

    @Override
    public long transferFrom(ReadableByteChannel src, long position, long count) {
        throw new UnsupportedOperationException("transferFrom");
    }

    @Override
    public MappedByteBuffer map(MapMode mode, long position, long size) {
        throw new UnsupportedOperationException("memory mapping");
    }

    /** Granted at once; excludes no one (see the file system's class comment). */
    @Override
    public FileLock lock(long position, long size, boolean shared) throws IOException {
        return tryLock(position, size, shared);
    }

    @Override
    public FileLock tryLock(long position, long size, boolean shared) throws IOException {
        synchronized (fs) {
            fs.checkPower("lock " + path);
            if (!isOpen()) {
                throw new ClosedChannelException();
            }
        }
        return new FileLock(this, position, size, shared) {
            private volatile boolean valid = true;

            @Override
            public boolean isValid() {
                return valid && channel().isOpen();
            }

            @Override
            public void release() {
                valid = false;
            }
        };
    }

    @Override
    protected void implCloseChannel() {
    }

    @Override
    public String toString() {
        return "CrashFileChannel[" + path + "]";
    }
}
