package dev.handoff.fs;

import java.io.IOException;
import java.net.URI;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.AccessMode;
import java.nio.file.CopyOption;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileStore;
import java.nio.file.FileSystem;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.ProviderMismatchException;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.FileAttributeView;
import java.nio.file.attribute.FileTime;
import java.nio.file.spi.FileSystemProvider;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The provider behind {@link CrashFileSystem}: every {@code java.nio.file} call on one of its
 * paths lands here, under the file system's monitor. Supports what code that persists small files
 * needs: file channels (read, write, force, truncate, locks), byte channels, directory channels
 * (to force a directory), create, delete, atomic rename, listing and basic attributes.
 */
final class CrashFileSystemProvider extends FileSystemProvider {
    private final CrashFileSystem fs;

    CrashFileSystemProvider(CrashFileSystem fs) {
        this.fs = fs;
    }

    private CrashPath cast(Path p) {
        if (!(p instanceof CrashPath c) || c.getFileSystem() != fs) {
            throw new ProviderMismatchException("not a path of this crash file system: " + p);
        }
        return c;
    }

    @Override
    public String getScheme() {
        return "crashfs";
    }

    @Override
    public FileSystem newFileSystem(URI uri, Map<String, ?> env) {
        throw new UnsupportedOperationException("construct a CrashFileSystem directly");
    }

    @Override
    public FileSystem getFileSystem(URI uri) {
        throw new UnsupportedOperationException("construct a CrashFileSystem directly");
    }

    @Override
    public Path getPath(URI uri) {
        throw new UnsupportedOperationException("crash file system paths come from its getPath");
    }

    @Override
    public SeekableByteChannel newByteChannel(Path path, Set<? extends OpenOption> options, FileAttribute<?>... attrs)
            throws IOException {
        return newFileChannel(path, options, attrs);
    }

    @Override
    public FileChannel newFileChannel(Path path, Set<? extends OpenOption> options, FileAttribute<?>... attrs)
            throws IOException {
        CrashPath p = cast(path).toAbsolutePath();
        synchronized (fs) {
            fs.checkPower("open " + p);
            boolean write = options.contains(StandardOpenOption.WRITE) || options.contains(StandardOpenOption.APPEND);
            CrashFileSystem.Node n = fs.lookup(p);
            if (n instanceof CrashFileSystem.DirNode dir) {
                if (write) {
                    throw new IOException(p + ": is a directory");
                }
                return new CrashFileChannel(fs, p, null, dir, false, false);
            }
            CrashFileSystem.FileNode f = (CrashFileSystem.FileNode) n;
            if (f == null) {
                if (!write || !(options.contains(StandardOpenOption.CREATE)
                        || options.contains(StandardOpenOption.CREATE_NEW))) {
                    throw new NoSuchFileException(p.toString());
                }
                CrashFileSystem.DirNode parent = fs.parentOf(p);
                fs.mutate("create " + p);
                f = new CrashFileSystem.FileNode();
                parent.entries.put(p.getFileName().toString(), f);
            } else if (options.contains(StandardOpenOption.CREATE_NEW)) {
                throw new FileAlreadyExistsException(p.toString());
            } else if (write && options.contains(StandardOpenOption.TRUNCATE_EXISTING) && f.data.length > 0) {
                fs.mutate("truncate " + p);
                f.data = new byte[0];
            }
            return new CrashFileChannel(fs, p, f, null, write, options.contains(StandardOpenOption.APPEND));
        }
    }

    @Override
    public DirectoryStream<Path> newDirectoryStream(Path dir, DirectoryStream.Filter<? super Path> filter)
            throws IOException {
        CrashPath p = cast(dir).toAbsolutePath();
        List<Path> listed = new ArrayList<>();
        synchronized (fs) {
            fs.checkPower("list " + p);
            if (!(fs.lookup(p) instanceof CrashFileSystem.DirNode d)) {
                throw new NoSuchFileException(p.toString());
            }
            for (String name : d.entries.keySet()) {
                Path child = p.resolve(name);
                if (filter.accept(child)) {
                    listed.add(child);
                }
            }
        }
        listed.sort(null);
        return new DirectoryStream<>() {
            @Override
            public Iterator<Path> iterator() {
                return listed.iterator();
            }

            @Override
            public void close() {
            }
        };
    }

    @Override
    public void createDirectory(Path dir, FileAttribute<?>... attrs) throws IOException {
        CrashPath p = cast(dir).toAbsolutePath();
        synchronized (fs) {
            fs.checkPower("mkdir " + p);
            CrashFileSystem.DirNode parent = fs.parentOf(p);
            String name = p.getFileName().toString();
            if (parent.entries.containsKey(name)) {
                throw new FileAlreadyExistsException(p.toString());
            }
            fs.mutate("mkdir " + p);
            parent.entries.put(name, new CrashFileSystem.DirNode());
        }
    }

    @Override
    public void delete(Path path) throws IOException {
        CrashPath p = cast(path).toAbsolutePath();
        synchronized (fs) {
            fs.checkPower("delete " + p);
            CrashFileSystem.Node n = fs.lookup(p);
            if (n == null) {
                throw new NoSuchFileException(p.toString());
            }
            if (n instanceof CrashFileSystem.DirNode d && !d.entries.isEmpty()) {
                throw new DirectoryNotEmptyException(p.toString());
            }
            fs.mutate("delete " + p);
            fs.parentOf(p).entries.remove(p.getFileName().toString());
        }
    }

    @Override
    public void copy(Path source, Path target, CopyOption... options) {
        throw new UnsupportedOperationException("copy");
    }

    /** A rename: atomic (readers see the old entry or the new), durable once both directories are forced. */
    @Override
    public void move(Path source, Path target, CopyOption... options) throws IOException {
        CrashPath from = cast(source).toAbsolutePath();
        CrashPath to = cast(target).toAbsolutePath();
        boolean replace = Arrays.asList(options).contains(StandardCopyOption.REPLACE_EXISTING)
                || Arrays.asList(options).contains(StandardCopyOption.ATOMIC_MOVE);
        synchronized (fs) {
            fs.checkPower("rename " + from);
            CrashFileSystem.Node n = fs.lookup(from);
            if (n == null) {
                throw new NoSuchFileException(from.toString());
            }
            CrashFileSystem.DirNode toDir = fs.parentOf(to);
            if (toDir.entries.containsKey(to.getFileName().toString()) && !replace) {
                throw new FileAlreadyExistsException(to.toString());
            }
            fs.mutate("rename " + from + " to " + to);
            fs.parentOf(from).entries.remove(from.getFileName().toString());
            toDir.entries.put(to.getFileName().toString(), n);
        }
    }

    @Override
    public boolean isSameFile(Path path, Path path2) throws IOException {
        synchronized (fs) {
            CrashFileSystem.Node a = fs.lookup(cast(path));
            return a != null && a == fs.lookup(cast(path2));
        }
    }

    @Override
    public boolean isHidden(Path path) {
        CrashPath name = cast(path).getFileName();
        return name != null && name.toString().startsWith(".");
    }

    @Override
    public FileStore getFileStore(Path path) {
        throw new UnsupportedOperationException("file stores");
    }

    @Override
    public void checkAccess(Path path, AccessMode... modes) throws IOException {
        synchronized (fs) {
            if (fs.lookup(cast(path)) == null) {
                throw new NoSuchFileException(path.toString());
            }
        }
    }

    @Override
    public <V extends FileAttributeView> V getFileAttributeView(Path path, Class<V> type, LinkOption... options) {
        return null;
    }

    @Override
    @SuppressWarnings("unchecked")
    public <A extends BasicFileAttributes> A readAttributes(Path path, Class<A> type, LinkOption... options)
            throws IOException {
        if (!type.isAssignableFrom(BasicFileAttributes.class)) {
            throw new UnsupportedOperationException("attributes " + type);
        }
        CrashFileSystem.Node n;
        long size;
        synchronized (fs) {
            n = fs.lookup(cast(path));
            if (n == null) {
                throw new NoSuchFileException(path.toString());
            }
            size = n instanceof CrashFileSystem.FileNode f ? f.data.length : 0;
        }
        boolean dir = n instanceof CrashFileSystem.DirNode;
        FileTime zero = FileTime.fromMillis(0);
        return (A) new BasicFileAttributes() {
            public FileTime lastModifiedTime() {
                return zero;
            }

            public FileTime lastAccessTime() {
                return zero;
            }

            public FileTime creationTime() {
                return zero;
            }

            public boolean isRegularFile() {
                return !dir;
            }

            public boolean isDirectory() {
                return dir;
            }

            public boolean isSymbolicLink() {
                return false;
            }

            public boolean isOther() {
                return false;
            }

            public long size() {
                return size;
            }

            public Object fileKey() {
                return System.identityHashCode(n);
            }
        };
    }

    @Override
    public Map<String, Object> readAttributes(Path path, String attributes, LinkOption... options) throws IOException {
        int colon = attributes.indexOf(':');
        if (colon >= 0 && !attributes.substring(0, colon).equals("basic")) {
            // As the JDK's providers do for a view they lack (FileDevice asks for "unix:mode").
            throw new UnsupportedOperationException("attribute view " + attributes.substring(0, colon));
        }
        BasicFileAttributes a = readAttributes(path, BasicFileAttributes.class, options);
        Map<String, Object> m = new HashMap<>();
        m.put("size", a.size());
        m.put("isDirectory", a.isDirectory());
        m.put("isRegularFile", a.isRegularFile());
        m.put("isSymbolicLink", false);
        m.put("isOther", false);
        m.put("lastModifiedTime", a.lastModifiedTime());
        return m;
    }

    @Override
    public void setAttribute(Path path, String attribute, Object value, LinkOption... options) {
        throw new UnsupportedOperationException("setting attributes");
    }
}
