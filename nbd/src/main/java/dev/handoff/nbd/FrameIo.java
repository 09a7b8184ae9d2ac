package dev.handoff.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/** Whole-frame reads and writes on blocking channels. */
final class FrameIo {
    /** Bytes skipped per read when a payload is discarded: the most a discard ever allocates. */
    static final int SKIP_CHUNK = 64 << 10;

    private FrameIo() {
    }

    /**
     * Fills {@code buffer}. Returns false if the channel was at end of stream before the first
     * byte (the peer left between frames); throws {@link EOFException} if it ended in the middle
     * (a truncated frame).
     */
    static boolean readFrame(ReadableByteChannel in, ByteBuffer buffer) throws IOException {
        int start = buffer.position();
        while (buffer.hasRemaining()) {
            if (in.read(buffer) < 0) {
                if (buffer.position() == start) {
                    return false;
                }
                throw new EOFException("truncated frame: end of stream after " + (buffer.position() - start)
                        + " of " + (buffer.limit() - start) + " bytes");
            }
        }
        return true;
    }

    /** Fills {@code buffer}; end of stream before that is an {@link EOFException}. */
    static void readFully(ReadableByteChannel in, ByteBuffer buffer) throws IOException {
        int start = buffer.position();
        while (buffer.hasRemaining()) {
            if (in.read(buffer) < 0) {
                throw new EOFException("truncated frame: end of stream after " + (buffer.position() - start)
                        + " of " + (buffer.limit() - start) + " bytes");
            }
        }
    }

    /** Reads and drops {@code length} bytes through {@code scratch} (whose capacity bounds each read). */
    static void skip(ReadableByteChannel in, long length, ByteBuffer scratch) throws IOException {
        long left = length;
        while (left > 0) {
            scratch.clear().limit((int) Math.min(scratch.capacity(), left));
            readFully(in, scratch);
            left -= scratch.limit();
        }
    }

    /** Writes all of {@code buffer}. */
    static void writeFully(WritableByteChannel out, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            out.write(buffer);
        }
    }
}
