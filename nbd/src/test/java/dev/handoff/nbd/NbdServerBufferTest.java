package dev.handoff.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import dev.handoff.device.MemoryDevice;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
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
