package dev.handoff.cli;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import picocli.CommandLine;

/**
 * The image formats of {@code --format}: Handoff reads and writes raw images only. {@link #probe}
 * recognizes the headers of the formats QEMU probes (qcow, qcow2, vmdk, vhdx, vdi, vpc, qed, LUKS,
 * parallels, bochs), so that such an image is refused by name instead of being copied, or
 * overwritten, as if its bytes were a disk; {@code --format raw} says the bytes are the disk.
 */
enum ImageFormat {
    RAW;

    /** How many bytes of an image {@link #detect} looks at. */
    static final int PROBE_BYTES = 512;

    /**
     * The format whose header starts the file at {@code path}, or null if none does (raw). Opens its
     * own channel and closes it: call it before this process locks the file (POSIX locks go with
     * any channel that closes).
     */
    static String probe(Path path) throws IOException {
        ByteBuffer head = ByteBuffer.allocate(PROBE_BYTES);
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            while (head.hasRemaining() && ch.read(head, head.position()) > 0) {
                // fill what the file has
            }
        }
        head.flip();
        return detect(head);
    }

    /** The format whose header is at the start of {@code head}, or null. */
    static String detect(ByteBuffer head) {
        ByteBuffer b = head.duplicate().order(ByteOrder.BIG_ENDIAN);
        if (starts(b, "QFI\u00fb") && b.remaining() >= 8) {
            return b.getInt(b.position() + 4) == 1 ? "qcow" : "qcow2";
        }
        if (starts(b, "KDMV") || starts(b, "COWD") || starts(b, "# Disk DescriptorFile")) {
            return "vmdk";
        }
        if (starts(b, "vhdxfile")) {
            return "vhdx";
        }
        if (b.remaining() >= 0x44 && b.order(ByteOrder.LITTLE_ENDIAN).getInt(b.position() + 0x40) == 0xbeda107f) {
            return "vdi";
        }
        b.order(ByteOrder.BIG_ENDIAN);
        if (starts(b, "conectix")) {
            return "vpc";
        }
        if (starts(b, "QED\0")) {
            return "qed";
        }
        if (starts(b, "LUKS\u00ba\u00be")) {
            return "luks";
        }
        if (starts(b, "WithoutFreeSpace") || starts(b, "WithouFreSpacExt")) {
            return "parallels";
        }
        if (starts(b, "Bochs Virtual HD Image")) {
            return "bochs";
        }
        return null;
    }

    private static boolean starts(ByteBuffer b, String magic) {
        byte[] m = magic.getBytes(StandardCharsets.ISO_8859_1);
        if (b.remaining() < m.length) {
            return false;
        }
        for (int i = 0; i < m.length; i++) {
            if (b.get(b.position() + i) != m[i]) {
                return false;
            }
        }
        return true;
    }

    /** What to tell a user whose {@code role} image {@code path} turned out to be in {@code format}. */
    static String refusal(String role, Path path, String format) {
        return role + " " + path + " is a " + format + " image, not raw: Handoff mirrors raw images only and would"
                + " treat its " + format + " metadata as disk data (convert it with `qemu-img convert -O raw`, or"
                + " give --format raw if its bytes really are the disk)";
    }

    /** Parses {@code --format}: raw, or a usage error naming what Handoff does instead. */
    static final class Converter implements CommandLine.ITypeConverter<ImageFormat> {
        @Override
        public ImageFormat convert(String value) {
            if (value.trim().equalsIgnoreCase("raw")) {
                return RAW;
            }
            throw new CommandLine.TypeConversionException("'" + value + "' is not supported: Handoff reads and writes"
                    + " raw images only (convert with `qemu-img convert -O raw`)");
        }
    }
}
