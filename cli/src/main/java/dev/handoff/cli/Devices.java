package dev.handoff.cli;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Regular files and block devices as images: what they are and how big, without opening them for writing. */
final class Devices {
    private static final int S_IFMT = 0170000;
    private static final int S_IFBLK = 0060000;

    private Devices() {
    }

    /** Whether {@code path} (following links) is a block device. */
    static boolean isBlockDevice(Path path) {
        try {
            int mode = (Integer) Files.getAttribute(path, "unix:mode");
            return (mode & S_IFMT) == S_IFBLK;
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return false;
        }
    }

    /** The size of a regular file, or of a block device (its capacity, which the file system reports as 0). */
    static long size(Path path) throws IOException {
        if (!isBlockDevice(path)) {
            return Files.size(path);
        }
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            return ch.size();
        }
    }

    /** Whether {@code path} exists, without following a final link. */
    static boolean existsNoFollow(Path path) {
        return Files.exists(path, LinkOption.NOFOLLOW_LINKS);
    }
}
