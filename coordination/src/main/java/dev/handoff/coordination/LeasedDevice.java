package dev.handoff.coordination;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;
import java.nio.ByteBuffer;

/**
 * The image's device as a holder of a ZooKeeper lock sees it: a write, write-zeroes, discard or
 * flush is refused before it reaches the device unless the {@link SessionLease} is running, and is
 * acknowledged (returns) only if the lease is still running once the device has completed it.
 * Reads pass through: fencing guards writes.
 *
 * <p>Threading: as the wrapped device; the lease checks are one volatile load each.
 */
final class LeasedDevice extends ForwardingBlockDevice {
    private final SessionLease lease;

    LeasedDevice(BlockDevice inner, SessionLease lease) {
        super(inner);
        this.lease = lease;
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        int length = src.remaining();
        lease.admit("write");
        super.write(offset, src);
        lease.acknowledge("write of " + length + " bytes at " + offset);
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        lease.admit("write-zeroes");
        super.writeZeroes(offset, length);
        lease.acknowledge("write-zeroes of " + length + " bytes at " + offset);
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        lease.admit("discard");
        super.discard(offset, length);
        lease.acknowledge("discard of " + length + " bytes at " + offset);
    }

    @Override
    public void flush() throws DeviceException {
        lease.admit("flush");
        super.flush();
        lease.acknowledge("flush");
    }
}
