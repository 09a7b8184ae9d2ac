package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.ownership.ImageInactiveException;
import java.nio.ByteBuffer;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * What the NBD clients of {@code serve} write through: the served image, or the guest device of a
 * mirror job started on it. It refuses writes once closed for a handoff (clients get EPERM), and
 * moves clients onto a new route (a job's guest device) only when no write is in flight.
 *
 * <p>Protocol: writes, write-zeroes, discards and flushes hold the read lock from the check until
 * the device returns; {@link #refuseWrites} and {@link #route} take the write lock, so each returns
 * only when no write is in flight, and none starts on the old route afterwards. That is what lets
 * a mirror job start on a served image: every write is either done before the job's guest device
 * takes over (and sync=full copies it), or goes through it (and is tracked). Reads, and the
 * allocation map, take no lock: both routes read the same bytes. {@code route} and {@code closed} are volatile, written under the
 * write lock and read under the read lock (or by reads, lock-free).
 */
final class ExportGate implements BlockDevice {
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final long size;
    private volatile BlockDevice route;
    private volatile boolean closed;

    ExportGate(BlockDevice initial) {
        this.route = initial;
        this.size = initial.size();
    }

    /** Refuses writes from now on; returns once the writes in flight are done. */
    void refuseWrites() {
        lock.writeLock().lock();
        try {
            closed = true;
        } finally {
            lock.writeLock().unlock();
        }
    }

    void acceptWrites() {
        closed = false;
    }

    /** Sends every later operation to {@code next}; returns once the writes in flight on the old route are done. */
    void route(BlockDevice next) {
        if (next.size() != size) {
            throw new IllegalArgumentException("a route of " + next.size() + " bytes for an export of " + size);
        }
        lock.writeLock().lock();
        try {
            route = next;
        } finally {
            lock.writeLock().unlock();
        }
    }

    BlockDevice route() {
        return route;
    }

    private interface Write {
        void run(BlockDevice device) throws DeviceException;
    }

    private void write(Write w) throws DeviceException {
        lock.readLock().lock();
        try {
            if (closed) {
                throw new ImageInactiveException("the image was handed over: writes are refused here");
            }
            w.run(route);
        } finally {
            lock.readLock().unlock();
        }
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        route.read(offset, dst);
    }

    /** The route's allocation map, lock-free as reads are (NBD block status answers from it). */
    @Override
    public long nextData(long offset) throws DeviceException {
        return route.nextData(offset);
    }

    @Override
    public long nextHole(long offset) throws DeviceException {
        return route.nextHole(offset);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        write(d -> d.write(offset, src));
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        write(d -> d.writeZeroes(offset, length));
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        write(d -> d.discard(offset, length));
    }

    @Override
    public void flush() throws DeviceException {
        write(BlockDevice::flush);
    }

    @Override
    public void close() {
        // the command closes the image and the targets itself
    }

    @Override
    public String toString() {
        return "ExportGate[" + route + "]";
    }
}
