package dev.handoff.fs;

import java.net.URI;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.ProviderMismatchException;
import java.nio.file.WatchEvent;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/** A path of a {@link CrashFileSystem}: '/'-separated names; relative paths resolve against the root. */
final class CrashPath implements Path {
    private final CrashFileSystem fs;
    private final boolean absolute;
    private final List<String> names;

    CrashPath(CrashFileSystem fs, boolean absolute, List<String> names) {
        this.fs = fs;
        this.absolute = absolute;
        this.names = List.copyOf(names);
    }

    static CrashPath parse(CrashFileSystem fs, String s) {
        List<String> names = new ArrayList<>();
        for (String n : s.split("/")) {
            if (!n.isEmpty()) {
                names.add(n);
            }
        }
        return new CrashPath(fs, s.startsWith("/"), names);
    }

    private static CrashPath cast(Path p) {
        if (!(p instanceof CrashPath c)) {
            throw new ProviderMismatchException("not a crash file system path: " + p);
        }
        return c;
    }

    @Override
    public CrashFileSystem getFileSystem() {
        return fs;
    }

    @Override
    public boolean isAbsolute() {
        return absolute;
    }

    @Override
    public CrashPath getRoot() {
        return absolute ? new CrashPath(fs, true, List.of()) : null;
    }

    @Override
    public CrashPath getFileName() {
        return names.isEmpty() ? null : new CrashPath(fs, false, List.of(names.get(names.size() - 1)));
    }

    @Override
    public CrashPath getParent() {
        if (names.isEmpty() || (!absolute && names.size() == 1)) {
            return absolute && !names.isEmpty() ? getRoot() : null;
        }
        return new CrashPath(fs, absolute, names.subList(0, names.size() - 1));
    }

    @Override
    public int getNameCount() {
        return names.size();
    }

    @Override
    public CrashPath getName(int index) {
        return new CrashPath(fs, false, List.of(names.get(index)));
    }

    @Override
    public CrashPath subpath(int beginIndex, int endIndex) {
        return new CrashPath(fs, false, names.subList(beginIndex, endIndex));
    }

    @Override
    public boolean startsWith(Path other) {
        CrashPath o = cast(other);
        return o.absolute == absolute && o.names.size() <= names.size()
                && names.subList(0, o.names.size()).equals(o.names);
    }

    @Override
    public boolean endsWith(Path other) {
        CrashPath o = cast(other);
        if (o.absolute) {
            return equals(o);
        }
        return o.names.size() <= names.size() && names.subList(names.size() - o.names.size(), names.size()).equals(o.names);
    }

    @Override
    public CrashPath normalize() {
        List<String> out = new ArrayList<>();
        for (String n : names) {
            if (n.equals(".")) {
                continue;
            }
            if (n.equals("..") && !out.isEmpty() && !out.get(out.size() - 1).equals("..")) {
                out.remove(out.size() - 1);
            } else if (!(n.equals("..") && absolute)) {
                out.add(n);
            }
        }
        return new CrashPath(fs, absolute, out);
    }

    @Override
    public CrashPath resolve(Path other) {
        CrashPath o = cast(other);
        if (o.absolute) {
            return o;
        }
        List<String> all = new ArrayList<>(names);
        all.addAll(o.names);
        return new CrashPath(fs, absolute, all);
    }

    @Override
    public CrashPath relativize(Path other) {
        CrashPath o = cast(other);
        if (o.absolute != absolute) {
            throw new IllegalArgumentException("one path is absolute, the other is not");
        }
        int common = 0;
        while (common < names.size() && common < o.names.size() && names.get(common).equals(o.names.get(common))) {
            common++;
        }
        List<String> out = new ArrayList<>();
        for (int i = common; i < names.size(); i++) {
            out.add("..");
        }
        out.addAll(o.names.subList(common, o.names.size()));
        return new CrashPath(fs, false, out);
    }

    @Override
    public URI toUri() {
        return URI.create("crashfs:" + toAbsolutePath());
    }

    @Override
    public CrashPath toAbsolutePath() {
        return absolute ? this : new CrashPath(fs, true, names);
    }

    @Override
    public CrashPath toRealPath(LinkOption... options) {
        return toAbsolutePath().normalize();
    }

    @Override
    public WatchKey register(WatchService watcher, WatchEvent.Kind<?>[] events, WatchEvent.Modifier... modifiers) {
        throw new UnsupportedOperationException("watching");
    }

    @Override
    public int compareTo(Path other) {
        return toString().compareTo(cast(other).toString());
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof CrashPath p && p.fs == fs && p.absolute == absolute && p.names.equals(names);
    }

    @Override
    public int hashCode() {
        return Objects.hash(absolute, names);
    }

    @Override
    public String toString() {
        return (absolute ? "/" : "") + String.join("/", names);
    }
}
