package dev.handoff.device;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.EnumSet;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * A decorator that injects errors and latency into another device, for tests, the simulator and
 * the command line's {@code --inject-target-errors}.
 *
 * <p>Faults are {@link Fault} rules matched by operation, byte range, count and a probability
 * drawn from this device's seeded random source, so the same seed and the same sequence of
 * operations inject the same faults. Rules can be added and removed while I/O runs. An injected
 * error is raised <em>before</em> the operation reaches the inner device (nothing is applied),
 * unless the rule is {@link Fault#torn() torn}: then a write applies its first half, then fails,
 * as a crash in the middle of a write would.
 */
public final class FaultyDevice implements BlockDevice {

    /** The operations a fault can match. */
    public enum Op { READ, WRITE, WRITE_ZEROES, DISCARD, FLUSH }

    private final BlockDevice inner;
    private final SplittableRandom random;
    private final List<Armed> armed = new CopyOnWriteArrayList<>();
    private final AtomicLong injected = new AtomicLong();

    /** Wraps {@code inner} with a fixed seed (0). */
    public FaultyDevice(BlockDevice inner) {
        this(inner, 0L);
    }

    /** Wraps {@code inner}; {@code seed} drives every probabilistic rule. */
    public FaultyDevice(BlockDevice inner, long seed) {
        this.inner = Objects.requireNonNull(inner, "inner");
        this.random = new SplittableRandom(seed);
    }

    /** Arms a fault; the returned handle disarms it. */
    public Armed inject(Fault fault) {
        Armed a = new Armed(Objects.requireNonNull(fault, "fault"));
        armed.add(a);
        return a;
    }

    /** Disarms every fault. */
    public void clearFaults() {
        armed.clear();
    }

    /** How many faults (errors and delays) have fired so far. */
    public long injectedCount() {
        return injected.get();
    }

    /** The wrapped device. */
    public BlockDevice inner() {
        return inner;
    }

    @Override
    public long size() {
        return inner.size();
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        before(Op.READ, offset, dst.remaining());
        inner.read(offset, dst);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        Fault torn = before(Op.WRITE, offset, src.remaining());
        if (torn != null) {
            ByteBuffer half = src.duplicate();
            half.limit(half.position() + src.remaining() / 2);
            inner.write(offset, half);
            throw torn.exception(Op.WRITE, offset, src.remaining());
        }
        inner.write(offset, src);
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        Fault torn = before(Op.WRITE_ZEROES, offset, length);
        if (torn != null) {
            inner.writeZeroes(offset, length / 2);
            throw torn.exception(Op.WRITE_ZEROES, offset, length);
        }
        inner.writeZeroes(offset, length);
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        before(Op.DISCARD, offset, length);
        inner.discard(offset, length);
    }

    /** The inner device's answer; faults are injected into data operations only. */
    @Override
    public long nextData(long offset) throws DeviceException {
        return inner.nextData(offset);
    }

    @Override
    public long nextHole(long offset) throws DeviceException {
        return inner.nextHole(offset);
    }

    @Override
    public void flush() throws DeviceException {
        before(Op.FLUSH, 0, inner.size());
        inner.flush();
    }

    @Override
    public void close() throws DeviceException {
        inner.close();
    }

    /**
     * Applies every matching rule: sleeps for latency rules, throws for error rules. Returns a
     * torn rule that fired (the caller applies half, then throws), or null.
     */
    private Fault before(Op op, long offset, long length) throws DeviceException {
        for (Armed a : armed) {
            Fault f = a.fault;
            if (!f.matches(op, offset, length) || !a.fires(this)) {
                continue;
            }
            injected.incrementAndGet();
            if (f.latencyNanos > 0) {
                LockSupport.parkNanos(f.latencyNanos);
            }
            if (f.kind != null) {
                if (f.torn && (op == Op.WRITE || op == Op.WRITE_ZEROES)) {
                    return f;
                }
                throw f.exception(op, offset, length);
            }
        }
        return null;
    }

    private boolean draw(double probability) {
        if (probability >= 1.0) {
            return true;
        }
        synchronized (random) {
            return random.nextDouble() < probability;
        }
    }

    /** An armed fault: counts its matches and can be disarmed. */
    public final class Armed {
        private final Fault fault;
        private final AtomicLong matches = new AtomicLong();
        private final AtomicLong fired = new AtomicLong();

        private Armed(Fault fault) {
            this.fault = fault;
        }

        private boolean fires(FaultyDevice device) {
            long n = matches.getAndIncrement();
            if (n < fault.skip) {
                return false;
            }
            if (!device.draw(fault.probability)) {
                return false;
            }
            // Count-limited: claim one of the remaining firings.
            while (true) {
                long f = fired.get();
                if (f >= fault.times) {
                    return false;
                }
                if (fired.compareAndSet(f, f + 1)) {
                    return true;
                }
            }
        }

        /** How many times this fault has fired. */
        public long firedCount() {
            return fired.get();
        }

        /** Disarms this fault. */
        public void disarm() {
            armed.remove(this);
        }
    }

    /**
     * An immutable fault rule. Start from {@link #error} or {@link #latency}, then narrow it:
     * {@code Fault.error(NO_SPACE).on(Op.WRITE).range(0, 1 << 20).after(2).times(1)}.
     */
    public static final class Fault {
        private final DeviceException.Kind kind;
        private final long latencyNanos;
        private final EnumSet<Op> ops;
        private final long rangeStart;
        private final long rangeEnd;
        private final long skip;
        private final long times;
        private final double probability;
        private final boolean torn;

        private Fault(DeviceException.Kind kind, long latencyNanos, EnumSet<Op> ops, long rangeStart,
                long rangeEnd, long skip, long times, double probability, boolean torn) {
            this.kind = kind;
            this.latencyNanos = latencyNanos;
            this.ops = ops;
            this.rangeStart = rangeStart;
            this.rangeEnd = rangeEnd;
            this.skip = skip;
            this.times = times;
            this.probability = probability;
            this.torn = torn;
        }

        /** Fails every operation (until narrowed) with an error of {@code kind}. */
        public static Fault error(DeviceException.Kind kind) {
            return new Fault(Objects.requireNonNull(kind, "kind"), 0, EnumSet.allOf(Op.class), 0,
                    Long.MAX_VALUE, 0, Long.MAX_VALUE, 1.0, false);
        }

        /** Delays every operation (until narrowed) by {@code delay}. */
        public static Fault latency(Duration delay) {
            long nanos = delay.toNanos();
            if (nanos <= 0) {
                throw new IllegalArgumentException("latency must be positive, got " + delay);
            }
            return new Fault(null, nanos, EnumSet.allOf(Op.class), 0, Long.MAX_VALUE, 0, Long.MAX_VALUE,
                    1.0, false);
        }

        /** Only these operations. */
        public Fault on(Op first, Op... rest) {
            return new Fault(kind, latencyNanos, EnumSet.of(first, rest), rangeStart, rangeEnd, skip, times,
                    probability, torn);
        }

        /** Only operations that overlap {@code [offset, offset + length)}. */
        public Fault range(long offset, long length) {
            if (offset < 0 || length <= 0 || offset > Long.MAX_VALUE - length) {
                throw new IllegalArgumentException("bad fault range " + offset + "+" + length);
            }
            return new Fault(kind, latencyNanos, ops, offset, offset + length, skip, times, probability, torn);
        }

        /** Lets the first {@code n} matching operations through. */
        public Fault after(long n) {
            if (n < 0) {
                throw new IllegalArgumentException("after must be >= 0, got " + n);
            }
            return new Fault(kind, latencyNanos, ops, rangeStart, rangeEnd, n, times, probability, torn);
        }

        /** Fires at most {@code n} times. */
        public Fault times(long n) {
            if (n < 1) {
                throw new IllegalArgumentException("times must be >= 1, got " + n);
            }
            return new Fault(kind, latencyNanos, ops, rangeStart, rangeEnd, skip, n, probability, torn);
        }

        /** Fires on a matching operation with probability {@code p}, drawn from the device's seed. */
        public Fault probability(double p) {
            if (!(p > 0.0 && p <= 1.0)) {
                throw new IllegalArgumentException("probability must be in (0, 1], got " + p);
            }
            return new Fault(kind, latencyNanos, ops, rangeStart, rangeEnd, skip, times, p, torn);
        }

        /** A failing write first applies half of its bytes (an error fault only). */
        public Fault torn() {
            if (kind == null) {
                throw new IllegalStateException("only an error fault can be torn");
            }
            return new Fault(kind, latencyNanos, ops, rangeStart, rangeEnd, skip, times, probability, true);
        }

        boolean matches(Op op, long offset, long length) {
            if (!ops.contains(op)) {
                return false;
            }
            if (op == Op.FLUSH) {
                return true;
            }
            long end = offset + Math.max(length, 1);
            return offset < rangeEnd && end > rangeStart;
        }

        DeviceException exception(Op op, long offset, long length) {
            return new DeviceException(kind, "injected " + kind + " on " + op + " at " + offset + "+" + length);
        }

        @Override
        public String toString() {
            return (kind != null ? "error " + kind : "latency " + latencyNanos + "ns") + " on " + ops
                    + (rangeEnd == Long.MAX_VALUE ? "" : " in [" + rangeStart + ", " + rangeEnd + ")")
                    + (skip > 0 ? " after " + skip : "") + (times == Long.MAX_VALUE ? "" : " x" + times)
                    + (probability < 1.0 ? " p=" + probability : "") + (torn ? " torn" : "");
        }
    }
}
