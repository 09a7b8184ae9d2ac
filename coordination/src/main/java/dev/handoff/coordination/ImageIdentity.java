package dev.handoff.coordination;

import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * Which image a PATH belongs to: the image's name (its file name, the same on every host that
 * holds it) and its size in bytes, kept as the data of the PATH znode itself by the first
 * activation and compared by every holder afterwards, so that two images never share one
 * ownership record.
 *
 * <p>Text, UTF-8: {@code handoff-image 1\nname=NAME\nsize=BYTES\n}.
 *
 * @param name the image's name, without '\n'
 * @param size its size in bytes
 */
public record ImageIdentity(String name, long size) {
    private static final String HEADER = "handoff-image 1";

    public ImageIdentity {
        Objects.requireNonNull(name, "name");
        if (name.isEmpty() || name.indexOf('\n') >= 0) {
            throw new IllegalArgumentException("an image name is one non-empty line, got '" + name + "'");
        }
        if (size < 0) {
            throw new IllegalArgumentException("negative size " + size);
        }
    }

    byte[] encode() {
        return (HEADER + "\nname=" + name + "\nsize=" + size + "\n").getBytes(StandardCharsets.UTF_8);
    }

    /** Parses what {@link #encode} wrote; {@code null} if {@code bytes} is not an identity (an empty PATH znode, say). */
    static ImageIdentity decode(byte[] bytes) {
        if (bytes == null) {
            return null;
        }
        String[] lines = new String(bytes, StandardCharsets.UTF_8).split("\n");
        if (lines.length != 3 || !lines[0].equals(HEADER) || !lines[1].startsWith("name=") || !lines[2].startsWith("size=")) {
            return null;
        }
        try {
            return new ImageIdentity(lines[1].substring(5), Long.parseLong(lines[2].substring(5)));
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /** "disk.img (1073741824 bytes)". */
    @Override
    public String toString() {
        return "'" + name + "' (" + size + " bytes)";
    }
}
