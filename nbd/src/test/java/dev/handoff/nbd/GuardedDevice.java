package dev.handoff.nbd;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A device wrapper that records every request the server should never have made: a range outside
 * the device, or any write to a device marked read-only. The server under test must validate
 * before calling the device, so a recorded violation is a server bug even though the inner device
 * would have refused the call. Also counts operations and lets a test hold an operation.
 */
final class GuardedDevice extends ForwardingBlockDevice {
    /** Runs before each operation reaches the inner device (e.g. to delay or block it). */
    interface Hook {
        void before(String op, long offset, long length) throws DeviceException;
    }

    private final boolean readOnly;
    private final List<String> violations = new CopyOnWriteArrayList<>();
    final AtomicLong writes = new AtomicLong();
    final AtomicLong flushes = new AtomicLong();
    final AtomicLong reads = new AtomicLong();
    private volatile Hook hook = (op, offset, length) -> { };

    GuardedDevice(BlockDevice inner, boolean readOnly) {
        super(inner);
        this.readOnly = readOnly;
    }

    void hook(Hook hook) {
        this.hook = hook;
    }

    List<String> violations() {
        return List.copyOf(violations);
    }

    private void check(String op, long offset, long length, boolean isWrite) {
        long size = size();
        if (offset < 0 || length < 0 || offset > size || length > size - offset) {
            violations.add(op + " outside the device: " + offset + "+" + length + " of " + size);
        }
        if (isWrite && readOnly) {
            violations.add(op + " on a read-only export at " + offset + "+" + length);
        }
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        check("read", offset, dst.remaining(), false);
        hook.before("read", offset, dst.remaining());
        reads.incrementAndGet();
        super.read(offset, dst);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        check("write", offset, src.remaining(), true);
        hook.before("write", offset, src.remaining());
        writes.incrementAndGet();
        super.write(offset, src);
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        check("writeZeroes", offset, length, true);
        hook.before("writeZeroes", offset, length);
        writes.incrementAndGet();
        super.writeZeroes(offset, length);
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        check("discard", offset, length, true);
        hook.before("discard", offset, length);
        writes.incrementAndGet();
        super.discard(offset, length);
    }

    @Override
    public long nextData(long offset) throws DeviceException {
        check("nextData", offset, 0, false);
        return super.nextData(offset);
    }

    @Override
    public long nextHole(long offset) throws DeviceException {
        check("nextHole", offset, 0, false);
        return super.nextHole(offset);
    }

    @Override
    public void flush() throws DeviceException {
        hook.before("flush", 0, 0);
        flushes.incrementAndGet();
        super.flush();
    }
}
