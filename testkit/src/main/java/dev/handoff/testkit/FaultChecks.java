package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.DeviceException.Kind;
import dev.handoff.device.FaultyDevice;
import dev.handoff.device.FaultyDevice.Fault;
import dev.handoff.device.FaultyDevice.Op;
import dev.handoff.device.MemoryDevice;
import org.opentest4j.TestAbortedException;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;

import static dev.handoff.testkit.Io.expectKind;
import static dev.handoff.testkit.Io.filled;
import static dev.handoff.testkit.Io.read;
import static dev.handoff.testkit.Io.write;

/** Fault behaviour: what fails, with which {@link Kind}, and what a failure leaves behind. */
final class FaultChecks {
    private static final int SIZE = 8192;

    private FaultChecks() {
    }

    static List<Check> all() {
        return List.of(
                new Check("out-of-range-fails-and-touches-nothing", Check.Group.FAULTS,
                        "an operation outside [0, size) fails with OUT_OF_RANGE, leaves the buffer and the device alone", 1,
                        FaultChecks::outOfRange),
                new Check("closed-device-fails-with-closed", Check.Group.FAULTS,
                        "after close every operation fails with CLOSED; a second close is harmless", 1,
                        FaultChecks::closed),
                new Check("backing-faults-reach-the-caller", Check.Group.FAULTS,
                        "an error of the backing device (I/O error, no space; on read, write, write-zeroes, flush) fails the"
                                + " operation with its kind, is never acknowledged as success, and the device works once it clears",
                        1, FaultChecks::backingFaults));
    }

    private static void outOfRange(DeviceFactory f, long seed) throws Exception {
        try (BlockDevice d = f.create(SIZE)) {
            byte[] before = filled(SIZE, 7);
            write(d, 0, before);
            long[][] ranges = {{SIZE, 1}, {SIZE - 1, 2}, {-1, 1}, {0, SIZE + 1}, {Long.MAX_VALUE, 1}, {4096, Long.MAX_VALUE}};
            for (long[] r : ranges) {
                int n = (int) Math.min(r[1], 10_000);
                String range = r[0] + "+" + r[1];
                expectKind(Kind.OUT_OF_RANGE, "write(" + r[0] + ", " + n + " bytes)", () -> d.write(r[0], ByteBuffer.allocate(n)));
                ByteBuffer dst = ByteBuffer.allocate(n);
                expectKind(Kind.OUT_OF_RANGE, "read(" + r[0] + ", " + n + " bytes)", () -> d.read(r[0], dst));
                if (dst.position() != 0) {
                    throw Violation.of("a failed out-of-range read(%d, %d bytes) moved the buffer's position to %d", r[0], n,
                            dst.position());
                }
                expectKind(Kind.OUT_OF_RANGE, "writeZeroes(" + range + ")", () -> d.writeZeroes(r[0], r[1]));
                expectKind(Kind.OUT_OF_RANGE, "discard(" + range + ")", () -> d.discard(r[0], r[1]));
            }
            expectKind(Kind.OUT_OF_RANGE, "nextData(size + 1)", () -> d.nextData(SIZE + 1L));
            expectKind(Kind.OUT_OF_RANGE, "nextHole(-1)", () -> d.nextHole(-1));
            byte[] after = read(d, 0, SIZE);
            int at = Arrays.mismatch(after, before);
            if (at >= 0) {
                throw Violation.of("out-of-range operations changed byte %d to %d", at, after[at]);
            }
            if (d.size() != SIZE) {
                throw Violation.of("out-of-range operations changed the size to %d", d.size());
            }
        }
    }

    private static void closed(DeviceFactory f, long seed) throws Exception {
        BlockDevice d = f.create(SIZE);
        d.close();
        d.close(); // harmless
        expectKind(Kind.CLOSED, "read after close", () -> d.read(0, ByteBuffer.allocate(1)));
        expectKind(Kind.CLOSED, "write after close", () -> d.write(0, ByteBuffer.allocate(1)));
        expectKind(Kind.CLOSED, "writeZeroes after close", () -> d.writeZeroes(0, 1));
        expectKind(Kind.CLOSED, "discard after close", () -> d.discard(0, 1));
        expectKind(Kind.CLOSED, "flush after close", d::flush);
    }

    private record Case(Op op, Kind kind) {
    }

    /**
     * Each case arms one fault on the backing device and runs the operation; a device may not reach
     * the backing device at once (a cache), so a write-like operation is followed by a flush. Whatever
     * reached the backing device and failed there must fail the operation, or that flush, with the
     * fault's kind: a backing error is never acknowledged as success.
     */
    private static void backingFaults(DeviceFactory f, long seed) throws Exception {
        DeviceFactory.Layering layering = f.layering();
        if (layering == null) {
            throw new TestAbortedException("no backing device to break (DeviceFactory.layering)");
        }
        FaultyDevice backing = new FaultyDevice(new MemoryDevice(SIZE), seed);
        BlockDevice d = layering.over(backing);
        try {
            List<Case> cases = List.of(new Case(Op.WRITE, Kind.IO_ERROR), new Case(Op.WRITE, Kind.NO_SPACE),
                    new Case(Op.READ, Kind.IO_ERROR), new Case(Op.WRITE_ZEROES, Kind.IO_ERROR),
                    new Case(Op.FLUSH, Kind.IO_ERROR));
            int round = 0;
            for (Case c : cases) {
                round++;
                byte[] content = filled(SIZE, round);
                write(d, 0, content);
                d.flush();
                // A write-like operation may reach the backing device as either kind of write (a cache
                // writes zeroes back as bytes), so its fault is armed on both.
                Fault rule = switch (c.op()) {
                    case FLUSH -> Fault.error(c.kind()).on(Op.FLUSH);
                    case READ -> Fault.error(c.kind()).on(Op.READ).range(1000, 100);
                    default -> Fault.error(c.kind()).on(Op.WRITE, Op.WRITE_ZEROES).range(1000, 100);
                };
                FaultyDevice.Armed armed = backing.inject(rule);
                String fault = "the backing device's " + c.op() + " failing with " + c.kind();
                try {
                    switch (c.op()) {
                        case WRITE -> attempt(armed, c.kind(), "a write of 1000+100 while " + fault,
                                () -> d.write(1000, ByteBuffer.wrap(filled(100, 99))));
                        case READ -> attempt(armed, c.kind(), "a read of 1000+100 while " + fault,
                                () -> d.read(1000, ByteBuffer.allocate(100)));
                        case WRITE_ZEROES -> attempt(armed, c.kind(), "a write-zeroes of 1000+100 while " + fault,
                                () -> d.writeZeroes(1000, 100));
                        case FLUSH -> {
                            write(d, 1000, filled(100, 98));
                            content = read(d, 0, SIZE); // the write succeeded; only flushes fail
                            attempt(armed, c.kind(), "a flush while " + fault, d::flush);
                        }
                        default -> throw new IllegalStateException(c.op().toString());
                    }
                    if (c.op() != Op.READ && c.op() != Op.FLUSH && armed.firedCount() == 0) {
                        // Not at once (a cache): then at the flush, which must report it.
                        attempt(armed, c.kind(), "a flush after a write-like operation, while " + fault, d::flush);
                    }
                } finally {
                    armed.disarm();
                }
                if (c.op() != Op.READ && armed.firedCount() == 0) {
                    throw Violation.of("a %s of 1000+100 and a flush after it succeeded without ever reaching the"
                            + " backing device: layering says the device's writes and flushes reach it", c.op());
                }
                // The fault has cleared: the device works again, and only the failed range may differ.
                byte[] now = read(d, 0, SIZE);
                for (int i = 0; i < SIZE; i++) {
                    boolean failedRange = i >= 1000 && i < 1100 && c.op() != Op.READ && c.op() != Op.FLUSH;
                    if (!failedRange && now[i] != content[i]) {
                        throw Violation.of("after %s, byte %d outside the failed operation reads %d, expected %d", fault,
                                i, now[i], content[i]);
                    }
                }
                write(d, 1000, filled(100, 77));
                d.flush();
                byte[] back = read(d, 1000, 100);
                if (!Arrays.equals(back, filled(100, 77))) {
                    throw Violation.of("once %s cleared, a write of 77s at 1000+100 reads back %d at byte 1000", fault,
                            back[0]);
                }
                ByteBuffer onBacking = ByteBuffer.allocate(100);
                backing.inner().read(1000, onBacking);
                if (!Arrays.equals(onBacking.array(), filled(100, 77))) {
                    throw Violation.of("a write the device acknowledged and flushed is not on the backing device (byte 1000"
                            + " reads %d there, expected 77)", onBacking.array()[0]);
                }
            }
        } finally {
            Io.closeQuietly(d);
            Io.closeQuietly(backing);
        }
    }

    /**
     * Runs {@code call}: if the armed fault fired, the call must fail with {@code kind}; if not, it
     * may succeed (the operation did not reach the backing device) but not fail.
     */
    private static void attempt(FaultyDevice.Armed armed, Kind kind, String what, Io.Call call) throws Exception {
        long firedBefore = armed.firedCount();
        try {
            call.run();
        } catch (DeviceException e) {
            if (armed.firedCount() == firedBefore) {
                throw Violation.of("%s failed with %s (%s), though the backing device never failed", what, e.kind(),
                        e.getMessage());
            }
            if (e.kind() != kind) {
                throw Violation.of("%s failed with %s (%s), expected %s", what, e.kind(), e.getMessage(), kind);
            }
            return;
        }
        if (armed.firedCount() != firedBefore) {
            throw Violation.of("%s succeeded: the backing device failed it and the error was swallowed, expected a"
                    + " DeviceException of kind %s", what, kind);
        }
    }
}
