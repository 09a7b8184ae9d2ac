package dev.handoff.stress;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.nio.ByteBuffer;

/**
 * A tiny device for the harnesses: {@value #CHUNK}-byte chunks, each holding one byte value that
 * fills the chunk. A write stores, for every chunk it covers, the first byte it carries for that
 * chunk; a read fills each chunk of the destination with the chunk's value. Harnesses only write
 * whole chunks of one value, so a chunk's content is one byte a result can report.
 *
 * <p>Why not {@code MemoryDevice}: a harness state is created millions of times and a memory
 * device allocates 1 MiB on its first write; Lincheck's model checker would also see 512 array
 * accesses per write where one is enough.
 *
 * <p>Memory effects: the values are plain array accesses, as on {@code MemoryDevice}: a write is
 * visible to a later read only through the happens-before its caller establishes, and the harnesses
 * exist to check that the kernel establishes it. {@link #flush()} copies the values to a second,
 * durable array; {@link #durable(int)} is what a crash right now would leave.
 *
 * <p>Latency: a read may return {@code readSpins} spin-waits after it took its data, and a write may
 * land {@code writeSpins} spin-waits after it was called. Real disks take microseconds, not
 * nanoseconds; the spins widen exactly the windows in which a broken order shows (a copy holding
 * stale data, a write not yet landed) without changing what a correct order guarantees.
 */
public final class ChunkDevice implements BlockDevice {
    /** Bytes per chunk: the smallest granularity a mirror job accepts. */
    public static final int CHUNK = 512;

    private static final byte[][] FILLS = new byte[256][];

    static {
        for (int v = 0; v < 256; v++) {
            FILLS[v] = new byte[CHUNK];
            java.util.Arrays.fill(FILLS[v], (byte) v);
        }
    }

    private final byte[] values;
    private final byte[] durable;
    private final int readSpins;
    private final int writeSpins;
    private volatile boolean closed;
    private final java.util.concurrent.atomic.AtomicInteger failingWrites = new java.util.concurrent.atomic.AtomicInteger();
    private volatile int failingChunk = -1;

    /** A zeroed device with no latency. */
    public ChunkDevice(int chunks) {
        this(chunks, 0, 0);
    }

    public ChunkDevice(int chunks, int readSpins, int writeSpins) {
        this.values = new byte[chunks];
        this.durable = new byte[chunks];
        this.readSpins = readSpins;
        this.writeSpins = writeSpins;
    }

    /** Sets a chunk's value without any I/O ordering (set-up only). */
    public void fill(int chunk, int value) {
        values[chunk] = (byte) value;
        durable[chunk] = (byte) value;
    }

    /** The chunk's current value (plain read: call it after the threads that wrote have joined). */
    public int value(int chunk) {
        return values[chunk];
    }

    /** The chunk's value as of the last flush. */
    public int durable(int chunk) {
        return durable[chunk];
    }

    public int chunks() {
        return values.length;
    }

    @Override
    public long size() {
        return (long) values.length * CHUNK;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        check(offset, dst.remaining());
        int first = (int) (offset / CHUNK);
        int n = dst.remaining() / CHUNK;
        for (int c = first; c < first + n; c++) {
            dst.put(FILLS[values[c] & 0xff]);
        }
        spin(readSpins);
    }

    /**
     * Makes the next {@code n} writes (and write-zeroes) that touch {@code chunk} fail with an I/O
     * error, touching nothing.
     */
    public void failNextWritesTo(int chunk, int n) {
        failingChunk = chunk;
        failingWrites.set(n);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        check(offset, src.remaining());
        injectedFailure(offset, src.remaining());
        spin(writeSpins);
        int first = (int) (offset / CHUNK);
        int n = src.remaining() / CHUNK;
        int pos = src.position();
        for (int i = 0; i < n; i++) {
            values[first + i] = src.get(pos + i * CHUNK);
        }
        src.position(src.limit());
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        check(offset, length);
        injectedFailure(offset, length);
        spin(writeSpins);
        int first = (int) (offset / CHUNK);
        for (int c = first; c < first + length / CHUNK; c++) {
            values[c] = 0;
        }
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        writeZeroes(offset, length);
    }

    @Override
    public void flush() throws DeviceException {
        if (closed) {
            throw new DeviceException(DeviceException.Kind.CLOSED, "chunk device is closed");
        }
        System.arraycopy(values, 0, durable, 0, values.length);
    }

    @Override
    public void close() {
        closed = true;
    }

    /** A buffer holding {@code chunks} chunks of {@code value}, ready to write. */
    public static ByteBuffer chunksOf(int value, int chunks) {
        ByteBuffer b = ByteBuffer.allocate(chunks * CHUNK);
        for (int i = 0; i < chunks; i++) {
            b.put(FILLS[value & 0xff]);
        }
        return b.flip();
    }

    private void check(long offset, long length) throws DeviceException {
        if (closed) {
            throw new DeviceException(DeviceException.Kind.CLOSED, "chunk device is closed");
        }
        DeviceException.checkRange(offset, length, size());
        if (offset % CHUNK != 0 || length % CHUNK != 0) {
            throw new DeviceException(DeviceException.Kind.OUT_OF_RANGE,
                    "chunk device takes whole chunks only: " + offset + "+" + length);
        }
    }

    private void injectedFailure(long offset, long length) throws DeviceException {
        // A volatile read first: harnesses that never inject pay no read-modify-write.
        long at = (long) failingChunk * CHUNK;
        if (failingWrites.get() > 0 && offset <= at && at < offset + length && failingWrites.getAndDecrement() > 0) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR, "injected write failure");
        }
    }

    private static void spin(int spins) {
        for (int i = 0; i < spins; i++) {
            Thread.onSpinWait();
        }
    }
}
