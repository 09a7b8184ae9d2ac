package dev.handoff.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import static dev.handoff.nbd.NbdWire.CMD_READ;

import dev.handoff.device.MemoryDevice;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The server reuses its request buffers (pooled direct buffers for requests up to
 * {@link ServerConnection#POOLED_CAPACITY}): concurrent, pipelined requests of sizes on both sides
 * of that limit never see each other's bytes, and every write lands exactly.
 */
@Timeout(120)
class NbdServerBufferTest {
    private static final int THREADS = 4;
    private static final int REGION = 4 << 20;

    @Test
    void concurrentRequestsNeverMixTheirDataWhenBuffersAreReused() throws Exception {
        run();
    }

    /**
     * A READ's buffer goes back to the pool only after its reply has left: while the replies
     * wait for the socket (the client reads nothing yet), WRITEs that arrive take other buffers,
     * so every reply carries the bytes the READ asked for. Staged, not raced: one 8 MiB READ fills
     * the socket and holds the send lock; four pooled READs then wait behind it; six WRITEs of
     * other bytes each reach the device (so the reader has read their payloads into buffers)
     * before the client reads a single reply.
     */
    @Test
    void aReplyWaitingForTheSocketKeepsItsBuffer() throws Exception {
        int pooled = ServerConnection.POOLED_CAPACITY;
        int reads = 4;
        int writes = 6;
        long bigOffset = 16L << 20;
        int bigLength = 8 << 20;
        long writeOffset = 8L << 20;
        MemoryDevice memory = new MemoryDevice(32L << 20);
        for (int i = 0; i < reads; i++) {
            byte[] pattern = new byte[pooled];
            Arrays.fill(pattern, (byte) (i + 1));
            memory.write((long) i * pooled, ByteBuffer.wrap(pattern));
        }
        byte[] big = new byte[bigLength];
        new SplittableRandom(7).nextBytes(big);
        memory.write(bigOffset, ByteBuffer.wrap(big));
        GuardedDevice device = new GuardedDevice(memory, false);
        CountDownLatch bigStuck = new CountDownLatch(1);
        AtomicInteger written = new AtomicInteger();
        device.hook((op, offset, length) -> {
            if (op.equals("read") && offset < bigOffset) {
                awaitQuietly(bigStuck); // the pooled READs perform once the big reply holds the socket
            } else if (op.equals("write")) {
                written.incrementAndGet();
            }
        });
        Path dir = Sockets.newDirectory();
        // One worker per request: the WRITEs must reach the device while every READ waits to reply.
        NbdServer server = NbdServer.builder().listen(NbdAddress.unix(dir.resolve("s")))
                .export(new NbdExport("disk", device, false, "a test disk")).workersPerConnection(1 + reads + writes)
                .start();
        try (RawPeer peer = new RawPeer(dir.resolve("s")).open("disk")) {
            peer.request(0, CMD_READ, 100, bigOffset, bigLength);
            for (int i = 0; i < reads; i++) {
                peer.request(0, CMD_READ, 1 + i, (long) i * pooled, pooled);
            }
            awaitOrFail(() -> workersReplying() >= 1, "the 8 MiB READ's worker sending its reply");
            bigStuck.countDown();
            awaitOrFail(() -> workersReplying() >= 1 + reads, "the pooled READs' workers waiting to reply");
            byte[] other = new byte[pooled];
            Arrays.fill(other, (byte) 0xEE);
            for (int w = 0; w < writes; w++) {
                peer.write(200 + w, writeOffset + (long) w * pooled, other);
            }
            awaitOrFail(() -> written.get() >= writes, "every WRITE at the device");

            Map<Long, Integer> errors = new HashMap<>();
            for (int r = 0; r < 1 + reads + writes; r++) {
                RawPeer.Reply reply = peer.reply();
                errors.put(reply.handle(), reply.error());
                long h = reply.handle();
                if (h == 100) {
                    assertThat(peer.read(bigLength)).as("the 8 MiB READ's data").isEqualTo(big);
                } else if (h >= 1 && h <= reads) {
                    byte[] expected = new byte[pooled];
                    Arrays.fill(expected, (byte) h);
                    byte[] got;
                    try {
                        got = peer.read(pooled);
                    } catch (java.io.IOException e) {
                        throw new AssertionError("READ " + h + "'s reply carried less than its " + pooled + " bytes (the"
                                + " stream is out of step): its buffer was taken by a WRITE before the reply left", e);
                    }
                    assertThat(got).as("READ %d's reply, sent after six WRITEs arrived while it waited", h)
                            .isEqualTo(expected);
                }
            }
            assertThat(errors).hasSize(1 + reads + writes).allSatisfy((h, e) -> assertThat(e).isZero());
        } finally {
            bigStuck.countDown();
            server.close();
            Sockets.deleteTree(dir);
        }
        assertThat(device.violations()).isEmpty();
    }

    /** Server workers now inside {@code ServerConnection.reply} (sending, or waiting for the send lock). */
    private static long workersReplying() {
        return Thread.getAllStackTraces().entrySet().stream()
                .filter(e -> e.getKey().getName().startsWith("nbd-server-") && e.getKey().getName().endsWith("-worker"))
                .filter(e -> Arrays.stream(e.getValue()).anyMatch(f -> f.getClassName().equals(ServerConnection.class.getName())
                        && f.getMethodName().equals("reply")))
                .count();
    }

    private static void awaitOrFail(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("not within 30 s: " + what);
            }
            Thread.sleep(1);
        }
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await(60, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void run() throws Exception {
        MemoryDevice disk = new MemoryDevice((long) THREADS * REGION);
        byte[][] shadow = new byte[THREADS][REGION];
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        try (ServedDevice served = ServedDevice.serve("disk", disk)) {
            NbdDevice client = served.client();
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                int region = t;
                done.add(pool.submit(() -> {
                    SplittableRandom random = new SplittableRandom(region);
                    long base = (long) region * REGION;
                    for (int i = 0; i < 300; i++) {
                        // Half the requests fit a pooled buffer, some exactly, the rest do not.
                        int length = switch (i % 4) {
                            case 0 -> 1 + random.nextInt(4096);
                            case 1 -> ServerConnection.POOLED_CAPACITY;
                            case 2 -> 1 + random.nextInt(ServerConnection.POOLED_CAPACITY);
                            default -> ServerConnection.POOLED_CAPACITY + 1 + random.nextInt(3 * ServerConnection.POOLED_CAPACITY);
                        };
                        int offset = random.nextInt(REGION - length + 1);
                        byte[] data = new byte[length];
                        random.nextBytes(data);
                        client.write(base + offset, ByteBuffer.wrap(data));
                        System.arraycopy(data, 0, shadow[region], offset, length);
                        int readLength = 1 + random.nextInt(2 * ServerConnection.POOLED_CAPACITY);
                        int readOffset = random.nextInt(REGION - readLength + 1);
                        ByteBuffer back = ByteBuffer.allocate(readLength);
                        client.read(base + readOffset, back);
                        byte[] expected = java.util.Arrays.copyOfRange(shadow[region], readOffset, readOffset + readLength);
                        assertThat(back.array()).as("thread %d, read %d+%d", region, readOffset, readLength)
                                .isEqualTo(expected);
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
        for (int t = 0; t < THREADS; t++) {
            ByteBuffer all = ByteBuffer.allocate(REGION);
            disk.read((long) t * REGION, all);
            assertThat(all.array()).as("region %d", t).isEqualTo(shadow[t]);
        }
    }
}
