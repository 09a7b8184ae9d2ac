package dev.handoff.fs;

import java.io.IOException;
import java.nio.file.FileStore;
import java.nio.file.FileSystem;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.nio.file.WatchService;
import java.nio.file.attribute.UserPrincipalLookupService;
import java.nio.file.spi.FileSystemProvider;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * An in-memory file system that loses, at a simulated power loss, everything that was not synced:
 * a file keeps the content it had at its last {@code force}, a directory the entries it had at its
 * last {@code force} (a {@code FileChannel} opened on the directory, as POSIX code syncs a rename).
 * Code under test gets {@link Path}s of this file system and uses plain {@code java.nio.file}
 * calls ({@code FileChannel.open}, {@code Files.move}, {@code Files.readAllBytes}, ...), so the
 * production code needs no seam: the JDK routes every call through {@link CrashFileSystemProvider}.
 *
 * <h2>Crash model (the worst case a POSIX file system allows)</h2>
 * <ul>
 *   <li>{@code write} changes only the live content; {@code force} (either argument) makes the
 *       file's current content durable. A new file's durable content is empty.</li>
 *   <li>Creating, renaming and deleting change only the live entries of the directories involved;
 *       forcing a directory makes its current entries durable. A rename over an existing name is
 *       atomic: readers see the old file or the new one.</li>
 *   <li>{@link #crash()} replaces every directory's entries with its durable ones and every file's
 *       content with its durable content, from the root down: a file linked only by unsynced
 *       entries is gone, and a synced entry brings back the file it named then.</li>
 *   <li>{@link #powerLossAfter(int)} lets a given number of mutating calls (write, force, create,
 *       rename, delete, truncate) happen and makes the next one, and every call after it, fail
 *       with an {@code IOException} until {@link #crash()}: the code under test is cut off at
 *       that point, as by a power loss, and {@link #crash()} then shows what survives.</li>
 *   <li>{@link #failCall(String, int)} makes one mutating call of a kind (a write, a force, a
 *       rename, ...) fail with an {@code IOException} and change nothing, as a disk error would;
 *       the file system goes on working.</li>
 * </ul>
 * File locks are granted and released without excluding anyone: the in-process exclusion of the
 * code under test still applies. Thread-safe: every operation holds the file system's monitor.
 *
 * <p>Used by {@code SidecarRecordStoreCrashTest} (a record write must survive a power loss once it
 * returned, and be atomic at any point); meant for any Handoff code that persists state in files
 * (e.g. a persistent dirty bitmap), via the kernel's test-jar.
 */
public final class CrashFileSystem extends FileSystem {

    /** A file or a directory; identity is the inode. */
    abstract static class Node {
    }

    static final class FileNode extends Node {
        byte[] data = new byte[0];
        byte[] synced = new byte[0];
    }

    static final class DirNode extends Node {
        final Map<String, Node> entries = new HashMap<>();
        final Map<String, Node> synced = new HashMap<>();
    }

    private final CrashFileSystemProvider provider;
    private final DirNode root = new DirNode();
    private int mutationsLeft = -1; // -1: no power loss armed
    private String failCall; // null: no single failure armed
    private int failSkip;
    private boolean powerLost;
    private long mutations;

    /** An empty file system with a root directory. */
    public CrashFileSystem() {
        this.provider = new CrashFileSystemProvider(this);
    }

    /* ---- Test controls ---- */

    /**
     * Lets {@code n} more mutating calls through; the one after them, and every call after that,
     * fails with an {@code IOException} ("simulated power loss") until {@link #crash()}.
     */
    public synchronized void powerLossAfter(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("n must be >= 0");
        }
        mutationsLeft = n;
    }

    /**
     * Makes one mutating call of kind {@code call} ({@code "create"}, {@code "write"},
     * {@code "truncate"}, {@code "force"}, {@code "rename"}, {@code "delete"} or {@code "mkdir"})
     * fail with an {@code IOException} ("injected I/O error") and change nothing: the one after
     * {@code skip} calls of that kind have passed. Later calls work. Replaces a failure armed
     * before and not yet spent.
     */
    public synchronized void failCall(String call, int skip) {
        if (skip < 0) {
            throw new IllegalArgumentException("skip must be >= 0");
        }
        failCall = Objects.requireNonNull(call, "call");
        failSkip = skip;
    }

    /** Whether the power is lost (a {@link #powerLossAfter} cut hit) and {@link #crash()} not yet called. */
    public synchronized boolean powerLost() {
        return powerLost;
    }

    /** Whether a {@link #failCall} failure is armed and not yet spent. */
    public synchronized boolean failureArmed() {
        return failCall != null;
    }

    /** Mutating calls so far (to size a {@link #powerLossAfter} sweep). */
    public synchronized long mutations() {
        return mutations;
    }

    /** The power comes back: only what was synced is left, and the file system works again. */
    public synchronized void crash() {
        restore(root);
        failCall = null;
        powerLost = false;
        mutationsLeft = -1;
    }

    private static void restore(DirNode dir) {
        dir.entries.clear();
        dir.entries.putAll(dir.synced);
        for (Node n : dir.entries.values()) {
            if (n instanceof DirNode d) {
                restore(d);
            } else {
                FileNode f = (FileNode) n;
                f.data = f.synced.clone();
            }
        }
    }

    /** Creates {@code path} and its missing parents as directories, all synced (test set-up). */
    public synchronized Path createSyncedDirectories(String path) throws IOException {
        CrashPath p = CrashPath.parse(this, path).toAbsolutePath();
        DirNode dir = root;
        for (int i = 0; i < p.getNameCount(); i++) {
            String name = p.getName(i).toString();
            Node n = dir.entries.get(name);
            if (n == null) {
                n = new DirNode();
                dir.entries.put(name, n);
                dir.synced.put(name, n);
            } else if (!(n instanceof DirNode)) {
                throw new IOException(p + ": " + name + " is not a directory");
            }
            dir = (DirNode) n;
        }
        return p;
    }

    /* ---- Used by the provider and the channel, holding this monitor ---- */

    /** Counts a mutating call; throws if the power is (now) lost. */
    void mutate(String what) throws IOException {
        checkPower(what);
        if (failCall != null && what.startsWith(failCall + " ")) {
            if (failSkip == 0) {
                failCall = null;
                throw new IOException("injected I/O error (" + what + ")");
            }
            failSkip--;
        }
        if (mutationsLeft == 0) {
            powerLost = true;
            checkPower(what);
        }
        if (mutationsLeft > 0) {
            mutationsLeft--;
        }
        mutations++;
    }

    void checkPower(String what) throws IOException {
        if (powerLost) {
            throw new IOException("simulated power loss (" + what + ")");
        }
    }

    DirNode root() {
        return root;
    }

    /** The directory holding {@code p}'s last name; NoSuchFileException if a parent is missing. */
    DirNode parentOf(CrashPath p) throws IOException {
        CrashPath abs = p.toAbsolutePath();
        DirNode dir = root;
        for (int i = 0; i < abs.getNameCount() - 1; i++) {
            Node n = dir.entries.get(abs.getName(i).toString());
            if (!(n instanceof DirNode d)) {
                throw new NoSuchFileException(abs.toString());
            }
            dir = d;
        }
        return dir;
    }

    /** The node at {@code p}, or null. */
    Node lookup(CrashPath p) throws IOException {
        CrashPath abs = p.toAbsolutePath();
        if (abs.getNameCount() == 0) {
            return root;
        }
        try {
            return parentOf(abs).entries.get(abs.getFileName().toString());
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    /* ---- FileSystem ---- */

    @Override
    public FileSystemProvider provider() {
        return provider;
    }

    @Override
    public void close() {
    }

    @Override
    public boolean isOpen() {
        return true;
    }

    @Override
    public boolean isReadOnly() {
        return false;
    }

    @Override
    public String getSeparator() {
        return "/";
    }

    @Override
    public Iterable<Path> getRootDirectories() {
        return List.of(new CrashPath(this, true, List.of()));
    }

    @Override
    public Iterable<FileStore> getFileStores() {
        return List.of();
    }

    @Override
    public Set<String> supportedFileAttributeViews() {
        return Set.of("basic");
    }

    @Override
    public Path getPath(String first, String... more) {
        StringBuilder b = new StringBuilder(first);
        for (String m : more) {
            b.append('/').append(m);
        }
        return CrashPath.parse(this, b.toString());
    }

    @Override
    public PathMatcher getPathMatcher(String syntaxAndPattern) {
        throw new UnsupportedOperationException("path matchers");
    }

    @Override
    public UserPrincipalLookupService getUserPrincipalLookupService() {
        throw new UnsupportedOperationException("user principals");
    }

    @Override
    public WatchService newWatchService() {
        throw new UnsupportedOperationException("watch service");
    }
}
