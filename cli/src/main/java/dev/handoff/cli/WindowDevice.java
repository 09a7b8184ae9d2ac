package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;

/**
 * A window of {@code size} bytes of a device, as a device of its own, for {@code handoff verify}:
 * each device the test kit asks for is a window over the one file or export being verified,
 * zeroed when made. The kit may hold several at once (a mirror's source and target), so
 * {@link Placer} puts each new window at the lowest offset where it overlaps no open one. Closing a
 * window closes only the window (its operations then fail with CLOSED) and frees its bytes for the
 * next; the device under it stays open. Thread-safe as the device under it is.
 *
 * <p>Access modes (CONTRIBUTING, "One accessor convention"): {@code closed} is set once by
 * {@link #close} ({@link #casClosed}: the winner frees the window's place) and loaded before each
 * operation ({@link #lvClosed}), pairing with it. Stronger than needed: an operation racing the close
 * may run either way, so an opaque load would do; a closed window is off every measured path.
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
    private final long start;
    private final long size;
    private final Placer placer;
    private volatile boolean closed; // through the accessors ("Access modes")

    private WindowDevice(BlockDevice base, long start, long size, Placer placer) {
        this.base = base;
        this.start = start;
        this.size = size;
        this.placer = placer;
    }

    /**
     * Where the windows over one device go: each new one at the lowest offset where it overlaps no
     * open window, within the device's first {@code limit} bytes. Thread-safe (its own lock).
     */
    static final class Placer {
        private final BlockDevice base;
        private final long limit;
        /** The open windows, by start; guarded by this. */
        private final java.util.TreeMap<Long, WindowDevice> open = new java.util.TreeMap<>();

        Placer(BlockDevice base, long limit) {
            if (limit > base.size()) {
                throw new IllegalArgumentException("windows within " + limit + " bytes of a device of " + base.size());
            }
            this.base = base;
            this.limit = limit;
        }

        /** A zeroed window of {@code size} bytes. */
        WindowDevice zeroed(long size) throws DeviceException {
            WindowDevice w;
            synchronized (this) {
                long at = 0;
                for (WindowDevice o : open.values()) {
                    if (at + size <= o.start) {
                        break;
                    }
                    at = Math.max(at, o.start + o.size);
                }
                if (size < 0 || at + size > limit) {
                    throw new IllegalArgumentException("no room for a window of " + size + " bytes: the checks' devices"
                            + " open at once need more than the " + limit + " bytes they may write");
                }
                w = new WindowDevice(base, at, size, this);
                open.put(at, w);
            }
            try {
                base.writeZeroes(w.start, size);
            } catch (DeviceException | RuntimeException e) {
                w.close();
                throw e;
            }
            return w;
        }

        private synchronized void free(WindowDevice w) {
            open.remove(w.start, w);
        }
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, dst.remaining(), size);
        base.read(start + offset, dst);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, src.remaining(), size);
        base.write(start + offset, src);
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, length, size);
        base.writeZeroes(start + offset, length);
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, length, size);
        base.discard(start + offset, length);
    }

    @Override
    public long nextData(long offset) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, 0, size);
        return offset == size ? size : Math.min(base.nextData(start + offset) - start, size);
    }

    @Override
    public long nextHole(long offset) throws DeviceException {
        ensureOpen();
        DeviceException.checkRange(offset, 0, size);
        return offset == size ? size : Math.min(base.nextHole(start + offset) - start, size);
    }

    @Override
    public void flush() throws DeviceException {
        ensureOpen();
        base.flush();
    }

    @Override
    public void close() {
        if (casClosed()) {
            placer.free(this);
        }
    }

    private void ensureOpen() throws DeviceException {
        if (lvClosed()) {
            throw new DeviceException(DeviceException.Kind.CLOSED, "window of " + base + " at " + start + " is closed");
        }
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private boolean lvClosed() {
        return (boolean) CLOSED.getVolatile(this); // pairs with svClosed; opaque would do
    }

    private boolean casClosed() {
        return CLOSED.compareAndSet(this, false, true); // one winner frees the place; pairs with lvClosed
    }
}
