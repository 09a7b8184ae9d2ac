package dev.handoff.ownership;

import dev.handoff.device.DeviceException;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A record store in memory, for memory devices. Keeps the encoded bytes rather than the object so
 * that the same codec runs as for sidecar files.
 */
final class MemoryRecordStore implements RecordStore {
    /*
     * One AtomicReference to an encoded record; arrays are never mutated after publication. read is
     * a volatile get; compareAndWrite decodes what it got and CASes from that
     * very array (VarHandle#compareAndSet semantics), so it fails if any write landed in between.
     */
    private final AtomicReference<byte[]> bytes = new AtomicReference<>();
    private final String name;

    MemoryRecordStore(String name) {
        this.name = name;
    }

    @Override
    public OwnershipRecord read() throws DeviceException {
        return decode(bytes.get()); // volatile load; pairs with the set / CAS below
    }

    @Override
    public OwnershipRecord compareAndWrite(long expectedEpoch, OwnershipRecord next) throws DeviceException {
        byte[] encoded = next.encode();
        while (true) {
            byte[] current = bytes.get(); // volatile load; the CAS below fails if it is no longer current
            OwnershipRecord found = decode(current);
            if (found.epoch() != expectedEpoch || bytes.compareAndSet(current, encoded)) {
                return found;
            }
        }
    }

    @Override
    public String describe() {
        return "in-memory record of " + name;
    }

    private OwnershipRecord decode(byte[] b) throws DeviceException {
        return b == null ? OwnershipRecord.ABSENT : OwnershipRecord.decode(b, describe());
    }
}
