package dev.handoff.device;

import java.nio.ByteBuffer;

/**
 * A fixed-size array of bytes with positional I/O: the one abstraction the mirror, the
 * ownership layer and the NBD code all speak.
 *
 * <h2>Contract</h2>
 * <ul>
 *   <li>Thread safety: every method may be called from several threads at once. Operations on
 *       disjoint ranges do not affect each other. Overlapping concurrent operations give one of
 *       the orders in which they could have run, byte by byte, as a disk would; callers that
 *       need an order establish it themselves.</li>
 *   <li>Visibility: when {@code write} (or {@code writeZeroes}, {@code discard}) returns, a
 *       {@code read} that starts afterwards, in the happens-before sense, sees the new bytes.</li>
 *   <li>Ranges: an operation on bytes outside {@code [0, size())} fails with
 *       {@link DeviceException.Kind#OUT_OF_RANGE} and touches nothing.</li>
 *   <li>Durability: data is durable only after a successful {@link #flush()}.</li>
 *   <li>Failure: a failed write may have been applied in part; a failed read leaves the
 *       destination buffer's contents unspecified.</li>
 *   <li>After {@link #close()}, every operation fails with {@link DeviceException.Kind#CLOSED};
 *       closing twice is harmless.</li>
 * </ul>
 *
 * <p>The test kit ({@code handoff-testkit}: extend {@code dev.handoff.testkit.DeviceKit}) checks an
 * implementation against this contract, from one thread and from many; run it on your own devices.
 */
public interface BlockDevice extends AutoCloseable {

    /** The size in bytes; constant for the life of the device. */
    long size();

    /**
     * Reads {@code dst.remaining()} bytes starting at {@code offset} into {@code dst}, advancing
     * its position to its limit.
     */
    void read(long offset, ByteBuffer dst) throws DeviceException;

    /**
     * Writes the {@code src.remaining()} bytes of {@code src} at {@code offset}, advancing its
     * position to its limit.
     */
    void write(long offset, ByteBuffer src) throws DeviceException;

    /**
     * Makes {@code [offset, offset + length)} read as zeroes; a device that can deallocate the
     * range instead of writing zeroes into it (a hole in a sparse file) should, as QEMU does for a
     * write-zeroes that may unmap.
     */
    void writeZeroes(long offset, long length) throws DeviceException;

    /**
     * Tells the device that {@code [offset, offset + length)} is no longer needed. Advisory: the
     * range then reads as unspecified but stable bytes (zeroes on devices that can tell) until it
     * is written again.
     */
    void discard(long offset, long length) throws DeviceException;

    /**
     * Where data may be stored at or after {@code offset}: the smallest offset {@code d >= offset}
     * such that {@code [offset, d)} is unallocated and reads as zeroes, or {@link #size()} if all of
     * {@code [offset, size())} is (after Linux's {@code SEEK_DATA}). A copy may skip reading
     * {@code [offset, d)}. A device that cannot tell returns {@code offset}: everything may be data.
     * Concurrent writes may make the answer stale at once, as for any read.
     *
     * @param offset in {@code [0, size()]}
     */
    default long nextData(long offset) throws DeviceException {
        checkRange(offset, 0, size());
        return offset;
    }

    /**
     * The smallest offset {@code h >= offset} that starts an unallocated range reading as zeroes,
     * or {@link #size()} if there is none (after Linux's {@code SEEK_HOLE}). A device that cannot
     * tell returns {@link #size()}: no hole is known.
     *
     * @param offset in {@code [0, size()]}
     */
    default long nextHole(long offset) throws DeviceException {
        checkRange(offset, 0, size());
        return size();
    }

    /** Makes every write that returned before this call durable. */
    void flush() throws DeviceException;

    /** Releases the device. Does not flush: call {@link #flush()} first to keep unflushed data. */
    @Override
    void close() throws DeviceException;

    /**
     * Checks that {@code [offset, offset + length)} lies inside a device of {@code size} bytes:
     * the range check of the contract, for implementations. Small enough to be inlined into the
     * caller (four compares and a branch; the message is built only on failure), unlike
     * {@link DeviceException#checkRange}, which HotSpot's C2 never inlines: it does not inline a
     * static method of an exception class into other code.
     *
     * @throws DeviceException of kind {@link DeviceException.Kind#OUT_OF_RANGE} naming the range and
     *     the size; nothing was touched
     */
    static void checkRange(long offset, long length, long size) throws DeviceException {
        if (offset < 0 || length < 0 || offset > size || length > size - offset) {
            throw DeviceException.outOfRange(offset, length, size);
        }
    }
}
