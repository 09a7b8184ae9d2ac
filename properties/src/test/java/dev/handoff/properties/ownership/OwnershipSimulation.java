package dev.handoff.properties.ownership;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.fs.CrashFileSystem;
import dev.handoff.ownership.HandoffToken;
import dev.handoff.ownership.ImageFencedException;
import dev.handoff.ownership.ImageInactiveException;
import dev.handoff.ownership.OwnedImage;
import dev.handoff.ownership.OwnershipLock;
import dev.handoff.ownership.OwnershipRecord;
import dev.handoff.ownership.RecordStore;
import dev.handoff.ownership.UnregisteredImages;
import dev.handoff.properties.sim.PropertyViolation;
import dev.handoff.properties.ownership.OwnershipScenario.Action;
import dev.handoff.properties.ownership.OwnershipScenario.Fault;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The deterministic ownership simulator: two real {@link OwnedImage} handles on one image, on one
 * thread, in virtual time, with I/O faults, record-store faults and crashes.
 *
 * <h2>The world</h2>
 * Shared storage holds a durable image; each side sees it through its own host cache
 * ({@link SideView}): its writes stay in that cache until it flushes, the other side does not see
 * them, and a crash of the side drops them. The ownership record is the kernel's own sidecar store
 * ({@code SidecarRecordStore}, through the test-jar's {@link UnregisteredImages}) on a {@link CrashFileSystem}, which
 * keeps at a power loss only what was synced. The lock is a {@link SimLock}: one holder at a time,
 * released when its side crashes (the OS drops a dead process's locks), and lost on request
 * (LOSE_LOCK: a lock that vanished under a live holder, what fencing is for).
 *
 * <p>Time is virtual: it moves only by ADVANCE, and each handle reads it through its clock seam,
 * with the production recheck interval ({@value #RECHECK_MILLIS} ms). So a holder whose lock was
 * lost and whose epoch was taken over keeps writing on the epoch it has seen until the interval
 * has passed since its last record read, and the runs explore that window at its edges.
 *
 * <p>Faults (FAULT arms one, {@link Fault}): a side's next device write or flush fails; the next
 * record write, fsync (of the new file, or of the directory after the rename), rename or file
 * creation fails and changes nothing; or the power fails after a few more record file-system
 * calls, cutting a record write between its write, fsync and rename. POWER_LOSS, and a power cut
 * once it hits, take down the whole site: both processes die (their caches and locks go), and the
 * record's file system comes back with what was synced.
 *
 * <h2>Properties, after every action</h2>
 * <ul>
 *   <li>{@code one-active}: at most one live handle is ACTIVE (unless a lock was lost; then
 *       {@code one-writer}: at most one ACTIVE handle holds the record's epoch).</li>
 *   <li>{@code inactive-refuses-writes}: write, write-zeroes, discard and flush of an INACTIVE
 *       handle fail with ImageInactiveException and change nothing anywhere.</li>
 *   <li>{@code fenced-refuses-writes}: an ACTIVE handle that has read a newer epoch than its own
 *       refuses writes, and any ACTIVE handle older than the record refuses flushes (a flush
 *       re-reads the record), with ImageFencedException, changing nothing.</li>
 *   <li>{@code fencing-interval}: a write of a holder whose epoch was taken over at least one
 *       recheck interval ago (in virtual time) is refused; a write inside the interval, by a
 *       holder that has not read the newer epoch, may still be admitted: the check-then-write
 *       window fencing bounds (DESIGN §4.3, the Ownership spec's stale write).</li>
 *   <li>{@code active-accepts-writes}: an ACTIVE, unfenced handle's writes and flushes succeed
 *       unless a fault was injected into them.</li>
 *   <li>{@code faults-reach-caller}: an operation into which an injected fault fired (a device
 *       write or flush, a record file-system call, a power cut) fails; a failed activation leaves
 *       the handle INACTIVE without the lock, a failed inactivation or handoff leaves it ACTIVE
 *       with the lock.</li>
 *   <li>{@code durable-matches-model}: the shared durable image is exactly what the owners
 *       acknowledged and then flushed (a flush, an inactivation, a prepare, a close), in order
 *       (plus what a transition that failed after its device flush made durable).</li>
 *   <li>{@code handoff-sees-acked-writes}: a handle that has just become ACTIVE (activate, accept,
 *       abort) reads, through its own caches, every write acknowledged and flushed before, and
 *       nothing else: no stale header cache, no lost write.</li>
 *   <li>{@code reads-match-model}: a read through a handle returns the durable image plus that
 *       side's own unflushed writes (except on an ACTIVE handle already fenced by a newer epoch:
 *       it may still serve its header cache).</li>
 *   <li>{@code handoff-token}: accept and abort succeed only while the record still shows the
 *       token's epoch and owner, clean.</li>
 *   <li>{@code close-inactive-writes-nothing}: closing an INACTIVE handle changes neither the record
 *       nor the image.</li>
 *   <li>{@code record-old-or-new}: after a power loss the record reads back whole, and is the last
 *       one whose write returned or one whose write failed after it: never torn, never older.</li>
 *   <li>{@code epoch-monotonic}: the record's epoch never goes down (across a power loss: never
 *       below the last record write that returned), and every activation raises it.</li>
 * </ul>
 */
public final class OwnershipSimulation {
    /** The recheck interval of the handles: the production default. */
    static final long RECHECK_MILLIS = 100;
    static final long RECHECK_NANOS = TimeUnit.MILLISECONDS.toNanos(RECHECK_MILLIS);
    /** Gives every run's record its own path (the sidecar store keeps one in-process lock per path). */
    private static final AtomicLong RUNS = new AtomicLong();

    /** How far an ADVANCE action moves the clock. */
    static long advanceMillis(Action a) {
        return Math.floorMod(a.length(), 151);
    }

    /** Shared storage: the durable image. */
    static final class SharedDisk {
        final byte[] durable;

        SharedDisk(int size) {
            durable = new byte[size];
        }
    }

    /**
     * One side's view of the shared disk: its unflushed writes over the durable image. An armed
     * fault makes the next write or flush fail before it changes anything.
     */
    static final class SideView implements BlockDevice {
        private final SharedDisk disk;
        private final List<long[]> ranges = new ArrayList<>();
        private final List<byte[]> data = new ArrayList<>();
        private boolean failWrite;
        private boolean failFlush;
        /** Faults fired and flushes done, counted for the simulator's checks. */
        int faultsFired;
        int flushes;

        SideView(SharedDisk disk) {
            this.disk = disk;
        }

        @Override
        public long size() {
            return disk.durable.length;
        }

        @Override
        public void read(long offset, ByteBuffer dst) throws DeviceException {
            int n = dst.remaining();
            DeviceException.checkRange(offset, n, size());
            byte[] out = view(offset, n);
            dst.put(out);
        }

        byte[] view(long offset, int n) {
            byte[] out = Arrays.copyOfRange(disk.durable, (int) offset, (int) offset + n);
            for (int i = 0; i < ranges.size(); i++) {
                long[] r = ranges.get(i);
                long from = Math.max(offset, r[0]);
                long to = Math.min(offset + n, r[0] + r[1]);
                if (from < to) {
                    System.arraycopy(data.get(i), (int) (from - r[0]), out, (int) (from - offset), (int) (to - from));
                }
            }
            return out;
        }

        @Override
        public void write(long offset, ByteBuffer src) throws DeviceException {
            DeviceException.checkRange(offset, src.remaining(), size());
            injectedWriteFault("write");
            byte[] b = new byte[src.remaining()];
            src.get(b);
            ranges.add(new long[] {offset, b.length});
            data.add(b);
        }

        @Override
        public void writeZeroes(long offset, long length) throws DeviceException {
            DeviceException.checkRange(offset, length, size());
            injectedWriteFault("write-zeroes");
            ranges.add(new long[] {offset, length});
            data.add(new byte[(int) length]);
        }

        @Override
        public void discard(long offset, long length) throws DeviceException {
            writeZeroes(offset, length);
        }

        private void injectedWriteFault(String what) throws DeviceException {
            if (failWrite) {
                failWrite = false;
                faultsFired++;
                throw new DeviceException(DeviceException.Kind.IO_ERROR, "injected I/O error (" + what + ")");
            }
        }

        /** The host writes its cache back; an armed fault fails it with the cache kept, nothing written. */
        @Override
        public void flush() throws DeviceException {
            if (failFlush) {
                failFlush = false;
                faultsFired++;
                throw new DeviceException(DeviceException.Kind.IO_ERROR, "injected I/O error (flush)");
            }
            for (int i = 0; i < ranges.size(); i++) {
                byte[] b = data.get(i);
                System.arraycopy(b, 0, disk.durable, (int) ranges.get(i)[0], b.length);
            }
            dropCache();
            flushes++;
        }

        /** The host died, or dropped a fenced image's dirty pages: unflushed writes are gone. */
        void dropCache() {
            ranges.clear();
            data.clear();
        }

        /** A host that died forgets the faults armed for it too. */
        void disarm() {
            failWrite = false;
            failFlush = false;
        }

        boolean hasUnflushed() {
            return !ranges.isEmpty();
        }

        @Override
        public void close() {
        }
    }

    /** An ownership lock for the simulation: one holder; a crash releases, LOSE_LOCK forgets. */
    static final class SimLock implements OwnershipLock {
        static final class Cell {
            SimLock holder;
        }

        private final Cell cell;

        SimLock(Cell cell) {
            this.cell = cell;
        }

        @Override
        public void acquire() throws DeviceException {
            if (cell.holder != null && cell.holder != this) {
                throw new ImageInactiveException("Failed to get \"write\" lock: the simulated image is locked");
            }
            cell.holder = this;
        }

        @Override
        public void release() {
            if (cell.holder == this) {
                cell.holder = null;
            }
        }

        @Override
        public boolean isHeld() {
            return cell.holder == this;
        }
    }

    /**
     * The record store as one side's handle sees it: the shared store, remembering the newest epoch
     * this handle has read (what it knows of takeovers) and which record writes returned or failed.
     */
    final class SideRecords implements RecordStore {
        private final int side;

        SideRecords(int side) {
            this.side = side;
        }

        @Override
        public OwnershipRecord read() throws DeviceException {
            OwnershipRecord r = records.read();
            seen[side] = Math.max(seen[side], r.epoch());
            return r;
        }

        @Override
        public OwnershipRecord compareAndWrite(long expectedEpoch, OwnershipRecord next) throws DeviceException {
            OwnershipRecord found;
            try {
                found = records.compareAndWrite(expectedEpoch, next);
            } catch (DeviceException e) {
                failedSinceReturned.add(next); // it may have reached the file system, or not
                throw e;
            }
            seen[side] = Math.max(seen[side], found.epoch());
            if (found.epoch() == expectedEpoch) {
                lastReturned = next;
                failedSinceReturned.clear();
            }
            return found;
        }

        @Override
        public String describe() {
            return records.describe();
        }
    }

    private static final String[] OWNER = {"source", "destination"};

    private final OwnershipScenario scenario;
    private final int size;
    private final SharedDisk disk;
    private final CrashFileSystem fs = new CrashFileSystem();
    private final RecordStore records;
    private final SimLock.Cell lockCell = new SimLock.Cell();
    private final SideView[] views = new SideView[2];
    private final SimLock[] locks = new SimLock[2];
    private final OwnedImage[] handles = new OwnedImage[2];
    private final HandoffToken[] tokens = new HandoffToken[2];
    private final byte[] durableModel;
    private final List<List<long[]>> pendingRanges = List.of(new ArrayList<>(), new ArrayList<>());
    private final List<List<byte[]>> pendingData = List.of(new ArrayList<>(), new ArrayList<>());
    /** The newest epoch each side's current handle has read in the record. */
    private final long[] seen = new long[2];
    /** When the record first showed an epoch newer than each side's ACTIVE handle's; -1: not yet. */
    private final long[] takenOverAt = {-1, -1};
    /** The epoch each side's handle had when takenOverAt was set. */
    private final long[] takenOverEpoch = new long[2];
    /** The last record whose write returned, and the records written since whose writes failed. */
    private OwnershipRecord lastReturned = OwnershipRecord.ABSENT;
    private final List<OwnershipRecord> failedSinceReturned = new ArrayList<>();
    private long nowNanos = TimeUnit.SECONDS.toNanos(1);
    private boolean lockLost;
    private long lastEpoch;
    private int action = -1;
    private int writeId;
    private int activations;
    private int faultsFired;
    private int powerLosses;

    public OwnershipSimulation(OwnershipScenario scenario) {
        this.scenario = scenario;
        this.size = scenario.size();
        this.disk = new SharedDisk(size);
        this.durableModel = new byte[size];
        for (int s = 0; s < 2; s++) {
            views[s] = new SideView(disk);
            locks[s] = new SimLock(lockCell);
        }
        try {
            Path dir = fs.createSyncedDirectories("/shared/run-" + RUNS.incrementAndGet());
            records = UnregisteredImages.sidecarRecords(dir.resolve("disk.img.owner"));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** What a run saw, for the test's totals. */
    public record Outcome(int activations, int faultsFired, int powerLosses) {
    }

    /** Runs the scenario; throws {@link PropertyViolation}. */
    public Outcome run() {
        try {
            for (int s = 0; s < 2; s++) {
                handles[s] = open(s);
            }
            List<Action> actions = scenario.actions();
            for (action = 0; action < actions.size(); action++) {
                apply(actions.get(action));
                if (fs.powerLost()) {
                    powerLoss();
                }
                checkAfterAction();
            }
        } catch (DeviceException e) {
            throw new PropertyViolation("no-exception", action, "unexpected " + e, e);
        }
        return new Outcome(activations, faultsFired, powerLosses);
    }

    private OwnedImage open(int side) throws DeviceException {
        seen[side] = 0;
        takenOverAt[side] = -1;
        return UnregisteredImages.assemble(views[side], new SideRecords(side), locks[side], OWNER[side], "simulated image",
                OwnedImage.State.INACTIVE, RECHECK_NANOS, scenario.headerBytes(), () -> nowNanos);
    }

    /* ---- Actions ---- */

    private void apply(Action a) throws DeviceException {
        int s = a.side();
        OwnedImage h = handles[s];
        switch (a.op()) {
            case CRASH -> crash(s);
            case RESTART -> {
                if (h == null) {
                    handles[s] = open(s);
                }
            }
            case LOSE_LOCK -> {
                if (locks[s].isHeld()) {
                    locks[s].release();
                    lockLost = true;
                }
            }
            case ADVANCE -> nowNanos += TimeUnit.MILLISECONDS.toNanos(advanceMillis(a));
            case FAULT -> arm(s, a);
            case POWER_LOSS -> powerLoss();
            default -> {
                if (h != null) {
                    applyToHandle(a, s, h);
                }
            }
        }
    }

    private void crash(int s) {
        views[s].dropCache();
        views[s].disarm();
        clearPending(s);
        locks[s].release();
        handles[s] = null;
    }

    private void arm(int s, Action a) {
        switch (Fault.of(a.length())) {
            case DEVICE_WRITE -> views[s].failWrite = true;
            case DEVICE_FLUSH -> views[s].failFlush = true;
            case RECORD_WRITE -> fs.failCall("write", 0);
            case RECORD_FSYNC -> fs.failCall("force", 0);
            case RECORD_DIR_FSYNC -> fs.failCall("force", 1);
            case RECORD_RENAME -> fs.failCall("rename", 0);
            case RECORD_CREATE -> fs.failCall("create", 0);
            case POWER_CUT -> fs.powerLossAfter(Math.floorMod(a.offset(), 7));
        }
    }

    /**
     * The site loses power: both processes die (caches, locks, handles gone), the record's file
     * system keeps what was synced. The record read back must be whole, and the last one whose
     * write returned or one written (and failed) after it.
     */
    private void powerLoss() throws DeviceException {
        powerLosses++;
        for (int s = 0; s < 2; s++) {
            crash(s);
        }
        fs.crash();
        OwnershipRecord after;
        try {
            after = records.read();
        } catch (DeviceException e) {
            throw violation("record-old-or-new", "after a power loss the record is unreadable (torn): " + e.getMessage()
                    + "; the last record write that returned wrote " + lastReturned);
        }
        if (!after.equals(lastReturned) && !failedSinceReturned.contains(after)) {
            throw violation("record-old-or-new", "after a power loss the record is " + after + "; the last record"
                    + " write that returned wrote " + lastReturned + ", and the writes that failed since wrote "
                    + failedSinceReturned);
        }
        if (after.epoch() < lastReturned.epoch()) {
            throw violation("epoch-monotonic", "after a power loss the record went back to " + after
                    + " from the returned write of " + lastReturned);
        }
        lastReturned = after;
        failedSinceReturned.clear();
        lastEpoch = after.epoch();
    }

    private void applyToHandle(Action a, int s, OwnedImage h) throws DeviceException {
        boolean writable = h.state() == OwnedImage.State.ACTIVE && h.epoch() >= records.read().epoch();
        switch (a.op()) {
            case WRITE -> write(a, s, h, writable);
            case READ -> {
                long off = Math.floorMod(a.offset(), size);
                int len = (int) (1 + Math.floorMod(a.length() - 1L, size - off));
                ByteBuffer dst = ByteBuffer.allocate(len);
                h.read(off, dst);
                byte[] want = expectedView(s, off, len);
                int at = Arrays.mismatch(dst.array(), want);
                // A holder whose lock was lost and who has not noticed yet (its epoch is behind the
                // record's) may serve reads from its header cache: fencing stops its writes, not
                // its stale reads (OwnedImage's fencing contract). Found by the fuzzer; kept in
                // the corpus as fenced-holder-reads-its-header-cache.
                boolean fenced = h.state() == OwnedImage.State.ACTIVE && h.epoch() < records.read().epoch();
                if (at >= 0 && !fenced) {
                    throw violation("reads-match-model", "side " + s + " (" + h.state() + ") read " + dst.array()[at]
                            + " at " + (off + at) + " where the model has " + want[at]);
                }
            }
            case FLUSH -> refusedOrDone(s, h, writable, false, "flush", () -> {
                h.flush();
                commitPending(s);
            });
            case ACTIVATE -> transition(s, h, () -> h.activate(), null);
            case INACTIVATE -> flushingTransition(s, h, writable, () -> h.inactivate());
            case PREPARE -> {
                if (h.state() == OwnedImage.State.ACTIVE) {
                    flushingTransition(s, h, writable, () -> tokens[s] = h.prepareHandoff());
                }
            }
            case ACCEPT -> {
                HandoffToken t = tokens[1 - s];
                if (t != null && h.state() == OwnedImage.State.INACTIVE) {
                    transition(s, h, () -> h.acceptHandoff(t), t);
                }
            }
            case ABORT -> {
                HandoffToken t = tokens[s];
                if (t != null && h.state() == OwnedImage.State.INACTIVE) {
                    transition(s, h, () -> h.abortHandoff(), t);
                }
            }
            case CLOSE -> close(s, h, writable);
            default -> throw new IllegalStateException(a.toString());
        }
    }

    private interface Call {
        void run() throws DeviceException;
    }

    private void write(Action a, int s, OwnedImage h, boolean writable) throws DeviceException {
        long off = Math.floorMod(a.offset(), size);
        int len = (int) (1 + Math.floorMod(a.length() - 1L, size - off));
        byte[] data = new byte[len];
        int id = ++writeId;
        for (int i = 0; i < len; i++) {
            data[i] = (byte) ((id * 31 + (off + i) * 7) | 1);
        }
        refusedOrDone(s, h, writable, true, "write", () -> {
            h.write(off, ByteBuffer.wrap(data));
            pendingRanges.get(s).add(new long[] {off, len});
            pendingData.get(s).add(data);
        });
    }

    /** Runs {@code call}, and says whether an injected fault fired inside it (its exception goes to {@code thrown}). */
    private boolean runCountingFaults(Call call, DeviceException[] thrown) {
        boolean recordArmed = fs.failureArmed();
        boolean powerBefore = fs.powerLost();
        int deviceBefore = views[0].faultsFired + views[1].faultsFired;
        try {
            call.run();
        } catch (DeviceException e) {
            thrown[0] = e;
        }
        boolean fired = views[0].faultsFired + views[1].faultsFired > deviceBefore
                || (recordArmed && !fs.failureArmed()) || (!powerBefore && fs.powerLost());
        if (fired) {
            faultsFired++;
        }
        return fired;
    }

    /**
     * A data operation: done iff the handle is ACTIVE and unfenced; refused with the right exception
     * otherwise; failed, changing nothing it acknowledged, if a fault fired in it. A stale write
     * (the handle's epoch taken over, not yet noticed) may be done inside the recheck interval.
     */
    private void refusedOrDone(int s, OwnedImage h, boolean writable, boolean isWrite, String what, Call call)
            throws DeviceException {
        OwnedImage.State state = h.state();
        byte[] durableBefore = disk.durable.clone();
        boolean cachedBefore = views[s].hasUnflushed();
        DeviceException[] thrown = new DeviceException[1];
        boolean fired = runCountingFaults(call, thrown);
        DeviceException e = thrown[0];
        if (e instanceof ImageInactiveException) {
            if (state == OwnedImage.State.ACTIVE && writable) {
                throw violation("active-accepts-writes", what + " of ACTIVE side " + s + " refused: " + e.getMessage());
            }
            checkUntouched(s, what, durableBefore, cachedBefore, "inactive-refuses-writes");
            return;
        }
        if (e instanceof ImageFencedException) {
            if (writable) {
                throw violation("active-accepts-writes", what + " of unfenced side " + s + " refused: " + e.getMessage());
            }
            checkUntouched(s, what, durableBefore, cachedBefore, "fenced-refuses-writes");
            return;
        }
        if (e != null) {
            if (!fired) {
                throw new PropertyViolation("no-exception", action, "unexpected " + e, e);
            }
            return; // the fault reached the caller; a failed device call changed nothing (SideView)
        }
        if (fired) {
            throw violation("faults-reach-caller", "an injected fault fired inside the " + what + " of side " + s
                    + ", which returned normally");
        }
        if (state == OwnedImage.State.INACTIVE) {
            throw violation("inactive-refuses-writes", what + " of INACTIVE side " + s + " was accepted");
        }
        if (!writable) {
            long record = records.read().epoch();
            if (!isWrite || seen[s] > h.epoch()) {
                throw violation("fenced-refuses-writes", what + " of side " + s + " with epoch " + h.epoch()
                        + " was accepted though the record shows epoch " + record
                        + (isWrite ? " and the handle had read it" : ""));
            }
            long since = nowNanos - takenOverAt[s];
            if (takenOverAt[s] < 0 || since >= RECHECK_NANOS) {
                throw violation("fencing-interval", what + " of side " + s + " with epoch " + h.epoch()
                        + " was accepted " + TimeUnit.NANOSECONDS.toMillis(since) + " ms after the record moved to a"
                        + " newer epoch (now " + record + "), at least the recheck interval of " + RECHECK_MILLIS
                        + " ms");
            }
        }
    }

    private void checkUntouched(int s, String what, byte[] durableBefore, boolean cachedBefore, String property) {
        if (!Arrays.equals(durableBefore, disk.durable) || views[s].hasUnflushed() != cachedBefore) {
            throw violation(property, "the refused " + what + " of side " + s + " still reached the disk");
        }
    }

    /** inactivate / prepare: flush, record clean, INACTIVE; a fenced handle writes nothing. */
    private void flushingTransition(int s, OwnedImage h, boolean writable, Call call) throws DeviceException {
        if (h.state() != OwnedImage.State.ACTIVE) {
            call.run(); // a no-op on INACTIVE
            return;
        }
        byte[] durableBefore = disk.durable.clone();
        int flushesBefore = views[s].flushes;
        boolean held = locks[s].isHeld(); // not after LOSE_LOCK
        DeviceException[] thrown = new DeviceException[1];
        boolean fired = runCountingFaults(call, thrown);
        DeviceException e = thrown[0];
        if (e instanceof ImageFencedException) {
            if (writable) {
                throw violation("active-accepts-writes", "inactivation of unfenced side " + s + " refused: " + e);
            }
            if (!Arrays.equals(durableBefore, disk.durable)) {
                throw violation("fenced-refuses-writes", "a fenced inactivation of side " + s + " flushed data");
            }
            views[s].dropCache(); // the host drops a fenced image's dirty pages (see class comment)
            clearPending(s);
            return;
        }
        if (e != null) {
            if (!fired) {
                throw new PropertyViolation("no-exception", action, "unexpected " + e, e);
            }
            if (!fs.powerLost() && (h.state() != OwnedImage.State.ACTIVE || locks[s].isHeld() != held)) {
                throw violation("faults-reach-caller", "a failed inactivation of side " + s + " left it " + h.state()
                        + (locks[s].isHeld() == held ? "" : " without its lock") + ": " + e.getMessage());
            }
            if (views[s].flushes > flushesBefore) {
                commitPending(s); // the device flush happened before the failure: the data is durable
            }
            return;
        }
        if (fired) {
            throw violation("faults-reach-caller", "an injected fault fired inside the inactivation of side " + s
                    + ", which returned normally");
        }
        if (!writable) {
            throw violation("fenced-refuses-writes", "side " + s + " inactivated with epoch " + h.epoch()
                    + " though the record shows " + records.read().epoch());
        }
        commitPending(s);
    }

    /** activate / accept / abort; {@code token} is what accept or abort must find in the record. */
    private void transition(int s, OwnedImage h, Call call, HandoffToken token) throws DeviceException {
        OwnershipRecord before = records.read();
        boolean wasActive = h.state() == OwnedImage.State.ACTIVE;
        DeviceException[] thrown = new DeviceException[1];
        boolean fired;
        try {
            fired = runCountingFaults(call, thrown);
        } catch (IllegalStateException e) {
            return; // accept/abort on a handle in the wrong state: documented refusal
        }
        DeviceException e = thrown[0];
        if (e instanceof ImageInactiveException || e instanceof ImageFencedException) {
            if (h.state() == OwnedImage.State.ACTIVE && !wasActive) {
                throw violation("one-active", "side " + s + " is ACTIVE after its activation failed: " + e);
            }
            return;
        }
        if (e != null) {
            if (!fired) {
                throw new PropertyViolation("no-exception", action, "unexpected " + e, e);
            }
            if (!wasActive && (h.state() != OwnedImage.State.INACTIVE || locks[s].isHeld())) {
                throw violation("faults-reach-caller", "a failed activation of side " + s + " left it " + h.state()
                        + (locks[s].isHeld() ? " holding the lock" : "") + ": " + e.getMessage());
            }
            return;
        }
        if (fired) {
            throw violation("faults-reach-caller", "an injected fault fired inside the activation of side " + s
                    + ", which returned normally");
        }
        if (wasActive || h.state() != OwnedImage.State.ACTIVE) {
            return;
        }
        activations++;
        takenOverAt[s] = -1;
        if (token != null && !(before.epoch() == token.epoch() && before.ownerId().equals(token.ownerId())
                && before.clean())) {
            throw violation("handoff-token", "side " + s + " activated with token " + token + " but the record was "
                    + before);
        }
        OwnershipRecord after = records.read();
        if (after.epoch() <= before.epoch()) {
            throw violation("epoch-monotonic", "activation of side " + s + " left the record at " + after
                    + " (was " + before + ")");
        }
        // Everything acknowledged and flushed before, through this handle's own caches.
        ByteBuffer all = ByteBuffer.allocate(size);
        h.read(0, all);
        byte[] want = expectedView(s, 0, size);
        int at = Arrays.mismatch(all.array(), want);
        if (at >= 0) {
            throw violation("handoff-sees-acked-writes", "side " + s + " became ACTIVE and reads " + all.array()[at]
                    + " at byte " + at + " where the last acknowledged, flushed write left " + want[at]);
        }
    }

    private void close(int s, OwnedImage h, boolean writable) throws DeviceException {
        OwnedImage.State state = h.state();
        OwnershipRecord recordBefore = records.read();
        byte[] durableBefore = disk.durable.clone();
        int flushesBefore = views[s].flushes;
        DeviceException[] thrown = new DeviceException[1];
        boolean fired = runCountingFaults(h::close, thrown);
        DeviceException e = thrown[0];
        if (state == OwnedImage.State.INACTIVE && fired) {
            throw violation("close-inactive-writes-nothing", "closing INACTIVE side " + s + " reached the record or"
                    + " the device: an injected fault fired inside it");
        }
        if (e != null && state == OwnedImage.State.ACTIVE && writable && !fired) {
            throw violation("active-accepts-writes", "close of ACTIVE side " + s + " failed: " + e);
        }
        if (e == null && fired) {
            throw violation("faults-reach-caller", "an injected fault fired inside the close of side " + s
                    + ", which returned normally");
        }
        handles[s] = null;
        if (state == OwnedImage.State.INACTIVE) {
            if (!records.read().equals(recordBefore) || !Arrays.equals(durableBefore, disk.durable)) {
                throw violation("close-inactive-writes-nothing", "closing INACTIVE side " + s + " changed "
                        + (records.read().equals(recordBefore) ? "the image" : "the record " + recordBefore + " -> "
                        + records.read()));
            }
            views[s].dropCache();
            clearPending(s);
        } else if (writable && (e == null || views[s].flushes > flushesBefore)) {
            commitPending(s); // acknowledged, or made durable by a flush before the failure
        } else {
            views[s].dropCache(); // a failed or fenced close: the process gives up its unflushed writes
            clearPending(s);
        }
    }

    /* ---- Model and checks ---- */

    private void commitPending(int s) {
        List<long[]> ranges = pendingRanges.get(s);
        for (int i = 0; i < ranges.size(); i++) {
            byte[] b = pendingData.get(s).get(i);
            System.arraycopy(b, 0, durableModel, (int) ranges.get(i)[0], b.length);
        }
        clearPending(s);
    }

    private void clearPending(int s) {
        pendingRanges.get(s).clear();
        pendingData.get(s).clear();
    }

    private byte[] expectedView(int s, long off, int len) {
        byte[] out = Arrays.copyOfRange(durableModel, (int) off, (int) off + len);
        List<long[]> ranges = pendingRanges.get(s);
        for (int i = 0; i < ranges.size(); i++) {
            long[] r = ranges.get(i);
            long from = Math.max(off, r[0]);
            long to = Math.min(off + len, r[0] + r[1]);
            if (from < to) {
                System.arraycopy(pendingData.get(s).get(i), (int) (from - r[0]), out, (int) (from - off),
                        (int) (to - from));
            }
        }
        return out;
    }

    private void checkAfterAction() throws DeviceException {
        OwnershipRecord record = records.read();
        if (record.epoch() < lastEpoch) {
            throw violation("epoch-monotonic", "the record went back from epoch " + lastEpoch + " to " + record);
        }
        lastEpoch = record.epoch();
        int active = 0;
        int writers = 0;
        for (int s = 0; s < 2; s++) {
            OwnedImage h = handles[s];
            if (h != null && h.state() == OwnedImage.State.ACTIVE) {
                active++;
                if (h.epoch() >= record.epoch()) {
                    writers++;
                } else if (takenOverAt[s] < 0 || takenOverEpoch[s] != h.epoch()) {
                    takenOverAt[s] = nowNanos; // the takeover of this handle's epoch happened in this action
                    takenOverEpoch[s] = h.epoch();
                }
            }
        }
        if (writers > 1 || (active > 1 && !lockLost)) {
            throw violation("one-active", active + " handles are ACTIVE (" + writers + " with the record's epoch "
                    + record.epoch() + ")");
        }
        int at = Arrays.mismatch(disk.durable, durableModel);
        if (at >= 0) {
            throw violation("durable-matches-model", "durable byte " + at + " is " + disk.durable[at]
                    + " where the owners' acknowledged, flushed writes left " + durableModel[at]);
        }
    }

    private PropertyViolation violation(String property, String message) {
        return new PropertyViolation(property, action, message);
    }
}
