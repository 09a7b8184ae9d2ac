package dev.handoff.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.Stream;

/** Test images and file-system snapshots ("no file changed"). */
final class Images {
    private Images() {
    }

    /** A raw image of {@code size} bytes: seeded random data with every fourth MiB left as a hole. */
    static Path randomImage(Path path, long size, long seed) throws IOException {
        SplittableRandom random = new SplittableRandom(seed);
        byte[] block = new byte[1 << 20];
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            for (long off = 0, i = 0; off < size; off += block.length, i++) {
                int n = (int) Math.min(block.length, size - off);
                if (i % 4 == 3) {
                    continue;
                }
                random.nextBytes(block);
                ByteBuffer b = ByteBuffer.wrap(block, 0, n);
                while (b.hasRemaining()) {
                    ch.write(b, off + b.position());
                }
            }
            ch.truncate(size);
            if (ch.size() < size) {
                ch.write(ByteBuffer.wrap(new byte[1]), size - 1);
            }
        }
        return path;
    }

    static String sha256(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 20];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Every entry under {@code dir}: name → type, size, mtime, content hash. */
    static Map<String, String> snapshot(Path dir) throws IOException {
        Map<String, String> snap = new TreeMap<>();
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.toList()) {
                String key = dir.relativize(p).toString();
                if (Files.isSymbolicLink(p)) {
                    snap.put(key, "link -> " + Files.readSymbolicLink(p));
                } else if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
                    snap.put(key, "file " + Files.size(p) + " " + Files.getLastModifiedTime(p).toMillis() + " " + sha256(p));
                } else {
                    snap.put(key, Files.isDirectory(p) ? "dir" : "other");
                }
            }
        }
        return snap;
    }
}
