package dev.handoff.testkit;

import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import java.util.zip.CRC32C;

/**
 * The checksummed blocks the concurrent checks write: the device is cut into slots of
 * {@link #SLOT} bytes (odd, so slots straddle every power-of-two boundary a device may have), and
 * version {@code v} of slot {@code s} is a header (slot, version), bytes drawn from the seed, the
 * slot and the version, and a CRC32C of all that. Version 0 is all zeroes (the fresh device).
 * Any version can be regenerated, so a check keeps only version numbers, and a block read back
 * can be named: whose it is, which version, intact or torn.
 */
final class Blocks {
    /** Bytes per slot: odd, a little over 4 KiB. */
    static final int SLOT = 4099;
    private static final int HEADER = 8;
    private static final int TRAILER = 8;

    private final long seed;

    Blocks(long seed) {
        this.seed = seed;
    }

    static long offsetOf(int slot) {
        return (long) slot * SLOT;
    }

    /** Version {@code version} of {@code slot}. */
    byte[] block(int slot, int version) {
        byte[] b = new byte[SLOT];
        if (version == 0) {
            return b;
        }
        ByteBuffer w = ByteBuffer.wrap(b);
        w.putInt(slot).putInt(version);
        SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L ^ ((long) slot << 32 | version));
        for (int i = HEADER; i < SLOT - TRAILER; i++) {
            b[i] = (byte) r.nextInt(256);
        }
        w.putLong(SLOT - TRAILER, crc(b));
        return b;
    }

    /** What {@code got}, read from {@code slot}, holds, in words for a failure message. */
    static String describe(int slot, byte[] got) {
        boolean zero = true;
        for (byte x : got) {
            if (x != 0) {
                zero = false;
                break;
            }
        }
        if (zero) {
            return "all zeroes (version 0: nothing written)";
        }
        ByteBuffer r = ByteBuffer.wrap(got);
        int s = r.getInt(0);
        int v = r.getInt(4);
        boolean intact = r.getLong(SLOT - TRAILER) == crc(got);
        if (intact) {
            return s == slot ? "version " + v + ", intact" : "slot " + s + "'s version " + v + " (a write landed at the wrong offset)";
        }
        int zeroTail = 0;
        for (int i = got.length - 1; i >= 0 && got[i] == 0; i--) {
            zeroTail++;
        }
        return "a torn block (checksum fails; header says slot " + s + " version " + v
                + (zeroTail > 0 ? ", last " + zeroTail + " bytes zero" : "") + ")";
    }

    private static long crc(byte[] b) {
        CRC32C c = new CRC32C();
        c.update(b, 0, SLOT - TRAILER);
        return c.getValue();
    }
}
