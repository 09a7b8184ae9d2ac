package dev.handoff.ownership;

import dev.handoff.device.DeviceException;
import java.util.concurrent.atomic.AtomicInteger;

/** Logs reads and writes of a record store, can fail the next ones, and can interleave a step before a write. */
final class RecordingRecordStore implements RecordStore {
    private final RecordStore inner;
    private final EventLog log;
    private final AtomicInteger failReads = new AtomicInteger();
    private final AtomicInteger failWrites = new AtomicInteger();
    private final java.util.concurrent.atomic.AtomicReference<Runnable> beforeWrite = new java.util.concurrent.atomic.AtomicReference<>();

    RecordingRecordStore(RecordStore inner, EventLog log) {
        this.inner = inner;
        this.log = log;
    }

    void failNextReads(int n) {
        failReads.set(n);
    }

    /** Runs {@code hook} once, just before the next record write, to force an interleaving. */
    void beforeNextWrite(Runnable hook) {
        beforeWrite.set(hook);
    }

    void failNextWrites(int n) {
        failWrites.set(n);
    }

    long writes() {
        return log.count("record:write");
    }

    long reads() {
        return log.count("record:read");
    }

    @Override
    public OwnershipRecord read() throws DeviceException {
        log.add("record:read");
        if (failReads.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR, "injected record read failure");
        }
        return inner.read();
    }

    @Override
    public OwnershipRecord compareAndWrite(long expectedEpoch, OwnershipRecord next) throws DeviceException {
        Runnable hook = beforeWrite.getAndSet(null);
        if (hook != null) {
            hook.run();
        }
        log.add("record:write " + next.epoch() + (next.clean() ? " clean" : " unclean"));
        if (failWrites.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR, "injected record write failure");
        }
        return inner.compareAndWrite(expectedEpoch, next);
    }

    @Override
    public String describe() {
        return inner.describe();
    }
}
