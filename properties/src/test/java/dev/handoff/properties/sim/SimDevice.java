package dev.handoff.properties.sim;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.BooleanSupplier;

/**
 * A simulated disk for the deterministic simulators: a durable image, a volatile image on top
 * of it, seeded fault injection and a crash that keeps only what was flushed (plus a seeded
 * subset of the writes since, in order, as a real disk's write-back cache may).
 *
 * <p>Thread-safe, as {@link BlockDevice} requires: the test kit's real-thread checks run on it.
 * Its state (both images, the unflushed writes, the armed faults and the random) is guarded by
 * the device's monitor, which is never held while the simulator's {@link Hook} or
 * {@link Observer} runs, so a hook may call the device again, from any thread. The simulators
 * drive it from one thread at a time; then every decision it takes (whether a fault fires,
 * whether it tears, which unflushed writes survive a crash) comes from its own
 * {@link SplittableRandom}, so the same seed and the same sequence of operations give the same
 * outcome. The control methods ({@link #setHook}, {@link #peek} and the like) are for that one
 * simulator thread.
 *
 * <p>Faults are raised before anything is applied, except a <em>torn</em> write, which applies
 * its first half and then fails (only when {@link #tornAllowed} says so: a simulator disallows
 * it on the device its guest model tracks, since a guest cannot know what a torn write left).
 * Discard reads back as zeroes.
 */
public final class SimDevice implements BlockDevice {

    /** The operations a fault can be armed on. WRITE covers write, write-zeroes and discard. */
    public enum FaultOp { READ, WRITE, FLUSH }

    /** One injected fault, as seen by an observer. */
    public record Injected(String device, FaultOp op, DeviceException.Kind kind, long offset, long length,
            boolean torn) {
    }

    /** Told of every injected fault before it is thrown. */
    public interface Observer {
        void injected(Injected fault);
    }

    /**
     * Called inside every operation that gets past fault injection, just before and just after it
     * takes effect: the simulator runs other actions there (a copier step in the middle of a
     * guest write, a guest write between a copy's read and the rest of its step).
     */
    public interface Hook {
        void at(SimDevice device, boolean write, long offset, long length, boolean after);
    }

    private record Armed(DeviceException.Kind kind, int percent) {
    }

    private record Unflushed(long offset, byte[] data) {
    }

    private final String name;
    private final byte[] current;
    private final byte[] durable;
    private final SplittableRandom random;
    private final Map<FaultOp, Armed> faults = new EnumMap<>(FaultOp.class);
    private final List<Unflushed> unflushed = new ArrayList<>();
    private BooleanSupplier tornAllowed = () -> false;
    private Observer observer = f -> { };
    private Hook hook = (d, w, o, l, a) -> { };
    /** Volatile: a close on one thread fails the next operation on any other. */
    private volatile boolean closed;
    private long injected;

    /** A device holding {@code initial} (copied), all of it durable. */
    public SimDevice(String name, byte[] initial, long seed) {
        this.name = name;
        this.current = initial.clone();
        this.durable = initial.clone();
        this.random = new SplittableRandom(seed);
    }

    /** An all-zero device. */
    public SimDevice(String name, int size, long seed) {
        this(name, new byte[size], seed);
    }

    /* ---- Control (the simulator's side) ---- */

    /** Arms a fault on {@code op}: each matching operation fails with {@code kind} with {@code percent}% chance; 0 disarms. */
    public synchronized void setFault(FaultOp op, DeviceException.Kind kind, int percent) {
        if (percent <= 0) {
            faults.remove(op);
        } else {
            faults.put(op, new Armed(kind, Math.min(100, percent)));
        }
    }

    public synchronized void clearFaults() {
        faults.clear();
    }

    public synchronized boolean hasFaults() {
        return !faults.isEmpty();
    }

    public void setTornAllowed(BooleanSupplier allowed) {
        this.tornAllowed = allowed;
    }

    public void setHook(Hook hook) {
        this.hook = hook;
    }

    public void setObserver(Observer observer) {
        this.observer = observer;
    }

    /** The bytes a read would return now (no fault, no state change). */
    public byte[] peek() {
        return current;
    }

    /** The bytes a crash with no surviving unflushed write would leave. */
    public byte[] peekDurable() {
        return durable;
    }

    /** Whether every acknowledged write is durable. */
    public synchronized boolean isClean() {
        return unflushed.isEmpty();
    }

    public synchronized long injectedCount() {
        return injected;
    }

    /**
     * Power loss: every flushed byte stays; of the writes since the last flush a seeded random
     * subset survives, applied in the order they were made. The device stays usable.
     */
    public synchronized void crash() {
        System.arraycopy(durable, 0, current, 0, current.length);
        for (Unflushed u : unflushed) {
            if (random.nextBoolean()) {
                System.arraycopy(u.data, 0, current, (int) u.offset, u.data.length);
            }
        }
        System.arraycopy(current, 0, durable, 0, current.length);
        unflushed.clear();
    }

    /* ---- BlockDevice ---- */

    @Override
    public long size() {
        return current.length;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, dst.remaining(), current.length);
        int n = dst.remaining();
        maybeFail(FaultOp.READ, offset, n, false);
        hook.at(this, false, offset, n, false);
        synchronized (this) {
            dst.put(current, (int) offset, n);
        }
        hook.at(this, false, offset, n, true);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        ensureOpen();
        int n = src.remaining();
        DeviceException.checkRange(offset, n, current.length);
        byte[] data = new byte[n];
        src.get(data);
        applyOrTear(offset, data);
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, length, current.length);
        applyOrTear(offset, new byte[(int) length]);
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        writeZeroes(offset, length);
    }

    @Override
    public void flush() throws DeviceException {
        ensureOpen();
        maybeFail(FaultOp.FLUSH, 0, current.length, false);
        hook.at(this, true, 0, current.length, false);
        synchronized (this) {
            System.arraycopy(current, 0, durable, 0, current.length);
            unflushed.clear();
        }
        hook.at(this, true, 0, current.length, true);
    }

    @Override
    public void close() {
        closed = true;
    }

    @Override
    public String toString() {
        return "SimDevice[" + name + ", " + current.length + " bytes]";
    }

    /* ---- Internals ---- */

    private void applyOrTear(long offset, byte[] data) throws DeviceException {
        if (data.length == 0) {
            maybeFail(FaultOp.WRITE, offset, 0, false);
            return;
        }
        boolean torn = maybeFail(FaultOp.WRITE, offset, data.length, true);
        if (torn) {
            byte[] half = Arrays.copyOf(data, Math.max(1, data.length / 2));
            apply(offset, half);
            throw new DeviceException(DeviceException.Kind.IO_ERROR,
                    "injected torn write on " + name + " at " + offset + "+" + data.length);
        }
        hook.at(this, true, offset, data.length, false);
        apply(offset, data);
        hook.at(this, true, offset, data.length, true);
    }

    private synchronized void apply(long offset, byte[] data) {
        System.arraycopy(data, 0, current, (int) offset, data.length);
        unflushed.add(new Unflushed(offset, data));
    }

    /** Throws an armed fault if it fires; returns true if the caller must tear its write instead. */
    private boolean maybeFail(FaultOp op, long offset, long length, boolean mayTear) throws DeviceException {
        Injected fault = draw(op, offset, length, mayTear && tornAllowed.getAsBoolean());
        if (fault == null) {
            return false;
        }
        observer.injected(fault); // outside the monitor, as the hook
        if (fault.torn()) {
            return true;
        }
        throw new DeviceException(fault.kind(), "injected " + fault.kind() + " on " + name + " " + op + " at "
                + offset + "+" + length);
    }

    /** Whether an armed fault fires on this operation, and how: the random draws, under the monitor (no callback). */
    private synchronized Injected draw(FaultOp op, long offset, long length, boolean mayTear) {
        Armed a = faults.get(op);
        if (a == null || random.nextInt(100) >= a.percent) {
            return null;
        }
        injected++;
        boolean torn = mayTear && a.kind == DeviceException.Kind.IO_ERROR && random.nextBoolean();
        return new Injected(name, op, a.kind, offset, length, torn);
    }

    private void ensureOpen() throws DeviceException {
        if (closed) {
            throw new DeviceException(DeviceException.Kind.CLOSED, name + " is closed");
        }
    }
}
