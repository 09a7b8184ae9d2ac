package dev.handoff.workload;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A synthetic guest: several threads writing random, unaligned ranges with self-identifying
 * content, remembering every acknowledged byte so that a device can later be checked against it.
 *
 * <p>The device is split into one contiguous region per thread (region edges fall inside chunks,
 * so neighbouring threads still share chunks). Each thread writes only its own region, in order,
 * so the expected content of every byte is exact: the last acknowledged write's byte, or the
 * region's initial content. Byte {@code o} of write {@code id} is a mix of {@code id} and
 * {@code o}, so a stale or misplaced byte almost never matches by accident.
 *
 * <p>Memory: one byte of shadow per device byte; meant for test and demo sizes.
 */
public final class SyntheticGuest {
    private final BlockDevice device;
    private final int threads;
    private final long seed;
    private final int maxWriteBytes;
    private final long[] regionStart;
    private final byte[][] shadow;
    private final AtomicBoolean stop = new AtomicBoolean();
    private final AtomicLong writes = new AtomicLong();
    private final AtomicLong bytes = new AtomicLong();
    private final List<Thread> workers = new ArrayList<>();
    private final List<Throwable> failures = new java.util.concurrent.CopyOnWriteArrayList<>();
    private volatile BlockDevice current;

    /**
     * A guest over {@code device} whose current content is taken as the initial content.
     *
     * @param threads       writer threads (and regions), at least 1
     * @param seed          seeds every thread's offsets, lengths and content
     * @param maxWriteBytes the largest write, at least 1
     */
    public SyntheticGuest(BlockDevice device, int threads, long seed, int maxWriteBytes) throws DeviceException {
        this.device = Objects.requireNonNull(device, "device");
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        if (maxWriteBytes < 1) {
            throw new IllegalArgumentException("maxWriteBytes must be >= 1, got " + maxWriteBytes);
        }
        long size = device.size();
        if (size / threads > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("device too large for a synthetic guest: " + size + " bytes");
        }
        this.threads = threads;
        this.seed = seed;
        this.maxWriteBytes = maxWriteBytes;
        this.regionStart = new long[threads + 1];
        this.shadow = new byte[threads][];
        for (int t = 0; t <= threads; t++) {
            regionStart[t] = size * t / threads;
        }
        for (int t = 0; t < threads; t++) {
            shadow[t] = new byte[(int) (regionStart[t + 1] - regionStart[t])];
            device.read(regionStart[t], ByteBuffer.wrap(shadow[t]));
        }
        this.current = device;
    }

    /** Starts the writer threads; they write until {@link #stop()}, a failure, or {@code maxWrites} each. */
    public void start(long maxWritesPerThread) {
        for (int t = 0; t < threads; t++) {
            int region = t;
            Thread w = new Thread(() -> run(region, maxWritesPerThread), "guest-writer-" + t);
            w.setDaemon(true);
            workers.add(w);
            w.start();
        }
    }

    /** Stops the writers and waits for them; every write they had started has returned. */
    public void stop() throws InterruptedException {
        stop.set(true);
        for (Thread w : workers) {
            w.join();
        }
    }

    /** Runs the writers for {@code duration} (bounded by {@code maxWritesPerThread}) and stops them. */
    public void runFor(Duration duration, long maxWritesPerThread) throws InterruptedException {
        start(maxWritesPerThread);
        long deadline = System.nanoTime() + duration.toNanos();
        for (Thread w : workers) {
            long left = deadline - System.nanoTime();
            if (left > 0) {
                w.join(Math.max(1, left / 1_000_000));
            }
        }
        stop();
    }

    /** Acknowledged writes so far. */
    public long writes() {
        return writes.get();
    }

    /** Acknowledged bytes so far. */
    public long bytesWritten() {
        return bytes.get();
    }

    /** Errors the writers met (a correct run has none). */
    public List<Throwable> failures() {
        return List.copyOf(failures);
    }

    /**
     * Compares {@code other} with every acknowledged write. Returns null if every byte matches,
     * otherwise a description of the first mismatch.
     */
    public String verify(BlockDevice other) throws DeviceException {
        if (other.size() != device.size()) {
            return "size " + other.size() + " != " + device.size();
        }
        ByteBuffer buf = ByteBuffer.allocate(1 << 20);
        for (int t = 0; t < threads; t++) {
            byte[] expected = shadow[t];
            for (int pos = 0; pos < expected.length; pos += buf.capacity()) {
                int n = Math.min(buf.capacity(), expected.length - pos);
                buf.clear().limit(n);
                other.read(regionStart[t] + pos, buf);
                for (int i = 0; i < n; i++) {
                    if (buf.get(i) != expected[pos + i]) {
                        long at = regionStart[t] + pos + i;
                        return "byte " + at + " is " + buf.get(i) + ", expected " + expected[pos + i]
                                + " (region of writer " + t + ")";
                    }
                }
            }
        }
        return null;
    }

    /** The byte that write {@code id} puts at device offset {@code offset}. */
    public static byte contentByte(long id, long offset) {
        long z = id * 0x9E3779B97F4A7C15L + offset;
        z = (z ^ (z >>> 31)) * 0xBF58476D1CE4E5B9L;
        return (byte) (z ^ (z >>> 29));
    }

    private void run(int region, long maxWrites) {
        SplittableRandom random = new SplittableRandom(seed * 31 + region);
        long start = regionStart[region];
        int span = shadow[region].length;
        if (span == 0) {
            return;
        }
        ByteBuffer buf = ByteBuffer.allocateDirect(Math.min(maxWriteBytes, span));
        for (long n = 0; n < maxWrites && !stop.get(); n++) {
            int length = 1 + random.nextInt(Math.min(maxWriteBytes, span));
            int at = random.nextInt(span - length + 1);
            long id = ((long) region << 48) | n;
            buf.clear().limit(length);
            for (int i = 0; i < length; i++) {
                buf.put(i, contentByte(id, start + at + i));
            }
            try {
                current.write(start + at, buf);
            } catch (DeviceException | RuntimeException e) {
                failures.add(e);
                return;
            }
            for (int i = 0; i < length; i++) {
                shadow[region][at + i] = buf.get(i);
            }
            writes.incrementAndGet();
            bytes.addAndGet(length);
        }
    }
}
