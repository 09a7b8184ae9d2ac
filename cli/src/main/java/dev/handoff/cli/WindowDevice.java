package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;

/**
 * The first {@code size} bytes of a device, as a device of its own, for {@code handoff verify}:
 * each device the test kit asks for is a window over the one file or export being verified,
 * zeroed when made. Closing a window closes only the window (its operations then fail with
 * CLOSED); the device under it stays open. Thread-safe as the device under it is.
 *
 * <p>Access modes (CONTRIBUTING, "One accessor convention"): {@code closed} is stored by
 * {@link #close} ({@link #svClosed}) and loaded before each operation ({@link #lvClosed}), pairing
 * with it. Stronger than needed: an operation racing the close may run either way, so an opaque
 * pair would do; a closed window is off every measured path.
 */
final class WindowDevice implements BlockDevice {
    private static final VarHandle CLOSED;

    static {
        try {
            CLOSED = MethodHandles.lookup().findVarHandle(WindowDevice.class, "closed", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final BlockDevice base;
    private final long size;
    private volatile boolean closed; // through the accessors ("Access modes")

    private WindowDevice(BlockDevice base, long size) {
        this.base = base;
        this.size = size;
    }

    /** A window of {@code size} bytes over {@code base}, which must be at least that large, zeroed. */
    static WindowDevice zeroed(BlockDevice base, long size) throws DeviceException {
        if (size > base.size()) {
            throw new IllegalArgumentException("a window of " + size + " bytes over a device of " + base.size());
        }
        base.writeZeroes(0, size);
        return new WindowDevice(base, size);
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, dst.remaining(), size);
        base.read(offset, dst);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, src.remaining(), size);
        base.write(offset, src);
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, length, size);
        base.writeZeroes(offset, length);
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, length, size);
        base.discard(offset, length);
    }

    @Override
    public long nextData(long offset) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, 0, size);
        return offset == size ? size : Math.min(base.nextData(offset), size);
    }

    @Override
    public long nextHole(long offset) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, 0, size);
        return offset == size ? size : Math.min(base.nextHole(offset), size);
    }

    @Override
    public void flush() throws DeviceException {
        ensureOpen();
        base.flush();
    }

    @Override
    public void close() {
        svClosed();
    }

    private void ensureOpen() throws DeviceException {
        if (lvClosed()) {
            throw new DeviceException(DeviceException.Kind.CLOSED, "window of " + base + " is closed");
        }
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private boolean lvClosed() {
        return (boolean) CLOSED.getVolatile(this); // pairs with svClosed; opaque would do
    }

    private void svClosed() {
        CLOSED.setVolatile(this, true); // opaque would do
    }
}
