package dev.handoff.ownership;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.ownership.OwnershipScenario.Action;
import dev.handoff.sim.PropertyViolation;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The deterministic ownership simulator: two real {@link OwnedImage} handles on one image, on one
 * thread, with a crash model.
 *
 * <h2>The world</h2>
 * Shared storage holds a durable image; each side sees it through its own host cache
 * ({@link SideView}): its writes stay in that cache until it flushes, the other side does not see
 * them, and a crash of the side drops them. The ownership record is a {@link MemoryRecordStore}
 * (atomic and durable, as the RecordStore contract requires). The lock is a {@link SimLock}: one
 * holder at a time, released when its side crashes (the OS drops a dead process's locks), and
 * lost on request (LOSE_LOCK: a lock that vanished under a live holder, what fencing is for).
 * Handles recheck the record on every write (recheck interval 0), so runs do not depend on time.
 *
 * <h2>Properties, after every action</h2>
 * <ul>
 *   <li>{@code one-active}: at most one live handle is ACTIVE (unless a lock was lost; then
 *       {@code one-writer}: at most one ACTIVE handle holds the record's epoch).</li>
 *   <li>{@code inactive-refuses-writes}: write, write-zeroes, discard and flush of an INACTIVE
 *       handle fail with ImageInactiveException and change nothing anywhere.</li>
 *   <li>{@code fenced-refuses-writes}: an ACTIVE handle whose epoch is older than the record's
 *       fails its writes and flushes with ImageFencedException and changes nothing.</li>
 *   <li>{@code active-accepts-writes}: an ACTIVE, unfenced handle's writes and flushes succeed.</li>
 *   <li>{@code durable-matches-model}: the shared durable image is exactly what the owners
 *       acknowledged and then flushed (a flush, an inactivation, a prepare, a close), in order.</li>
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
 *   <li>{@code epoch-monotonic}: the record's epoch never goes down, and every activation raises it.</li>
 * </ul>
 */
public final class OwnershipSimulation {

    /** Shared storage: the durable image. */
    static final class SharedDisk {
        final byte[] durable;

        SharedDisk(int size) {
            durable = new byte[size];
        }
    }

    /** One side's view of the shared disk: its unflushed writes over the durable image. */
    static final class SideView implements BlockDevice {
        private final SharedDisk disk;
        private final List<long[]> ranges = new ArrayList<>();
        private final List<byte[]> data = new ArrayList<>();

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
            byte[] b = new byte[src.remaining()];
            src.get(b);
            ranges.add(new long[] {offset, b.length});
            data.add(b);
        }

        @Override
        public void writeZeroes(long offset, long length) throws DeviceException {
            DeviceException.checkRange(offset, length, size());
            ranges.add(new long[] {offset, length});
            data.add(new byte[(int) length]);
        }

        @Override
        public void discard(long offset, long length) throws DeviceException {
            writeZeroes(offset, length);
        }

        @Override
        public void flush() {
            for (int i = 0; i < ranges.size(); i++) {
                byte[] b = data.get(i);
                System.arraycopy(b, 0, disk.durable, (int) ranges.get(i)[0], b.length);
            }
            dropCache();
        }

        /** The host died, or dropped a fenced image's dirty pages: unflushed writes are gone. */
        void dropCache() {
            ranges.clear();
            data.clear();
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

    private static final String[] OWNER = {"source", "destination"};

    private final OwnershipScenario scenario;
    private final int size;
    private final SharedDisk disk;
    private final MemoryRecordStore records = new MemoryRecordStore("simulated image");
    private final SimLock.Cell lockCell = new SimLock.Cell();
    private final SideView[] views = new SideView[2];
    private final SimLock[] locks = new SimLock[2];
    private final OwnedImage[] handles = new OwnedImage[2];
    private final HandoffToken[] tokens = new HandoffToken[2];
    private final byte[] durableModel;
    private final List<List<long[]>> pendingRanges = List.of(new ArrayList<>(), new ArrayList<>());
    private final List<List<byte[]>> pendingData = List.of(new ArrayList<>(), new ArrayList<>());
    private boolean lockLost;
    private long lastEpoch;
    private int action = -1;
    private int writeId;
    private int activations;

    public OwnershipSimulation(OwnershipScenario scenario) {
        this.scenario = scenario;
        this.size = scenario.size();
        this.disk = new SharedDisk(size);
        this.durableModel = new byte[size];
        for (int s = 0; s < 2; s++) {
            views[s] = new SideView(disk);
            locks[s] = new SimLock(lockCell);
        }
    }

    /** Runs the scenario; returns the number of activations; throws {@link PropertyViolation}. */
    public int run() {
        try {
            for (int s = 0; s < 2; s++) {
                handles[s] = open(s);
            }
            List<Action> actions = scenario.actions();
            for (action = 0; action < actions.size(); action++) {
                apply(actions.get(action));
                checkAfterAction();
            }
        } catch (DeviceException e) {
            throw new PropertyViolation("no-exception", action, "unexpected " + e, e);
        }
        return activations;
    }

    private OwnedImage open(int side) throws DeviceException {
        ImageTuning tuning = new ImageTuning(0, scenario.headerBytes());
        return ImageOpener.assemble(views[side], () -> { }, records, locks[side], OWNER[side], "simulated image",
                OwnedImage.State.INACTIVE, tuning);
    }

    /* ---- Actions ---- */

    private void apply(Action a) throws DeviceException {
        int s = a.side();
        OwnedImage h = handles[s];
        switch (a.op()) {
            case CRASH -> {
                views[s].dropCache();
                clearPending(s);
                locks[s].release();
                handles[s] = null;
            }
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
            default -> {
                if (h != null) {
                    applyToHandle(a, s, h);
                }
            }
        }
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
            case FLUSH -> refusedOrDone(s, h, writable, "flush", () -> {
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
        refusedOrDone(s, h, writable, "write", () -> {
            h.write(off, ByteBuffer.wrap(data));
            pendingRanges.get(s).add(new long[] {off, len});
            pendingData.get(s).add(data);
        });
    }

    /** A data operation: done iff the handle is ACTIVE and unfenced; refused with the right exception otherwise. */
    private void refusedOrDone(int s, OwnedImage h, boolean writable, String what, Call call) throws DeviceException {
        OwnedImage.State state = h.state();
        byte[] durableBefore = disk.durable.clone();
        boolean cachedBefore = views[s].hasUnflushed();
        try {
            call.run();
        } catch (ImageInactiveException e) {
            if (state == OwnedImage.State.ACTIVE && writable) {
                throw violation("active-accepts-writes", what + " of ACTIVE side " + s + " refused: " + e.getMessage());
            }
            checkUntouched(s, what, durableBefore, cachedBefore, "inactive-refuses-writes");
            return;
        } catch (ImageFencedException e) {
            if (writable) {
                throw violation("active-accepts-writes", what + " of unfenced side " + s + " refused: " + e.getMessage());
            }
            checkUntouched(s, what, durableBefore, cachedBefore, "fenced-refuses-writes");
            return;
        }
        if (state == OwnedImage.State.INACTIVE) {
            throw violation("inactive-refuses-writes", what + " of INACTIVE side " + s + " was accepted");
        }
        if (!writable) {
            throw violation("fenced-refuses-writes", what + " of side " + s + " with epoch " + h.epoch()
                    + " was accepted though the record shows epoch " + records.read().epoch());
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
        try {
            call.run();
        } catch (ImageFencedException e) {
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
        try {
            call.run();
        } catch (ImageInactiveException | ImageFencedException e) {
            if (h.state() == OwnedImage.State.ACTIVE && !wasActive) {
                throw violation("one-active", "side " + s + " is ACTIVE after its activation failed: " + e);
            }
            return;
        } catch (IllegalStateException e) {
            return; // accept/abort on a handle in the wrong state: documented refusal
        }
        if (wasActive || h.state() != OwnedImage.State.ACTIVE) {
            return;
        }
        activations++;
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
        try {
            h.close();
        } catch (DeviceException e) {
            if (state == OwnedImage.State.ACTIVE && writable) {
                throw violation("active-accepts-writes", "close of ACTIVE side " + s + " failed: " + e);
            }
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
        } else if (writable) {
            commitPending(s);
        } else {
            views[s].dropCache();
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
        for (OwnedImage h : handles) {
            if (h != null && h.state() == OwnedImage.State.ACTIVE) {
                active++;
                if (h.epoch() >= record.epoch()) {
                    writers++;
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
