package dev.handoff.ownership;

import dev.handoff.device.DeviceException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Objects;
import java.util.zip.CRC32C;

/**
 * Who owns an image and since when: the value stored in the image's ownership record.
 *
 * <ul>
 *   <li>{@code epoch}: bumped by every activation, never decreasing; 0 means never activated.
 *       The fencing token of {@link OwnedImage}.</li>
 *   <li>{@code ownerId}: who activated with that epoch.</li>
 *   <li>{@code clean}: the owner flushed its data and wrote this record on inactivation or close.
 *       A record left unclean means the owner is active, or died while active.</li>
 * </ul>
 *
 * <h2>On-disk layout</h2>
 * A file image's record lives in a sidecar file next to it, {@code <image>.owner}
 * ({@link #sidecarOf}). Big-endian, {@code 22 + n} bytes, nothing else in the file:
 * <pre>
 *  0       4       6       8                               16      18           18+n     22+n
 *  +-------+-------+-------+-------------------------------+-------+-------------+--------+
 *  | magic |version| flags |          epoch (u64)          |   n   | owner id    | crc32c |
 *  | HOWN  |  u16  |  u16  |                               |  u16  | UTF-8, n B  |  u32   |
 *  +-------+-------+-------+-------------------------------+-------+-------------+--------+
 *
 *  magic   0x484F574E ("HOWN")
 *  version 1
 *  flags   bit 0 = clean; the other bits are zero in version 1 (a reader refuses others)
 *  epoch   0 .. 2^63-1
 *  n       length of the owner id in bytes, 0 .. 255
 *  crc32c  CRC-32C of bytes [0, 18+n)
 * </pre>
 * A missing sidecar reads as {@link #ABSENT} (epoch 0). A sidecar that is short, long, has the
 * wrong magic, an unknown version or flag, or a bad checksum is refused as corrupt rather than
 * read as epoch 0, which would let epochs go backwards.
 *
 * <p>The record is replaced crash-safely: the new bytes go to a temporary file in the same
 * directory, which is fsynced, atomically renamed over the sidecar, and the directory is fsynced.
 * A crash leaves either the old or the new record (and perhaps a stray temporary file, which is
 * never read).
 *
 * @param epoch   activation count, at least 0
 * @param ownerId owner id, at most {@value #MAX_OWNER_ID_BYTES} bytes of UTF-8
 * @param clean   whether the owner flushed and let go
 */
public record OwnershipRecord(long epoch, String ownerId, boolean clean) {

    /** The record of an image that was never activated. */
    public static final OwnershipRecord ABSENT = new OwnershipRecord(0, "", true);

    /** Longest owner id, in UTF-8 bytes. */
    public static final int MAX_OWNER_ID_BYTES = 255;

    static final int MAGIC = 0x484F574E;
    static final int VERSION = 1;
    static final int FLAG_CLEAN = 1;
    static final int HEADER_BYTES = 18;
    static final int CHECKSUM_BYTES = 4;
    static final String SIDECAR_SUFFIX = ".owner";

    public OwnershipRecord {
        if (epoch < 0) {
            throw new IllegalArgumentException("epoch must be >= 0, got " + epoch);
        }
        Objects.requireNonNull(ownerId, "ownerId");
        if (ownerId.getBytes(StandardCharsets.UTF_8).length > MAX_OWNER_ID_BYTES) {
            throw new IllegalArgumentException("owner id longer than " + MAX_OWNER_ID_BYTES + " bytes: " + ownerId);
        }
    }

    /** The sidecar file that holds the record of the image file {@code image}. */
    public static Path sidecarOf(Path image) {
        Path name = image.getFileName();
        if (name == null) {
            throw new IllegalArgumentException("not a file: " + image);
        }
        return image.resolveSibling(name + SIDECAR_SUFFIX);
    }

    /** This record with {@code clean} set as given. */
    OwnershipRecord withClean(boolean value) {
        return value == clean ? this : new OwnershipRecord(epoch, ownerId, value);
    }

    /** The bytes of the layout above (what a {@link RecordStore} outside the kernel may store). */
    public byte[] encode() {
        byte[] id = ownerId.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(HEADER_BYTES + id.length + CHECKSUM_BYTES);
        b.putInt(MAGIC).putShort((short) VERSION).putShort((short) (clean ? FLAG_CLEAN : 0)).putLong(epoch)
                .putShort((short) id.length).put(id);
        CRC32C crc = new CRC32C();
        crc.update(b.array(), 0, b.position());
        b.putInt((int) crc.getValue());
        return b.array();
    }

    /**
     * Parses the layout above.
     *
     * @param source names the bytes' origin in error messages
     * @throws DeviceException of kind {@link DeviceException.Kind#IO_ERROR} if the bytes are not
     *     exactly one valid record
     */
    public static OwnershipRecord decode(byte[] bytes, String source) throws DeviceException {
        if (bytes.length < HEADER_BYTES + CHECKSUM_BYTES) {
            throw corrupt(source, "too short (" + bytes.length + " bytes)");
        }
        ByteBuffer b = ByteBuffer.wrap(bytes);
        int magic = b.getInt();
        if (magic != MAGIC) {
            throw corrupt(source, "bad magic 0x" + Integer.toHexString(magic));
        }
        int version = Short.toUnsignedInt(b.getShort());
        if (version != VERSION) {
            throw corrupt(source, "unsupported version " + version);
        }
        int flags = Short.toUnsignedInt(b.getShort());
        long epoch = b.getLong();
        int n = Short.toUnsignedInt(b.getShort());
        if (bytes.length != HEADER_BYTES + n + CHECKSUM_BYTES) {
            throw corrupt(source, "length " + bytes.length + " does not match an owner id of " + n + " bytes");
        }
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, HEADER_BYTES + n);
        int expected = ByteBuffer.wrap(bytes, HEADER_BYTES + n, CHECKSUM_BYTES).getInt();
        if ((int) crc.getValue() != expected) {
            throw corrupt(source, "checksum mismatch");
        }
        if ((flags & ~FLAG_CLEAN) != 0) {
            throw corrupt(source, "unknown flags 0x" + Integer.toHexString(flags));
        }
        if (epoch < 0 || n > MAX_OWNER_ID_BYTES) {
            throw corrupt(source, "epoch or owner id out of range");
        }
        String owner = new String(bytes, HEADER_BYTES, n, StandardCharsets.UTF_8);
        return new OwnershipRecord(epoch, owner, (flags & FLAG_CLEAN) != 0);
    }

    private static DeviceException corrupt(String source, String why) {
        return new DeviceException(DeviceException.Kind.IO_ERROR, "ownership record " + source + " is corrupt: " + why);
    }
}
