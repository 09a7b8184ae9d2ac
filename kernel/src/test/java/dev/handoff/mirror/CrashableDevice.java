package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;

/**
 * A disk with a volatile write cache that can lose power: writes are visible at once and durable
 * only after a flush; {@link #crash(Random)} keeps, for each block of {@value #BLOCK} bytes, either
 * what was written or what was last flushed (an unflushed write is lost, kept, or torn across
 * blocks), as a power loss may; {@link #crash()} loses every unflushed write. Thread-safe (one
 * monitor).
 */
public final class CrashableDevice implements BlockDevice {
    static final int BLOCK = 4096;
    private final byte[] live;
    private byte[] durable;

    public CrashableDevice(int size) {
        live = new byte[size];
        durable = new byte[size];
    }

    /** Fills it with seeded random bytes, durable. */
    public synchronized CrashableDevice fillRandom(long seed) {
        new Random(seed).nextBytes(live);
        durable = live.clone();
        return this;
    }

    /** Power loss: each block keeps its live or its durable content, as {@code random} picks. */
    public synchronized void crash(Random random) {
        for (int at = 0; at < live.length; at += BLOCK) {
            int end = Math.min(live.length, at + BLOCK);
            if (random.nextBoolean()) {
                System.arraycopy(durable, at, live, at, end - at);
            } else {
                System.arraycopy(live, at, durable, at, end - at);
            }
        }
    }

    /** Power loss at its worst: everything written since the last flush is gone. */
    public synchronized void crash() {
        System.arraycopy(durable, 0, live, 0, live.length);
    }

    public synchronized byte[] contents() {
        return live.clone();
    }

    /** The first offset where this device and {@code other} differ, or -1. */
    public synchronized long firstDifference(CrashableDevice other) {
        byte[] theirs = other.contents();
        return Arrays.mismatch(live, theirs);
    }

    @Override
    public long size() {
        return live.length;
    }

    @Override
    public synchronized void read(long offset, ByteBuffer dst) throws DeviceException {
        DeviceException.checkRange(offset, dst.remaining(), live.length);
        dst.put(live, (int) offset, dst.remaining());
    }

    @Override
    public synchronized void write(long offset, ByteBuffer src) throws DeviceException {
        DeviceException.checkRange(offset, src.remaining(), live.length);
        src.get(live, (int) offset, src.remaining());
    }

    @Override
    public synchronized void writeZeroes(long offset, long length) throws DeviceException {
        DeviceException.checkRange(offset, length, live.length);
        Arrays.fill(live, (int) offset, (int) (offset + length), (byte) 0);
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        writeZeroes(offset, length);
    }

    @Override
    public synchronized void flush() {
        System.arraycopy(live, 0, durable, 0, live.length);
    }

    @Override
    public void close() {
    }
}
