package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static dev.handoff.testkit.Io.filled;
import static dev.handoff.testkit.Io.read;
import static dev.handoff.testkit.Io.write;

/** The sequential contract: one caller at a time. */
final class SequentialChecks {
    /** Odd on purpose: an unaligned tail, and slots that straddle every power-of-two boundary. */
    static final int SIZE = 3 * 1024 * 1024 + 517;

    private SequentialChecks() {
    }

    static List<Check> all() {
        return List.of(
                new Check("reports-its-size", Check.Group.SEQUENTIAL,
                        "size() is the size asked for", 1, SequentialChecks::reportsItsSize),
                new Check("starts-all-zero", Check.Group.SEQUENTIAL,
                        "a fresh device reads as zeroes", 1, SequentialChecks::startsAllZero),
                new Check("random-operations-match-a-byte-array", Check.Group.SEQUENTIAL,
                        "reads return the last write, write-zeroes or discard of each byte; buffers advance to their limit;"
                                + " size never changes (random operations, heap and direct buffers, unaligned ranges)",
                        5, SequentialChecks::randomOperations),
                new Check("write-zeroes-zeroes-exactly-the-range", Check.Group.SEQUENTIAL,
                        "write-zeroes zeroes its range and nothing else", 1, SequentialChecks::writeZeroes),
                new Check("discard-is-stable-and-local", Check.Group.SEQUENTIAL,
                        "a discarded range reads the same until written (zeroes where the device says so); nothing outside changes",
                        1, SequentialChecks::discard),
                new Check("allocation-map-never-hides-data", Check.Group.SEQUENTIAL,
                        "nextData and nextHole stay inside the device and never skip bytes that are not zero", 1,
                        SequentialChecks::allocationMap),
                new Check("flush-keeps-the-data", Check.Group.SEQUENTIAL,
                        "a flush succeeds and changes no byte", 1, SequentialChecks::flushKeepsData));
    }

    private static void reportsItsSize(DeviceFactory f, long seed) throws Exception {
        for (long size : new long[] {SIZE, 1, 4096}) {
            try (BlockDevice d = f.create(size)) {
                if (d.size() != size) {
                    throw Violation.of("a device created with %d bytes reports size() = %d", size, d.size());
                }
            }
        }
    }

    private static void startsAllZero(DeviceFactory f, long seed) throws Exception {
        try (BlockDevice d = f.create(SIZE)) {
            byte[] all = read(d, 0, SIZE);
            for (int i = 0; i < SIZE; i++) {
                if (all[i] != 0) {
                    throw Violation.of("a fresh device reads %d at byte %d", all[i], i);
                }
            }
        }
    }

    private static void randomOperations(DeviceFactory f, long seed) throws Exception {
        long[] sizes = {1, 4095, 65_536, (1 << 20) + 3, 3L * (1 << 20) - 17};
        long size = sizes[(int) Math.floorMod(seed - 1, (long) sizes.length)];
        try (BlockDevice d = f.create(size)) {
            ContractModel.check(d, seed, 200, f.discardReadsZeroes());
        }
    }

    private static void writeZeroes(DeviceFactory f, long seed) throws Exception {
        try (BlockDevice d = f.create(SIZE)) {
            write(d, 0, filled(SIZE, 1));
            d.writeZeroes(1000, 2_100_000);
            byte[] all = read(d, 0, SIZE);
            for (int i = 0; i < SIZE; i++) {
                byte want = (byte) (i >= 1000 && i < 2_101_000 ? 0 : 1);
                if (all[i] != want) {
                    throw Violation.of("after writeZeroes(1000, 2100000) over ones, byte %d reads %d, expected %d",
                            i, all[i], want);
                }
            }
        }
    }

    private static void discard(DeviceFactory f, long seed) throws Exception {
        try (BlockDevice d = f.create(SIZE)) {
            write(d, 0, filled(SIZE, 1));
            long off = 4096;
            int len = 1 << 20;
            d.discard(off, len);
            byte[] first = read(d, 0, SIZE);
            byte[] second = read(d, 0, SIZE);
            int at = Arrays.mismatch(first, second);
            if (at >= 0) {
                throw Violation.of("after a discard, byte %d read %d, then %d: discarded bytes must be stable", at,
                        first[at], second[at]);
            }
            for (int i = 0; i < SIZE; i++) {
                boolean inside = i >= off && i < off + len;
                if (!inside && first[i] != 1) {
                    throw Violation.of("discard(%d, %d) changed byte %d outside its range to %d", off, len, i, first[i]);
                }
                if (inside && f.discardReadsZeroes() && first[i] != 0) {
                    throw Violation.of("discarded byte %d reads %d; the factory says discarded bytes read as zeroes", i,
                            first[i]);
                }
            }
        }
    }

    private static void allocationMap(DeviceFactory f, long seed) throws Exception {
        try (BlockDevice d = f.create(SIZE)) {
            byte[] model = new byte[SIZE];
            SplittableRandom random = new SplittableRandom(seed + 10);
            for (int i = 0; i < 6; i++) {
                int len = 1 + random.nextInt(9000);
                int off = random.nextInt(SIZE - len + 1);
                byte[] data = new byte[len];
                random.nextBytes(data);
                write(d, off, data);
                System.arraycopy(data, 0, model, off, len);
            }
            d.writeZeroes(1 << 20, 1 << 20);
            Arrays.fill(model, 1 << 20, 2 << 20, (byte) 0);
            List<Long> offsets = new ArrayList<>(List.of(0L, (long) SIZE - 1, (long) SIZE, 1L << 20, (2L << 20) - 1));
            for (int i = 0; i < 40; i++) {
                offsets.add((long) random.nextInt(SIZE));
            }
            for (long o : offsets) {
                long data = d.nextData(o);
                long hole = d.nextHole(o);
                if (data < o || data > SIZE) {
                    throw Violation.of("nextData(%d) = %d, outside [%d, %d]", o, data, o, SIZE);
                }
                if (hole < o || hole > SIZE) {
                    throw Violation.of("nextHole(%d) = %d, outside [%d, %d]", o, hole, o, SIZE);
                }
                for (long b = o; b < data; b++) {
                    if (model[(int) b] != 0) {
                        throw Violation.of("nextData(%d) = %d skips data at byte %d", o, data, b);
                    }
                }
            }
            if (d.nextData(SIZE) != SIZE || d.nextHole(SIZE) != SIZE) {
                throw Violation.of("at the end of the device nextData and nextHole must be the size; got %d and %d",
                        d.nextData(SIZE), d.nextHole(SIZE));
            }
            byte[] all = read(d, 0, SIZE);
            int at = Arrays.mismatch(all, model);
            if (at >= 0) {
                throw Violation.of("after the allocation queries byte %d reads %d, expected %d", at, all[at], model[at]);
            }
        }
    }

    private static void flushKeepsData(DeviceFactory f, long seed) throws Exception {
        try (BlockDevice d = f.create(SIZE)) {
            d.write(SIZE - 3, ByteBuffer.wrap(new byte[] {5, 6, 7}));
            d.flush();
            byte[] got = read(d, SIZE - 3, 3);
            if (!Arrays.equals(got, new byte[] {5, 6, 7})) {
                throw Violation.of("after write and flush the last three bytes read %s, expected [5, 6, 7]",
                        Arrays.toString(got));
            }
        }
    }
}
