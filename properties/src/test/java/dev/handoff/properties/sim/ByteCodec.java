package dev.handoff.properties.sim;

import java.io.ByteArrayOutputStream;

/**
 * Fixed-width big-endian fields for the scenario codecs: fuzzer input in, corpus files out.
 * A reader past the end reads zeroes, so every byte string decodes.
 */
public final class ByteCodec {
    private ByteCodec() {
    }

    /** Reads fields from a byte string; zeroes past its end. */
    public static final class Reader {
        private final byte[] bytes;
        private int pos;

        public Reader(byte[] bytes) {
            this.bytes = bytes;
        }

        public int remaining() {
            return Math.max(0, bytes.length - pos);
        }

        public int u8() {
            return pos < bytes.length ? bytes[pos++] & 0xff : 0;
        }

        public int u16() {
            return (u8() << 8) | u8();
        }

        public long u32() {
            return ((long) u16() << 16) | u16();
        }

        public long u64() {
            return (u32() << 32) | u32();
        }
    }

    /** Writes fields. */
    public static final class Writer {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        public Writer u8(long v) {
            out.write((int) v & 0xff);
            return this;
        }

        public Writer u16(long v) {
            return u8(v >>> 8).u8(v);
        }

        public Writer u32(long v) {
            return u16(v >>> 16).u16(v);
        }

        public Writer u64(long v) {
            return u32(v >>> 32).u32(v);
        }

        public byte[] toByteArray() {
            return out.toByteArray();
        }
    }
}
