package dev.handoff.mirror;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Objects;
import java.util.zip.CRC32C;

/**
 * The header of a persistent write-intent bitmap (DESIGN §2.10): which images it belongs to, its
 * layout, and which run of a job wrote it last. Immutable.
 *
 * <ul>
 *   <li><b>Identity</b>: the sizes of source and target and two opaque strings naming them (the
 *       CLI uses the canonical path and the file's inode); a bitmap is refused for other images.</li>
 *   <li><b>Layout</b>: one bit per region of {@link #regionSize()} bytes of the source, a power of
 *       two and a multiple of the job's chunk size.</li>
 *   <li><b>Generation</b>: 1 when created, one more at every rewrite of the header (a job opening
 *       it, a clean stop). Two header slots alternate by generation, so rewriting the header never
 *       tears the one in force: the valid slot of the higher generation is the header.</li>
 *   <li><b>State</b>: {@link State#ACTIVE} while a job may be writing the images (after a crash it
 *       stays so), {@link State#STOPPED} once a job stopped cleanly, with the images' stamps at that
 *       moment (the CLI uses modification times): a bitmap whose image changed after a clean stop
 *       no longer says what differs, and is refused as stale.</li>
 * </ul>
 */
public final class BitmapHeader {
    /** The file format version this kernel writes and reads. */
    public static final int VERSION = 1;
    /** Bytes of one header slot; two slots precede the bits. */
    static final int SLOT_BYTES = 2048;
    /** The most UTF-8 bytes of an image identity string. */
    public static final int MAX_ID_BYTES = 512;
    static final byte[] MAGIC = "HOFFWIB\n".getBytes(StandardCharsets.US_ASCII);

    /** Whether a job may have been writing the images when the header was last written. */
    public enum State {
        /** A job had it open: after a crash, the bits (and nothing else) say what may differ. */
        ACTIVE,
        /** The job stopped cleanly; the stamps are the images' at that moment. */
        STOPPED
    }

    private final long sourceSize;
    private final long targetSize;
    private final int regionSize;
    private final String sourceId;
    private final String targetId;
    private final long generation;
    private final State state;
    private final long sourceStamp;
    private final long targetStamp;

    /**
     * A header of generation 1, ACTIVE.
     *
     * @throws IllegalArgumentException on a negative size, a region size that is not a power of two of
     *         at least 512 bytes, or an identity longer than {@value #MAX_ID_BYTES} UTF-8 bytes
     */
    public static BitmapHeader create(long sourceSize, long targetSize, int regionSize, String sourceId,
            String targetId) {
        return new BitmapHeader(sourceSize, targetSize, regionSize, sourceId, targetId, 1, State.ACTIVE, 0, 0);
    }

    BitmapHeader(long sourceSize, long targetSize, int regionSize, String sourceId, String targetId,
            long generation, State state, long sourceStamp, long targetStamp) {
        if (sourceSize < 0 || targetSize < 0) {
            throw new IllegalArgumentException("image sizes must be >= 0, got " + sourceSize + " and " + targetSize);
        }
        if (regionSize < MirrorOptions.MIN_GRANULARITY || Integer.bitCount(regionSize) != 1) {
            throw new IllegalArgumentException("the bitmap's region size must be a power of two of at least "
                    + MirrorOptions.MIN_GRANULARITY + " bytes, got " + regionSize);
        }
        checkId("source", sourceId);
        checkId("target", targetId);
        if (generation < 1) {
            throw new IllegalArgumentException("generation must be >= 1, got " + generation);
        }
        this.sourceSize = sourceSize;
        this.targetSize = targetSize;
        this.regionSize = regionSize;
        this.sourceId = sourceId;
        this.targetId = targetId;
        this.generation = generation;
        this.state = Objects.requireNonNull(state, "state");
        this.sourceStamp = sourceStamp;
        this.targetStamp = targetStamp;
    }

    private static void checkId(String which, String id) {
        Objects.requireNonNull(id, which + " identity");
        if (id.getBytes(StandardCharsets.UTF_8).length > MAX_ID_BYTES) {
            throw new IllegalArgumentException("the " + which + " identity is longer than " + MAX_ID_BYTES + " bytes");
        }
    }

    public long sourceSize() {
        return sourceSize;
    }

    public long targetSize() {
        return targetSize;
    }

    /** Bytes of the source one bit stands for. */
    public int regionSize() {
        return regionSize;
    }

    /** Regions of the source: one bit each (the last region may be partial). */
    public long regionCount() {
        return (sourceSize + regionSize - 1) / regionSize;
    }

    public String sourceId() {
        return sourceId;
    }

    public String targetId() {
        return targetId;
    }

    /** 1 at creation, one more per rewrite of the header. */
    public long generation() {
        return generation;
    }

    public State state() {
        return state;
    }

    /** The source's stamp at the last clean stop; 0 while ACTIVE. */
    public long sourceStamp() {
        return sourceStamp;
    }

    /** The target's stamp at the last clean stop; 0 while ACTIVE. */
    public long targetStamp() {
        return targetStamp;
    }

    /** This header, opened by one more job: the next generation, ACTIVE. */
    BitmapHeader nextGeneration() {
        return new BitmapHeader(sourceSize, targetSize, regionSize, sourceId, targetId, generation + 1, State.ACTIVE,
                0, 0);
    }

    /** This header after a clean stop with the images' stamps: the next generation, STOPPED. */
    BitmapHeader stopped(long source, long target) {
        return new BitmapHeader(sourceSize, targetSize, regionSize, sourceId, targetId, generation + 1, State.STOPPED,
                source, target);
    }

    /** Whether this header names the same images and layout as {@code other} (generation and state aside). */
    public boolean sameImages(BitmapHeader other) {
        return sourceSize == other.sourceSize && targetSize == other.targetSize && sourceId.equals(other.sourceId)
                && targetId.equals(other.targetId);
    }

    /* ---- Encoding: one slot of SLOT_BYTES, little-endian, CRC-32C in the last four bytes ---- */

    byte[] encode() {
        ByteBuffer b = ByteBuffer.allocate(SLOT_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        b.put(MAGIC);
        b.putInt(VERSION);
        b.putInt(SLOT_BYTES);
        b.putLong(generation);
        b.putInt(state.ordinal());
        b.putInt(regionSize);
        b.putLong(sourceSize);
        b.putLong(targetSize);
        b.putLong(regionCount());
        b.putLong(sourceStamp);
        b.putLong(targetStamp);
        putString(b, sourceId);
        putString(b, targetId);
        CRC32C crc = new CRC32C();
        crc.update(b.array(), 0, SLOT_BYTES - 4);
        b.putInt(SLOT_BYTES - 4, (int) crc.getValue());
        return b.array();
    }

    private static void putString(ByteBuffer b, String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        b.putShort((short) bytes.length);
        b.put(bytes);
    }

    /** What {@link #decode} found in a slot. */
    enum SlotKind { VALID, EMPTY, CORRUPT, NEWER_VERSION }

    /** A decoded slot: its kind, and the header if VALID; {@code version} if NEWER_VERSION. */
    record Slot(SlotKind kind, BitmapHeader header, int version) {
    }

    static Slot decode(byte[] slot) {
        if (slot.length < SLOT_BYTES) {
            return new Slot(SlotKind.CORRUPT, null, 0);
        }
        boolean empty = true;
        for (byte x : slot) {
            if (x != 0) {
                empty = false;
                break;
            }
        }
        if (empty) {
            return new Slot(SlotKind.EMPTY, null, 0);
        }
        ByteBuffer b = ByteBuffer.wrap(slot, 0, SLOT_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        byte[] magic = new byte[MAGIC.length];
        b.get(magic);
        if (!java.util.Arrays.equals(magic, MAGIC)) {
            return new Slot(SlotKind.CORRUPT, null, 0);
        }
        CRC32C crc = new CRC32C();
        crc.update(slot, 0, SLOT_BYTES - 4);
        if ((int) crc.getValue() != b.getInt(SLOT_BYTES - 4)) {
            return new Slot(SlotKind.CORRUPT, null, 0);
        }
        int version = b.getInt();
        if (version != VERSION) {
            return new Slot(version > VERSION ? SlotKind.NEWER_VERSION : SlotKind.CORRUPT, null, version);
        }
        try {
            if (b.getInt() != SLOT_BYTES) {
                return new Slot(SlotKind.CORRUPT, null, 0);
            }
            long generation = b.getLong();
            int stateOrdinal = b.getInt();
            int regionSize = b.getInt();
            long sourceSize = b.getLong();
            long targetSize = b.getLong();
            long regionCount = b.getLong();
            long sourceStamp = b.getLong();
            long targetStamp = b.getLong();
            String sourceId = getString(b);
            String targetId = getString(b);
            if (stateOrdinal < 0 || stateOrdinal >= State.values().length) {
                return new Slot(SlotKind.CORRUPT, null, 0);
            }
            BitmapHeader h = new BitmapHeader(sourceSize, targetSize, regionSize, sourceId, targetId, generation,
                    State.values()[stateOrdinal], sourceStamp, targetStamp);
            if (h.regionCount() != regionCount) {
                return new Slot(SlotKind.CORRUPT, null, 0);
            }
            return new Slot(SlotKind.VALID, h, VERSION);
        } catch (RuntimeException e) { // a length past the slot, a bad size: a checksum collision
            return new Slot(SlotKind.CORRUPT, null, 0);
        }
    }

    private static String getString(ByteBuffer b) {
        int n = Short.toUnsignedInt(b.getShort());
        if (n > MAX_ID_BYTES) {
            throw new IllegalArgumentException("identity too long");
        }
        byte[] bytes = new byte[n];
        b.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof BitmapHeader h && sameImages(h) && regionSize == h.regionSize
                && generation == h.generation && state == h.state && sourceStamp == h.sourceStamp
                && targetStamp == h.targetStamp;
    }

    @Override
    public int hashCode() {
        return Objects.hash(sourceSize, targetSize, regionSize, sourceId, targetId, generation, state);
    }

    @Override
    public String toString() {
        return "BitmapHeader[generation " + generation + ", " + state + ", source " + sourceId + " (" + sourceSize
                + " bytes), target " + targetId + " (" + targetSize + " bytes), region " + regionSize + " bytes]";
    }
}
