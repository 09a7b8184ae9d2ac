package dev.handoff.device;

import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * A {@link BlockDevice} that forwards every call to another one: the base of every device that
 * changes a few operations of a device it wraps (fences a write, counts, refuses, drops, delays,
 * records) and leaves the rest as they are. A subclass overrides what it changes and calls
 * {@code super} (or {@link #delegate()}) for the device's own behaviour.
 *
 * <p>Every method forwards, {@link #close()} included: a wrapper that does not own its device
 * overrides {@code close} (and says so). {@link #nextData} and {@link #nextHole} forward too, so
 * a wrapped sparse device stays sparse to a copy.
 *
 * <p>Threading: as the device it forwards to; this class adds no state. A subclass whose
 * {@link #delegate()} can change (a route switched at run time) documents how that change is
 * ordered with the calls in flight.
 */
public abstract class ForwardingBlockDevice implements BlockDevice {
    private final BlockDevice delegate;

    /** Forwards to {@code delegate}. */
    protected ForwardingBlockDevice(BlockDevice delegate) {
        this.delegate = Objects.requireNonNull(delegate, "delegate");
    }

    /** The device calls go to; the one given to the constructor unless a subclass routes elsewhere. */
    protected BlockDevice delegate() {
        return delegate;
    }

    @Override
    public long size() {
        return delegate().size();
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        delegate().read(offset, dst);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        delegate().write(offset, src);
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        delegate().writeZeroes(offset, length);
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        delegate().discard(offset, length);
    }

    @Override
    public long nextData(long offset) throws DeviceException {
        return delegate().nextData(offset);
    }

    @Override
    public long nextHole(long offset) throws DeviceException {
        return delegate().nextHole(offset);
    }

    @Override
    public void flush() throws DeviceException {
        delegate().flush();
    }

    @Override
    public void close() throws DeviceException {
        delegate().close();
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[" + delegate() + "]";
    }
}
