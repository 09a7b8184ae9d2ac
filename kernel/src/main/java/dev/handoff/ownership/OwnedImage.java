package dev.handoff.ownership;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A handle on an image that may be open in several places (two processes during a live
 * migration on shared storage) of which at most one is <em>active</em>: allowed to write data or
 * metadata. After QEMU's {@code BDRV_O_INACTIVE}.
 *
 * <h2>States</h2>
 * <ul>
 *   <li><b>ACTIVE</b>: this handle holds the image's {@link OwnershipLock} and has written its
 *       epoch into the {@link OwnershipRecord}. Every operation is allowed.</li>
 *   <li><b>INACTIVE</b>: {@link #write}, {@link #writeZeroes}, {@link #discard} and {@link #flush}
 *       fail with {@link ImageInactiveException} and nothing reaches the device; {@link #read} is
 *       allowed (it may see another owner's writes in progress). The lock is not held.</li>
 * </ul>
 * A closed handle reports INACTIVE and fails every operation with
 * {@link DeviceException.Kind#CLOSED}.
 *
 * <h2>Transitions</h2>
 * <ul>
 *   <li>{@link #activate()}: take the lock, drop every cache, re-read the record, write it with
 *       epoch {@code max(record epoch, any epoch this handle has seen) + 1} if it still shows the
 *       epoch just read (compare-and-write), become ACTIVE. On failure: still INACTIVE, lock
 *       released.</li>
 *   <li>{@link #inactivate()}: wait for in-flight writes (new ones wait for the outcome), flush the
 *       device, write the record clean (compare-and-write against this handle's epoch), become
 *       INACTIVE, release the lock. On failure before the record is written: still ACTIVE, and
 *       the exception says so.</li>
 *   <li>{@link #close()}: INACTIVE writes nothing at all; ACTIVE flushes, marks the record clean and
 *       releases the lock.</li>
 *   <li>Handoff: {@link #prepareHandoff()} (source), {@link #acceptHandoff} (destination),
 *       {@link #abortHandoff()} (source, if the migration failed). When accept and abort race, the
 *       lock lets one in; the compare of the record's epoch with the token, and the
 *       compare-and-write of the new epoch, let exactly one win even if the lock failed.</li>
 * </ul>
 * Transitions are idempotent: activating an ACTIVE handle or inactivating an INACTIVE one does
 * nothing.
 *
 * <h2>Fencing</h2>
 * A handle remembers the epoch it activated with. It refuses a write, write-zeroes, discard or
 * flush, before any byte reaches the device, once it has seen a newer epoch in the record (another
 * owner took over, which the lock should have made impossible: fencing is the second line). It
 * reads the record:
 * <ol>
 *   <li>on every {@link #flush()}, before the device flush;</li>
 *   <li>before the data flush of inactivate, prepare and close, and in the compare-and-write of
 *       the record that follows it;</li>
 *   <li>on a write, write-zeroes or discard when the recheck interval (100 ms) has passed since
 *       the last read; between reads, those operations compare with the newest epoch seen so far,
 *       one volatile load.</li>
 * </ol>
 * So, once another owner's activation has written its record with a newer epoch:
 * <ul>
 *   <li>this handle never writes the record again (every record write is a compare-and-write
 *       against its own epoch, atomic with respect to the other holders' record writes);</li>
 *   <li>every flush whose record read starts afterwards fails, so nothing this handle writes
 *       afterwards is ever acknowledged as durable;</li>
 *   <li>every write that starts more than one recheck interval afterwards fails.</li>
 * </ul>
 * Writes that start within the interval may still reach the device: for data, the check and the
 * write are two steps (a raw file offers no compare-and-write), so fencing bounds the damage of a
 * lost lock, and the lock prevents it. A fenced handle stays fenced until it is inactivated and
 * activated again.
 * Fencing guards writes, not reads: a holder that lost its lock and has not yet seen the newer
 * epoch may still serve reads of the first 4 KiB from its header cache after the new owner
 * rewrote them. Reads are advisory on a handle that may be fenced; take the lock (activate) to
 * read authoritatively.
 *
 * <h2>Caches</h2>
 * The handle caches the record it last read or wrote in a transition, and the image's first 4 KiB
 * (a format driver's header, served to reads while ACTIVE). Activation drops both before reading
 * anything, so nothing read before another owner's writes survives the handoff.
 *
 * <h2>Threading</h2>
 * Every method may be called from any thread. Transitions are serialized with each other and
 * exclude writes and flushes (which run concurrently with each other); reads run concurrently
 * with everything.
 *
 * <h2>Files</h2>
 * {@link #openFile} uses {@link QemuFileLock} on the image file and a sidecar record
 * ({@code <image>.owner}); handles on the same file in one process share one channel. Never open
 * and close another channel on a locked image in the same process, not even through
 * {@code Files.readAllBytes}: POSIX locks would silently go with it.
 *
 * <h2>Parts</h2>
 * A handle is three parts, each with its own protocol comment: {@link WriteAdmission} (which
 * operation may reach the device, the epochs, the drain), {@link Transitions} (the order of each
 * transition) and {@link HeaderCache}; {@link ImageOpener} builds handles.
 */
public final class OwnedImage implements BlockDevice {

    /** The two states of a handle. */
    public enum State {
        /** This handle owns the image and may write. */
        ACTIVE,
        /** This handle may only read; another holder may own the image. */
        INACTIVE
    }

    private final BlockDevice device;
    final RecordStore records;
    private final String ownerId;
    private final String name;
    final HeaderCache header;
    final WriteAdmission admission;
    final Transitions transitions;
    /** Null unless the handle is traced (OwnershipTrace, a test seam). */
    private final OwnershipTrace trace;

    /** {@code trace}: null, except for a traced handle (see {@link ImageOpener#file}). */
    OwnedImage(BlockDevice device, AutoCloseable deviceRelease, RecordStore records, OwnershipLock lock,
            String ownerId, String name, ImageTuning tuning, OwnershipTrace trace) {
        this.device = Objects.requireNonNull(device, "device");
        this.ownerId = Objects.requireNonNull(ownerId, "ownerId");
        this.name = Objects.requireNonNull(name, "name");
        new OwnershipRecord(0, ownerId, true); // validates the owner id
        this.trace = trace;
        this.header = new HeaderCache((int) Math.min(tuning.headerCacheBytes(), device.size()));
        // The parts keep `this` only to name it in trace steps, which they record once it is built.
        this.admission = new WriteAdmission(Objects.requireNonNull(records, "records"), name, tuning.recheckNanos(),
                tuning.clock(), trace, this);
        this.transitions = new Transitions(admission, device, Objects.requireNonNull(deviceRelease, "deviceRelease"),
                records, Objects.requireNonNull(lock, "lock"), header, ownerId, name, trace, this);
        this.records = records;
    }

    /* ---- Opening ---- */

    /**
     * Opens the raw image file {@code image} with its sidecar record ({@code <image>.owner}) and a
     * {@link QemuFileLock}. {@code INACTIVE} is how the destination of a migration opens it: nothing
     * is written, not even the record. {@code ACTIVE} activates at once (see {@link #activate()}).
     *
     * @param ownerId who this handle is, in the record and in handoff tokens (at most 255 bytes)
     * @throws ImageInactiveException if asked for ACTIVE and another holder has the lock
     */
    public static OwnedImage openFile(Path image, String ownerId, State initial) throws DeviceException {
        return ImageOpener.file(image, null, ownerId, initial);
    }

    /**
     * As {@link #openFile(Path, String, State)}, with the ownership record at {@code record}: for an
     * image with no directory of its own to hold a sidecar, such as a block device (the record must
     * be where every holder of the image sees it).
     */
    public static OwnedImage openFile(Path image, Path record, String ownerId, State initial) throws DeviceException {
        return ImageOpener.file(image, Objects.requireNonNull(record, "record"), ownerId, initial);
    }

    /**
     * Opens {@code device} (a memory device, say) with an in-memory record and an
     * {@link InProcessOwnershipLock}, both keyed by the device object: handles opened on the same
     * device object are holders of the same image. Closing the handle does not close
     * {@code device}, which stays the caller's.
     */
    public static OwnedImage openMemory(BlockDevice device, String ownerId, State initial) throws DeviceException {
        return ImageOpener.memory(device, ownerId, initial);
    }

    /**
     * Opens {@code device} as an image whose ownership lives in {@code records} and {@code lock}
     * (another module's: a coordination service shared by several hosts, say). {@code INACTIVE}
     * writes nothing, not even the record; {@code ACTIVE} activates at once (see
     * {@link #activate()}). Closing the handle closes {@code release} last (the device and whatever
     * the store and the lock need closed), whether or not the handle's own close succeeded.
     *
     * <p>The parts must keep their contracts ({@link RecordStore}, {@link OwnershipLock}); the
     * handle calls them as {@link #openFile}'s handles call the sidecar and the file lock. Every
     * guarantee of this class holds across every holder that shares the store and the lock.
     *
     * @param name how to name the image in messages
     * @throws ImageInactiveException if asked for ACTIVE and another holder has the lock; the
     *     handle is then closed (writing nothing), {@code release} included
     */
    public static OwnedImage open(BlockDevice device, AutoCloseable release, RecordStore records, OwnershipLock lock,
            String ownerId, String name, State initial) throws DeviceException {
        return ImageOpener.assemble(device, release, records, lock, ownerId, name, initial, ImageTuning.DEFAULT);
    }

    /* ---- State ---- */

    /** ACTIVE or INACTIVE; INACTIVE once closed. */
    public State state() {
        return admission.laState();
    }

    /**
     * The epoch of this handle's current (if ACTIVE) or last activation; 0 if it never activated.
     */
    public long epoch() {
        return admission.laEpoch();
    }

    /** The owner id this handle writes into the record. */
    public String ownerId() {
        return ownerId;
    }

    /** Reads the record as it is now in its store. Writes nothing; caches nothing. */
    public OwnershipRecord readRecord() throws DeviceException {
        admission.ensureOpen("readRecord");
        return records.read();
    }

    /* ---- Transitions ---- */

    /**
     * Takes ownership: takes the lock, drops every cache, re-reads the record, writes it with a
     * higher epoch (unclean: an owner is active) and becomes ACTIVE. Does nothing if already ACTIVE.
     *
     * @throws ImageInactiveException if another holder has the lock; the handle stays INACTIVE
     * @throws ImageFencedException if the handle is ACTIVE but fenced (inactivate it first)
     * @throws DeviceException if reading or writing the record fails: the handle stays INACTIVE
     *     with its lock released, and the message says so
     */
    public void activate() throws DeviceException {
        transitions.activate();
    }

    /**
     * Gives up ownership: waits for in-flight writes (writes and flushes that arrive meanwhile wait,
     * then are refused), flushes the device, writes the record clean, becomes INACTIVE and releases
     * the lock. Does nothing if already INACTIVE.
     *
     * @throws DeviceException if the flush or the record write fails: the handle is still ACTIVE
     *     (and still holds the lock), and the message says so; or, after the record was written,
     *     if the lock could not be released: the handle is INACTIVE, and the message says so
     * @throws ImageFencedException if the record shows a newer epoch: the handle wrote nothing,
     *     is now INACTIVE and has released the lock
     */
    public void inactivate() throws DeviceException {
        transitions.inactivate();
    }

    /**
     * The source's half of a handoff: drain, flush, inactivate (as {@link #inactivate()}) and return
     * the token to give the destination. On an INACTIVE handle, returns the token of the handoff it
     * prepared and has not yet resolved.
     *
     * @throws IllegalStateException if INACTIVE with no handoff prepared
     */
    public HandoffToken prepareHandoff() throws DeviceException {
        return transitions.prepareHandoff();
    }

    /**
     * The destination's half of a handoff: activates (as {@link #activate()}) only if the record
     * still shows exactly the token's epoch and owner, written clean; the new epoch is then
     * {@code token.epoch() + 1}. Does nothing if this handle already accepted this token and is
     * ACTIVE.
     *
     * @throws ImageInactiveException if another holder has the lock (the source aborted and is
     *     active, say); the handle stays INACTIVE
     * @throws ImageFencedException if the record no longer continues the token (another holder
     *     activated since, e.g. the source's abort won); the handle stays INACTIVE
     * @throws IllegalStateException if the handle is ACTIVE under another activation
     */
    public void acceptHandoff(HandoffToken token) throws DeviceException {
        transitions.acceptHandoff(token);
    }

    /**
     * The source takes the image back after a failed migration: re-activates only if the record
     * still shows the token this handle prepared, i.e. the destination has not accepted. Does
     * nothing if this handle already aborted that handoff and is ACTIVE.
     *
     * @throws ImageInactiveException if another holder has the lock (the destination accepted)
     * @throws ImageFencedException if the record no longer continues the token (the destination
     *     accepted, and perhaps handed off again)
     * @throws IllegalStateException if no handoff is prepared
     */
    public void abortHandoff() throws DeviceException {
        transitions.abortHandoff();
    }

    /* ---- BlockDevice ---- */

    @Override
    public long size() {
        return device.size();
    }

    /** Allowed in both states. While ACTIVE, reads of the first 4 KiB are served from the cache. */
    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        admission.ensureOpen("read");
        if (admission.laState() == State.ACTIVE && header.read(device, offset, dst)) {
            return;
        }
        device.read(offset, dst);
    }

    /** Allowed in both states, like a read: where the device's data is. */
    @Override
    public long nextData(long offset) throws DeviceException {
        admission.ensureOpen("nextData");
        return device.nextData(offset);
    }

    /** Allowed in both states, like a read. */
    @Override
    public long nextHole(long offset) throws DeviceException {
        admission.ensureOpen("nextHole");
        return device.nextHole(offset);
    }

    /** Refused with {@link ImageInactiveException} while INACTIVE; see the class comment on fencing. */
    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        int length = src.remaining();
        admission.enterWrite("write");
        try {
            deviceWrite(0, offset, length, src);
        } finally {
            admission.exit();
        }
    }

    /** Refused with {@link ImageInactiveException} while INACTIVE. */
    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        admission.enterWrite("write-zeroes");
        try {
            deviceWrite(1, offset, length, null);
        } finally {
            admission.exit();
        }
    }

    /** Refused with {@link ImageInactiveException} while INACTIVE. */
    @Override
    public void discard(long offset, long length) throws DeviceException {
        admission.enterWrite("discard");
        try {
            deviceWrite(2, offset, length, null);
        } finally {
            admission.exit();
        }
    }

    /**
     * Refused with {@link ImageInactiveException} while INACTIVE. Re-reads the record first and
     * fails with {@link ImageFencedException}, without flushing, if it shows a newer epoch.
     */
    @Override
    public void flush() throws DeviceException {
        admission.enterFlush("flush");
        try {
            OwnershipTrace t = trace;
            if (t != null) {
                t.begin();
            }
            try {
                device.flush();
            } finally {
                if (t != null) {
                    t.end(this, OwnershipTrace.Step.FLUSH_DEVICE, true, 0, null);
                }
            }
        } finally {
            admission.exit();
        }
    }

    /**
     * The device call of an admitted write ({@code op} 0), write-zeroes (1) or discard (2), and the
     * header cache's invalidation: one traced step.
     */
    private void deviceWrite(int op, long offset, long length, ByteBuffer src) throws DeviceException {
        OwnershipTrace t = trace;
        if (t != null) {
            t.begin();
        }
        try {
            switch (op) {
                case 0 -> device.write(offset, src);
                case 1 -> device.writeZeroes(offset, length);
                default -> device.discard(offset, length);
            }
        } finally {
            header.invalidate(offset, length);
            if (t != null) {
                t.end(this, OwnershipTrace.Step.WRITE_DEVICE, true, 0, null);
            }
        }
    }

    /**
     * Closes the handle. INACTIVE: writes nothing at all (no flush, no record). ACTIVE: flushes,
     * writes the record clean and releases the lock; if that fails (or the handle is fenced) the
     * record is left as it was, the handle is closed anyway and the failure is thrown. Closing
     * twice is harmless.
     */
    @Override
    public void close() throws DeviceException {
        transitions.close();
    }

    @Override
    public String toString() {
        return "OwnedImage[" + name + ", " + ownerId + ", " + admission.laState() + ", epoch " + admission.laEpoch()
                + (admission.isClosed() ? ", closed" : "") + "]";
    }
}
