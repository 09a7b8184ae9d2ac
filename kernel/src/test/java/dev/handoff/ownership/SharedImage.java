package dev.handoff.ownership;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.MemoryDevice;
import java.nio.ByteBuffer;
import java.util.function.UnaryOperator;

/**
 * One in-memory image as several holders see it: one disk, one record store, one lock key. Each
 * handle may see the disk through its own decorator (recording, faulty), so a test can tell which
 * holder's operations reached the disk.
 */
final class SharedImage {
    static final int SIZE = 1 << 16;

    final BlockDevice disk;
    final EventLog log = new EventLog();
    final RecordingRecordStore records;
    final MemoryRecordStore store;
    private final Object lockKey = new Object();
    private final String name;

    SharedImage() {
        this(new MemoryDevice(SIZE));
    }

    SharedImage(BlockDevice disk) {
        this.disk = disk;
        this.name = "shared image@" + Integer.toHexString(System.identityHashCode(this));
        this.store = new MemoryRecordStore(name);
        this.records = new RecordingRecordStore(store, log);
    }

    OwnedImage open(String owner, OwnedImage.State state) throws DeviceException {
        return open(owner, state, d -> d, ImageTuning.DEFAULT);
    }

    OwnedImage open(String owner, OwnedImage.State state, UnaryOperator<BlockDevice> view, ImageTuning tuning)
            throws DeviceException {
        return ImageOpener.assemble(view.apply(disk), () -> { }, records, lock(), owner, name, state, tuning);
    }

    /**
     * A handle whose lock grants every request: the situation fencing and the epoch compare exist
     * for (a lock lost under a live holder, a file system whose locks do not work).
     */
    OwnedImage openWithFailedLock(String owner, OwnedImage.State state) throws DeviceException {
        return ImageOpener.assemble(disk, () -> { }, records, new GrantingLock(), owner, name, state,
                ImageTuning.DEFAULT);
    }

    /** Replaces the record behind every handle's back, as another host would (a compare with whatever is there). */
    void overwrite(OwnershipRecord record) throws DeviceException {
        store.compareAndWrite(store.read().epoch(), record);
    }

    /** An OwnershipLock that never refuses. */
    static final class GrantingLock implements OwnershipLock {
        private volatile boolean held;

        @Override
        public void acquire() {
            held = true;
        }

        @Override
        public void release() {
            held = false;
        }

        @Override
        public boolean isHeld() {
            return held;
        }
    }

    InProcessOwnershipLock lock() {
        return new InProcessOwnershipLock(lockKey, name);
    }

    /** The record as stored now; not logged. */
    OwnershipRecord record() throws DeviceException {
        return store.read();
    }

    static ByteBuffer bytes(int length, int value) {
        byte[] b = new byte[length];
        java.util.Arrays.fill(b, (byte) value);
        return ByteBuffer.wrap(b);
    }

    static byte[] read(BlockDevice d, long offset, int length) throws DeviceException {
        ByteBuffer b = ByteBuffer.allocate(length);
        d.read(offset, b);
        return b.array();
    }

    static byte[] filled(int length, int value) {
        return bytes(length, value).array();
    }
}
