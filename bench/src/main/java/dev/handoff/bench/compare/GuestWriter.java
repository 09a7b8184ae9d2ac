package dev.handoff.bench.compare;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * A guest at queue depth 1: random, size-aligned writes of one size through an NBD export, as
 * fast as the server answers, timing each one. The same program drives QEMU's export and
 * Handoff's.
 *
 * <p>Every write is logged (in order) and its bytes are a function of its index and offset: a
 * fixed random pattern with the index and the offset stamped at the head of each 4 KiB block. So
 * after a run the expected image can be rebuilt ({@link #replay}): the source with every logged
 * write applied again in order. A pivot that lost or reordered an acknowledged write leaves the
 * target different from that.
 *
 * <p>Threading: {@link #run} on one thread; {@link #count()}, {@link #stop()} and the windows
 * from any thread (the counter is volatile and written after each record).
 */
final class GuestWriter implements Runnable {
    private static final int STAMP_BLOCK = 4096;

    private final NbdClient client;
    private final int writeSize;
    private final long blocks;
    private final SplittableRandom random;
    private final byte[] pattern;
    private final ByteBuffer data;
    private final long[] startNanos;
    private final long[] latencyNanos;
    private final int[] blockOf;
    private volatile int count;
    private volatile boolean stop;
    private volatile IOException failure;
    private Thread thread;

    GuestWriter(NbdClient client, int writeSize, long seed, int capacity) {
        this.client = client;
        this.writeSize = writeSize;
        this.blocks = client.size() / writeSize;
        if (blocks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("device too large for the writer's log");
        }
        this.random = new SplittableRandom(seed);
        this.pattern = new byte[writeSize];
        new SplittableRandom(seed ^ 0x5DEECE66DL).nextBytes(pattern);
        this.data = ByteBuffer.allocateDirect(writeSize);
        this.startNanos = new long[capacity];
        this.latencyNanos = new long[capacity];
        this.blockOf = new int[capacity];
    }

    /** Connects and starts writing on a new thread. */
    static GuestWriter start(Path socket, String export, int writeSize, long seed) throws IOException {
        GuestWriter w = new GuestWriter(NbdClient.connect(socket, export), writeSize, seed, 4 << 20);
        w.thread = new Thread(w, "guest-writer");
        w.thread.setDaemon(true);
        w.thread.start();
        return w;
    }

    @Override
    public void run() {
        int n = 0;
        try {
            while (!stop && n < startNanos.length) {
                int block = (int) random.nextLong(blocks);
                long offset = (long) block * writeSize;
                fill(data, pattern, n, offset);
                long t0 = System.nanoTime();
                client.write(offset, data);
                long t1 = System.nanoTime();
                startNanos[n] = t0;
                latencyNanos[n] = t1 - t0;
                blockOf[n] = block;
                count = ++n; // volatile: publishes the record
            }
        } catch (IOException e) {
            failure = e;
        }
    }

    /** Stops after the write in progress, closes the connection; throws if a write failed. */
    void stop() throws IOException, InterruptedException {
        stop = true;
        thread.join(60_000);
        if (thread.isAlive()) {
            throw new IOException("the guest writer is stuck in a write");
        }
        client.close();
        if (failure != null) {
            throw new IOException("a guest write failed after " + count + " writes", failure);
        }
        if (count == startNanos.length) {
            throw new IOException("the writer's log filled up (" + count + " writes): results would be cut short");
        }
    }

    int count() {
        return count;
    }

    /** Writes completed in {@code [from, to)} (nanoTime): their rate and latencies. */
    Window window(long from, long to) {
        int n = count;
        long[] lat = new long[n];
        int k = 0;
        for (int i = 0; i < n; i++) {
            long end = startNanos[i] + latencyNanos[i];
            if (end >= from && end < to) {
                lat[k++] = latencyNanos[i];
            }
        }
        lat = Arrays.copyOf(lat, k);
        Arrays.sort(lat);
        double seconds = (to - from) / 1e9;
        return new Window(k / seconds, percentile(lat, 0.50) / 1e3, percentile(lat, 0.99) / 1e3,
                k == 0 ? Double.NaN : lat[k - 1] / 1e3, k, seconds);
    }

    /** Applies every logged write again, in order, to the raw image at {@code image}. */
    void replay(Path image) throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect(writeSize);
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.WRITE)) {
            int n = count;
            for (int i = 0; i < n; i++) {
                long offset = (long) blockOf[i] * writeSize;
                fill(buf, pattern, i, offset);
                while (buf.hasRemaining()) {
                    ch.write(buf, offset + buf.position());
                }
            }
        }
    }

    private static void fill(ByteBuffer buf, byte[] pattern, long index, long offset) {
        buf.clear();
        buf.put(pattern);
        for (int at = 0; at < pattern.length; at += STAMP_BLOCK) {
            buf.putLong(at, index);
            buf.putLong(at + 8, offset + at);
        }
        buf.flip();
    }

    private static double percentile(long[] sorted, double q) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    /** One measurement window: writes per second, p50 / p99 / max latency in µs, writes, seconds. */
    record Window(double iops, double p50Micros, double p99Micros, double maxMicros, int writes, double seconds) {
    }
}
