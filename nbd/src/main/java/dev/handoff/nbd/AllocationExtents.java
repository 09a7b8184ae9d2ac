package dev.handoff.nbd;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import java.nio.ByteBuffer;

/**
 * The {@code base:allocation} answer to an NBD_CMD_BLOCK_STATUS: a device's allocation map over a
 * range, as the payload of an {@code NBD_REPLY_TYPE_BLOCK_STATUS} chunk.
 *
 * <p>The map comes from {@link BlockDevice#nextData} and {@link BlockDevice#nextHole}: a range the
 * device reports as a hole is sent as {@code NBD_STATE_HOLE | NBD_STATE_ZERO} (unallocated, reads as
 * zeroes), everything else as data (status 0). A device that cannot tell reports no hole, so its
 * whole range is data: the safe answer, since a client copies data and may skip only holes. The
 * extents cover {@code [offset, offset + length)} from its start, never go past its end, and are at
 * most {@link #MAX_EXTENTS} (one with NBD_CMD_FLAG_REQ_ONE): the client asks again for the rest.
 *
 * <p>Stateless; called on a connection's worker threads. Like a read, the answer may be stale as
 * soon as it is sent if another client writes the range meanwhile.
 */
final class AllocationExtents {
    /** Extents in one reply at most: 8 KiB of payload, whatever the range and the map. */
    static final int MAX_EXTENTS = 1024;

    private AllocationExtents() {
    }

    /**
     * The chunk payload: {@code contextId}, then (length, status) per extent.
     *
     * @param offset,length a range inside the device, {@code length} in {@code [1, 2^32)}
     * @param one           at most one extent (NBD_CMD_FLAG_REQ_ONE)
     */
    static ByteBuffer of(BlockDevice device, int contextId, long offset, long length, boolean one)
            throws DeviceException {
        int max = one ? 1 : MAX_EXTENTS;
        long end = offset + length;
        ByteBuffer payload = ByteBuffer.allocate(4 + 8 * Math.min(max, 16));
        payload.putInt(contextId);
        long pos = offset;
        int extents = 0;
        while (pos < end && extents < max) {
            long data = device.nextData(pos);
            long next;
            int status;
            if (data > pos) {
                next = Math.min(end, data);
                status = STATE_HOLE_ZERO;
            } else {
                // At least one byte of data, so the walk always advances (a device whose map changes
                // under it may say "hole here" after "data here": data is the answer that loses nothing).
                next = Math.min(end, Math.max(device.nextHole(pos), pos + 1));
                status = 0;
            }
            if (payload.remaining() < 8) {
                payload = grow(payload, max);
            }
            payload.putInt((int) (next - pos)).putInt(status);
            extents++;
            pos = next;
        }
        return payload.flip();
    }

    private static final int STATE_HOLE_ZERO = NbdWire.STATE_HOLE | NbdWire.STATE_ZERO;

    private static ByteBuffer grow(ByteBuffer payload, int max) {
        int extents = (payload.capacity() - 4) / 8;
        ByteBuffer bigger = ByteBuffer.allocate(4 + 8 * Math.min(max, extents * 4));
        return bigger.put(payload.flip());
    }
}
