package dev.handoff.device;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The {@link BlockDevice} contract as a test suite: extend it with a factory for your device.
 * The device under test must start all-zero and be writable.
 */
public abstract class BlockDeviceContract {
    protected static final int SIZE = 3 * 1024 * 1024 + 517; // odd on purpose: unaligned tail

    private BlockDevice device;

    /** A fresh, all-zero, writable device of {@code size} bytes. */
    protected abstract BlockDevice create(long size) throws Exception;

    @BeforeEach
    void open() throws Exception {
        device = create(SIZE);
    }

    @AfterEach
    void closeDevice() throws Exception {
        device.close();
    }

    protected BlockDevice device() {
        return device;
    }

    @Test
    void reportsItsSize() {
        assertThat(device.size()).isEqualTo(SIZE);
    }

    @Test
    void startsAllZero() throws Exception {
        assertThat(read(device, 0, SIZE)).containsOnly(0);
    }

    @Test
    void readsBackWhatWasWrittenAtUnalignedRanges() throws Exception {
        byte[] model = new byte[SIZE];
        SplittableRandom random = new SplittableRandom(7);
        for (int i = 0; i < 200; i++) {
            int len = 1 + random.nextInt(70_000);
            int off = random.nextInt(SIZE - len + 1);
            byte[] data = new byte[len];
            random.nextBytes(data);
            device.write(off, random.nextBoolean() ? ByteBuffer.wrap(data) : direct(data));
            System.arraycopy(data, 0, model, off, len);
        }
        assertThat(read(device, 0, SIZE)).isEqualTo(model);
    }

    @Test
    void writeAdvancesTheSourceBufferAndReadFillsTheDestination() throws Exception {
        ByteBuffer src = ByteBuffer.wrap(new byte[] {1, 2, 3, 4});
        device.write(10, src);
        assertThat(src.hasRemaining()).isFalse();
        ByteBuffer dst = ByteBuffer.allocate(4);
        device.read(10, dst);
        assertThat(dst.hasRemaining()).isFalse();
        assertThat(dst.array()).containsExactly(1, 2, 3, 4);
    }

    @Test
    void writeAtTheLastByteWorks() throws Exception {
        device.write(SIZE - 1, ByteBuffer.wrap(new byte[] {9}));
        assertThat(read(device, SIZE - 1, 1)).containsExactly(9);
    }

    @Test
    void outOfRangeWriteFailsAndTouchesNothing() throws Exception {
        device.write(SIZE - 4, ByteBuffer.wrap(new byte[] {1, 1, 1, 1}));
        assertThatThrownBy(() -> device.write(SIZE - 2, ByteBuffer.wrap(new byte[] {7, 7, 7, 7})))
                .isInstanceOf(DeviceException.class)
                .satisfies(e -> assertThat(((DeviceException) e).kind()).isEqualTo(DeviceException.Kind.OUT_OF_RANGE))
                .hasMessageContaining("outside the device");
        assertThatThrownBy(() -> device.write(-1, ByteBuffer.wrap(new byte[] {7})))
                .isInstanceOf(DeviceException.class);
        assertThat(read(device, SIZE - 4, 4)).containsExactly(1, 1, 1, 1);
    }

    @Test
    void outOfRangeReadFailsAndLeavesTheBufferAlone() {
        ByteBuffer dst = ByteBuffer.allocate(8);
        assertThatThrownBy(() -> device.read(SIZE - 4, dst)).isInstanceOf(DeviceException.class)
                .satisfies(e -> assertThat(((DeviceException) e).kind()).isEqualTo(DeviceException.Kind.OUT_OF_RANGE));
        assertThat(dst.position()).isZero();
        assertThatThrownBy(() -> device.writeZeroes(SIZE, 1)).isInstanceOf(DeviceException.class);
        assertThatThrownBy(() -> device.discard(0, SIZE + 1L)).isInstanceOf(DeviceException.class);
    }

    @Test
    void writeZeroesZeroesExactlyTheRange() throws Exception {
        byte[] ones = new byte[SIZE];
        java.util.Arrays.fill(ones, (byte) 1);
        device.write(0, ByteBuffer.wrap(ones));
        device.writeZeroes(1000, 2_100_000);
        byte[] all = read(device, 0, SIZE);
        for (int i = 0; i < SIZE; i++) {
            assertThat(all[i]).as("byte %d", i).isEqualTo((byte) (i >= 1000 && i < 2_101_000 ? 0 : 1));
        }
    }

    @Test
    void discardLeavesStableContentAndTouchesNothingOutside() throws Exception {
        byte[] ones = new byte[SIZE];
        java.util.Arrays.fill(ones, (byte) 1);
        device.write(0, ByteBuffer.wrap(ones));
        device.discard(4096, 1 << 20);
        byte[] first = read(device, 0, SIZE);
        byte[] second = read(device, 0, SIZE);
        assertThat(second).isEqualTo(first);
        assertThat(first[4095]).isEqualTo((byte) 1);
        assertThat(first[4096 + (1 << 20)]).isEqualTo((byte) 1);
    }

    @Test
    void flushSucceeds() throws Exception {
        device.write(0, ByteBuffer.wrap(new byte[] {5}));
        device.flush();
        assertThat(read(device, 0, 1)).containsExactly(5);
    }

    @Test
    void closedDeviceRefusesEverythingAndClosesTwiceHarmlessly() throws Exception {
        device.close();
        device.close();
        assertThatThrownBy(() -> device.read(0, ByteBuffer.allocate(1)))
                .isInstanceOf(DeviceException.class)
                .satisfies(e -> assertThat(((DeviceException) e).kind()).isEqualTo(DeviceException.Kind.CLOSED));
        assertThatThrownBy(() -> device.write(0, ByteBuffer.allocate(1))).isInstanceOf(DeviceException.class)
                .satisfies(e -> assertThat(((DeviceException) e).kind()).isEqualTo(DeviceException.Kind.CLOSED));
        assertThatThrownBy(() -> device.flush()).isInstanceOf(DeviceException.class);
    }

    @Test
    void concurrentWritesToDisjointRangesAllLand() throws Exception {
        int threads = 4;
        int slice = SIZE / threads;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int id = t;
                futures.add(pool.submit(() -> {
                    byte[] data = new byte[997];
                    java.util.Arrays.fill(data, (byte) (id + 1));
                    for (int off = id * slice; off + data.length <= (id + 1) * slice; off += data.length) {
                        device.write(off, ByteBuffer.wrap(data));
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) {
                f.get();
            }
        } finally {
            pool.shutdown();
        }
        byte[] all = read(device, 0, SIZE);
        for (int t = 0; t < threads; t++) {
            int end = t * slice + ((slice) / 997) * 997;
            for (int i = t * slice; i < end; i++) {
                assertThat(all[i]).as("byte %d", i).isEqualTo((byte) (t + 1));
            }
        }
    }

    @Test
    void holeQueriesStayWithinTheDeviceAndNeverHideData() throws Exception {
        byte[] model = new byte[SIZE];
        SplittableRandom random = new SplittableRandom(11);
        for (int i = 0; i < 6; i++) {
            int len = 1 + random.nextInt(9000);
            int off = random.nextInt(SIZE - len + 1);
            byte[] data = new byte[len];
            random.nextBytes(data);
            device.write(off, ByteBuffer.wrap(data));
            System.arraycopy(data, 0, model, off, len);
        }
        device.writeZeroes(1 << 20, 1 << 20);
        java.util.Arrays.fill(model, 1 << 20, 2 << 20, (byte) 0);
        List<Long> offsets = new ArrayList<>(List.of(0L, (long) SIZE - 1, (long) SIZE, 1L << 20, (2L << 20) - 1));
        for (int i = 0; i < 40; i++) {
            offsets.add((long) random.nextInt(SIZE));
        }
        for (long o : offsets) {
            long d = device.nextData(o);
            long h = device.nextHole(o);
            assertThat(d).as("nextData(%d)", o).isBetween(o, (long) SIZE);
            assertThat(h).as("nextHole(%d)", o).isBetween(o, (long) SIZE);
            for (long b = o; b < d; b++) {
                if (model[(int) b] != 0) {
                    throw new AssertionError("nextData(" + o + ") = " + d + " skips data at " + b);
                }
            }
        }
        assertThat(device.nextData(SIZE)).isEqualTo(SIZE);
        assertThat(device.nextHole(SIZE)).isEqualTo(SIZE);
        assertThatThrownBy(() -> device.nextData(SIZE + 1L)).isInstanceOf(DeviceException.class)
                .satisfies(e -> assertThat(((DeviceException) e).kind()).isEqualTo(DeviceException.Kind.OUT_OF_RANGE));
        assertThat(read(device, 0, SIZE)).isEqualTo(model);
    }

    protected static byte[] read(BlockDevice d, long off, int len) throws DeviceException {
        ByteBuffer b = ByteBuffer.allocate(len);
        d.read(off, b);
        return b.array();
    }

    private static ByteBuffer direct(byte[] data) {
        ByteBuffer b = ByteBuffer.allocateDirect(data.length);
        b.put(data).flip();
        return b;
    }
}
