package dev.handoff.ownership;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.FileDevice;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import java.util.WeakHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

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
 */
public final class OwnedImage implements BlockDevice {
    /*
     * Protocol overview.
     *
     * Who races with whom:
     *  - I/O threads: write/writeZeroes/discard/flush hold io.readLock() from the state check until
     *    the device returns, so a transition (io.writeLock()) sees no write in flight and none can
     *    start until it finishes. That is the drain of inactivate() and the reason a refused write
     *    cannot reach the device: the state a write checked cannot change before it is done.
     *  - Transitions (activate, inactivate, prepare/accept/abort, close) hold `transitions` and then
     *    io.writeLock(), in that order (I/O never takes `transitions`: no lock-order cycle).
     *  - Readers take no lock: they read `state` (acquire) to decide whether the header cache may
     *    serve them. A read racing with a transition is ordered either way, as a read racing with
     *    a write to the same bytes is (BlockDevice contract).
     *  - Other holders of the same image (threads, processes) meet only at the OwnershipLock and the
     *    RecordStore.
     *
     * The order that makes it safe:
     *  - activate: lock.acquire -> drop caches -> read record (epoch e) -> compare-and-write
     *    record(max(e, newest) + 1, unclean) expecting e -> epoch := that -> state := ACTIVE
     *    (release store publishing epoch and the cache). The compare is what decides between two
     *    activations whose locks both "succeeded" (a lost lock): one moves the epoch, the other
     *    finds it moved and stays INACTIVE.
     *  - inactivate: (drained) -> reread record, fenced? -> device.flush -> compare-and-write
     *    record(clean) expecting our epoch -> state := INACTIVE -> lock.release. The data flush
     *    precedes the record write that tells the next owner it may go: a newly active holder sees
     *    every write acknowledged before the handoff.
     *  - a record write happens only while the lock is held (activate, inactivate, close of ACTIVE),
     *    and always as a compare-and-write of the epoch.
     *
     * Invariants kept: at most one ACTIVE holder per image (the lock; fencing behind it); no data or
     * metadata write while INACTIVE (state checked under io.readLock; close of INACTIVE writes
     * nothing); no stale cache survives activation; epochs written to the record only grow.
     *
     * Field access modes, named by prefix (VarHandle modes): la = getAcquire, so = setRelease,
     * lp = plain get, lpo/spo = getOpaque/setOpaque, cas = compareAndSet:
     *  - state: soState in transitions (under both locks); laState by read(), state(), and by I/O
     *    under io.readLock (the lock already orders; the acquire is for the lock-free callers).
     *  - epoch: soEpoch in activation before soState; laEpoch in epoch(); lpEpoch under a lock.
     *  - newestEpoch: a max-register, raised by observeEpoch (a CAS loop) from record reads in
     *    several I/O threads at once; laNewestEpoch pairs with that CAS.
     *  - lastRecheckAt: lpo/spo (opaque: atomic, no ordering). Benign race: a thread that sees an
     *    older value reads the record once more than needed; the value only ever moves forward in
     *    time, so no thread skips a read it owes by more than the interval. Nothing else is
     *    published through it.
     *  - closed: volatile; set under both locks, read lock-free by read().
     *  - cachedRecord, pending, continued, cacheDrops: guarded by `transitions`; cachedRecord is
     *    also volatile for the test accessor.
     */

    /** The two states of a handle. */
    public enum State {
        /** This handle owns the image and may write. */
        ACTIVE,
        /** This handle may only read; another holder may own the image. */
        INACTIVE
    }

    /* ---- Constants ---- */

    static final long DEFAULT_RECHECK_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    static final int DEFAULT_HEADER_CACHE_BYTES = 4096;

    /** Package-private knobs for tests: recheck interval, header cache size. */
    record Tuning(long recheckNanos, int headerCacheBytes) {
        static final Tuning DEFAULT = new Tuning(DEFAULT_RECHECK_NANOS, DEFAULT_HEADER_CACHE_BYTES);

        Tuning {
            if (recheckNanos < 0 || headerCacheBytes < 0) {
                throw new IllegalArgumentException("negative tuning");
            }
        }

        Tuning withRecheckNanos(long nanos) {
            return new Tuning(nanos, headerCacheBytes);
        }
    }

    /** In-memory records, one per memory device (by identity for devices that keep Object.equals). */
    private static final Map<BlockDevice, MemoryRecordStore> MEMORY_RECORDS = new WeakHashMap<>();

    private static final VarHandle STATE;
    private static final VarHandle EPOCH;
    private static final VarHandle NEWEST_EPOCH;
    private static final VarHandle LAST_RECHECK_AT;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            STATE = l.findVarHandle(OwnedImage.class, "state", State.class);
            EPOCH = l.findVarHandle(OwnedImage.class, "epoch", long.class);
            NEWEST_EPOCH = l.findVarHandle(OwnedImage.class, "newestEpoch", long.class);
            LAST_RECHECK_AT = l.findVarHandle(OwnedImage.class, "lastRecheckAt", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /* ---- Fields ---- */

    private final BlockDevice device;
    private final AutoCloseable deviceRelease;
    private final RecordStore records;
    private final OwnershipLock lock;
    private final String ownerId;
    private final String name;
    private final long recheckNanos;
    private final HeaderCache header;
    /** Null unless the handle is traced (OwnershipTrace, a test seam). */
    private final OwnershipTrace trace;

    private final ReentrantLock transitions = new ReentrantLock();
    private final ReentrantReadWriteLock io = new ReentrantReadWriteLock();

    @SuppressWarnings("unused") // accessed through STATE
    private State state = State.INACTIVE;
    @SuppressWarnings("unused") // accessed through EPOCH
    private long epoch;
    @SuppressWarnings("unused") // accessed through NEWEST_EPOCH
    private long newestEpoch;
    @SuppressWarnings("unused") // accessed through LAST_RECHECK_AT
    private long lastRecheckAt;
    private volatile boolean closed;

    private volatile OwnershipRecord cachedRecord; // guarded by transitions
    private HandoffToken pending;                  // guarded by transitions: prepared, not yet resolved here
    private HandoffToken continued;                // guarded by transitions: token the current activation continued
    private boolean continuedByAbort;              // guarded by transitions
    private int cacheDrops;                        // guarded by transitions

    private OwnedImage(BlockDevice device, AutoCloseable deviceRelease, RecordStore records, OwnershipLock lock,
            String ownerId, String name, Tuning tuning, OwnershipTrace trace) {
        this.device = Objects.requireNonNull(device, "device");
        this.deviceRelease = Objects.requireNonNull(deviceRelease, "deviceRelease");
        this.records = Objects.requireNonNull(records, "records");
        this.lock = Objects.requireNonNull(lock, "lock");
        this.ownerId = Objects.requireNonNull(ownerId, "ownerId");
        this.name = Objects.requireNonNull(name, "name");
        this.recheckNanos = tuning.recheckNanos();
        this.trace = trace;
        this.header = new HeaderCache((int) Math.min(tuning.headerCacheBytes(), device.size()));
        new OwnershipRecord(0, ownerId, true); // validates the owner id
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
        return open(image, null, ownerId, initial);
    }

    /**
     * As {@link #openFile(Path, String, State)}, with the ownership record at {@code record}: for an
     * image with no directory of its own to hold a sidecar, such as a block device (the record must
     * be where every holder of the image sees it).
     */
    public static OwnedImage openFile(Path image, Path record, String ownerId, State initial) throws DeviceException {
        return open(image, Objects.requireNonNull(record, "record"), ownerId, initial);
    }

    private static OwnedImage open(Path image, Path record, String ownerId, State initial) throws DeviceException {
        return open(image, record, ownerId, initial, null);
    }

    /**
     * As {@link #openFile(Path, String, State)}, recording the handle's spec-level steps in
     * {@code trace} (the trace-validation seam). Package-private.
     */
    static OwnedImage openFile(Path image, String ownerId, State initial, OwnershipTrace trace) throws DeviceException {
        return open(image, null, ownerId, initial, Objects.requireNonNull(trace, "trace"));
    }

    private static OwnedImage open(Path image, Path record, String ownerId, State initial, OwnershipTrace trace)
            throws DeviceException {
        Objects.requireNonNull(initial, "initial");
        ImageFiles.Lease lease = ImageFiles.open(image);
        try {
            FileDevice file = lease.device();
            // The sidecar of the path the file was first opened by: every handle on it meets one record.
            Path at = record != null ? record : OwnershipRecord.sidecarOf(file.path());
            return assemble(file, lease, new SidecarRecordStore(at, file.path()),
                    new QemuFileLock(file), ownerId, image.toString(), initial, Tuning.DEFAULT, trace);
        } catch (DeviceException | RuntimeException e) {
            closeQuietly(lease, e);
            throw e;
        }
    }

    /**
     * Opens {@code device} (a memory device, say) with an in-memory record and an
     * {@link InProcessOwnershipLock}, both keyed by the device object: handles opened on the same
     * device object are holders of the same image. Closing the handle does not close
     * {@code device}, which stays the caller's.
     */
    public static OwnedImage openMemory(BlockDevice device, String ownerId, State initial) throws DeviceException {
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(initial, "initial");
        String name = "memory image@" + Integer.toHexString(System.identityHashCode(device));
        MemoryRecordStore store;
        synchronized (MEMORY_RECORDS) {
            store = MEMORY_RECORDS.computeIfAbsent(device, d -> new MemoryRecordStore(name));
        }
        return assemble(device, () -> { }, store, new InProcessOwnershipLock(device, name), ownerId, name, initial,
                Tuning.DEFAULT);
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
        Objects.requireNonNull(initial, "initial");
        return assemble(device, release, records, lock, ownerId, name, initial, Tuning.DEFAULT);
    }

    /**
     * Builds a handle from its parts. Reads the record (a read, even for INACTIVE); activates if
     * asked, closing the handle again (which writes nothing) if that fails.
     */
    static OwnedImage assemble(BlockDevice device, AutoCloseable deviceRelease, RecordStore records,
            OwnershipLock lock, String ownerId, String name, State initial, Tuning tuning) throws DeviceException {
        return assemble(device, deviceRelease, records, lock, ownerId, name, initial, tuning, null);
    }

    /** As above, traced (null: not). */
    static OwnedImage assemble(BlockDevice device, AutoCloseable deviceRelease, RecordStore records,
            OwnershipLock lock, String ownerId, String name, State initial, Tuning tuning, OwnershipTrace trace)
            throws DeviceException {
        OwnedImage image = new OwnedImage(device, deviceRelease, records, lock, ownerId, name, tuning, trace);
        try {
            image.transitions.lock();
            try {
                OwnershipRecord r = records.read();
                image.cachedRecord = r;
                image.observeEpoch(r.epoch());
            } finally {
                image.transitions.unlock();
            }
            if (initial == State.ACTIVE) {
                image.activate();
            }
            return image;
        } catch (DeviceException | RuntimeException e) {
            try {
                image.close();
            } catch (DeviceException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /* ---- State ---- */

    /** ACTIVE or INACTIVE; INACTIVE once closed. */
    public State state() {
        return laState();
    }

    /**
     * The epoch of this handle's current (if ACTIVE) or last activation; 0 if it never activated.
     */
    public long epoch() {
        return laEpoch();
    }

    /** The owner id this handle writes into the record. */
    public String ownerId() {
        return ownerId;
    }

    /** Reads the record as it is now in its store. Writes nothing; caches nothing. */
    public OwnershipRecord readRecord() throws DeviceException {
        ensureOpen("readRecord");
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
        transitions.lock();
        io.writeLock().lock();
        try {
            ensureOpen("activate");
            if (lpState() == State.ACTIVE) {
                checkNotFenced("activate");
                return;
            }
            activateLocked(null, "activate", OwnershipTrace.Step.ACTIVATE_LOCK);
            continued = null;
        } finally {
            io.writeLock().unlock();
            transitions.unlock();
        }
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
        transitions.lock();
        Lock drain = drainLock();
        try {
            ensureOpen("inactivate");
            if (lpState() == State.INACTIVE) {
                return;
            }
            inactivateLocked("inactivate", false);
        } finally {
            drain.unlock();
            transitions.unlock();
        }
    }

    /**
     * The source's half of a handoff: drain, flush, inactivate (as {@link #inactivate()}) and return
     * the token to give the destination. On an INACTIVE handle, returns the token of the handoff it
     * prepared and has not yet resolved.
     *
     * @throws IllegalStateException if INACTIVE with no handoff prepared
     */
    public HandoffToken prepareHandoff() throws DeviceException {
        transitions.lock();
        Lock drain = drainLock();
        try {
            ensureOpen("prepareHandoff");
            if (lpState() == State.INACTIVE) {
                if (pending != null) {
                    return pending;
                }
                throw new IllegalStateException(name + " is INACTIVE: there is nothing to hand off");
            }
            inactivateLocked("prepareHandoff", true);
            return pending;
        } finally {
            drain.unlock();
            transitions.unlock();
        }
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
        Objects.requireNonNull(token, "token");
        transitions.lock();
        io.writeLock().lock();
        try {
            ensureOpen("acceptHandoff");
            if (lpState() == State.ACTIVE) {
                if (token.equals(continued) && !continuedByAbort) {
                    return;
                }
                throw new IllegalStateException(name + " is ACTIVE with epoch " + lpEpoch()
                        + "; acceptHandoff is for an INACTIVE destination");
            }
            activateLocked(token, "acceptHandoff", OwnershipTrace.Step.ACCEPT_LOCK);
            continued = token;
            continuedByAbort = false;
        } finally {
            io.writeLock().unlock();
            transitions.unlock();
        }
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
        transitions.lock();
        io.writeLock().lock();
        try {
            ensureOpen("abortHandoff");
            if (lpState() == State.ACTIVE) {
                if (continued != null && continuedByAbort) {
                    return;
                }
                throw new IllegalStateException(name + " is ACTIVE with no handoff prepared");
            }
            HandoffToken token = pending;
            if (token == null) {
                throw new IllegalStateException(name + " has no handoff prepared: call prepareHandoff() first");
            }
            activateLocked(token, "abortHandoff", OwnershipTrace.Step.ABORT_LOCK);
            continued = token;
            continuedByAbort = true;
        } finally {
            io.writeLock().unlock();
            transitions.unlock();
        }
    }

    /* ---- BlockDevice ---- */

    @Override
    public long size() {
        return device.size();
    }

    /** Allowed in both states. While ACTIVE, reads of the first 4 KiB are served from the cache. */
    @Override
    public void read(long offset, ByteBuffer dst) throws DeviceException {
        ensureOpen("read");
        if (laState() == State.ACTIVE && header.read(device, offset, dst)) {
            return;
        }
        device.read(offset, dst);
    }

    /** Allowed in both states, like a read: where the device's data is. */
    @Override
    public long nextData(long offset) throws DeviceException {
        ensureOpen("nextData");
        return device.nextData(offset);
    }

    /** Allowed in both states, like a read. */
    @Override
    public long nextHole(long offset) throws DeviceException {
        ensureOpen("nextHole");
        return device.nextHole(offset);
    }

    /** Refused with {@link ImageInactiveException} while INACTIVE; see the class comment on fencing. */
    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        int length = src.remaining();
        Lock r = io.readLock();
        r.lock();
        try {
            admitWrite("write");
            deviceWrite(0, offset, length, src);
        } finally {
            r.unlock();
        }
    }

    /** Refused with {@link ImageInactiveException} while INACTIVE. */
    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        Lock r = io.readLock();
        r.lock();
        try {
            admitWrite("write-zeroes");
            deviceWrite(1, offset, length, null);
        } finally {
            r.unlock();
        }
    }

    /** Refused with {@link ImageInactiveException} while INACTIVE. */
    @Override
    public void discard(long offset, long length) throws DeviceException {
        Lock r = io.readLock();
        r.lock();
        try {
            admitWrite("discard");
            deviceWrite(2, offset, length, null);
        } finally {
            r.unlock();
        }
    }

    /**
     * Refused with {@link ImageInactiveException} while INACTIVE. Re-reads the record first and
     * fails with {@link ImageFencedException}, without flushing, if it shows a newer epoch.
     */
    @Override
    public void flush() throws DeviceException {
        Lock r = io.readLock();
        r.lock();
        try {
            OwnershipTrace t = trace;
            if (t != null) {
                t.begin();
            }
            boolean admitted = false;
            try {
                admitState("flush");
                recheckRecord();
                checkNotFenced("flush");
                admitted = true;
            } finally {
                if (t != null) {
                    t.end(this, OwnershipTrace.Step.FLUSH_READ, admitted, 0, null);
                }
            }
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
            r.unlock();
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
        transitions.lock();
        io.writeLock().lock();
        try {
            if (closed) {
                return;
            }
            DeviceException failure = null;
            boolean wasActive = lpState() == State.ACTIVE;
            if (wasActive) {
                failure = closeActiveLocked();
            }
            OwnershipTrace t = trace;
            if (t != null) {
                t.begin();
            }
            try {
                soState(State.INACTIVE);
                closed = true;
                header.drop();
                try {
                    lock.release(); // writes nothing; a no-op unless held
                } catch (DeviceException e) {
                    failure = addOrSet(failure, e);
                }
            } finally {
                if (t != null) {
                    t.end(this, wasActive ? OwnershipTrace.Step.CLOSE_END : OwnershipTrace.Step.CLOSE_INACTIVE, true, 0, null);
                }
            }
            try {
                deviceRelease.close();
            } catch (Exception e) {
                failure = addOrSet(failure, e instanceof DeviceException ? (DeviceException) e
                        : new DeviceException(DeviceException.Kind.IO_ERROR, "close of " + name + ": " + e, e));
            }
            if (failure != null) {
                throw failure;
            }
        } finally {
            io.writeLock().unlock();
            transitions.unlock();
        }
    }

    @Override
    public String toString() {
        return "OwnedImage[" + name + ", " + ownerId + ", " + laState() + ", epoch " + laEpoch()
                + (closed ? ", closed" : "") + "]";
    }

    /* ---- Test accessors ---- */

    /** The record as last read or written by a transition; null right after a cache drop. */
    OwnershipRecord cachedRecord() {
        return cachedRecord;
    }

    /** Whether the header cache holds a copy. */
    boolean headerCached() {
        return header.isLoaded();
    }

    /** How many times activation dropped the caches. */
    int cacheDrops() {
        transitions.lock();
        try {
            return cacheDrops;
        } finally {
            transitions.unlock();
        }
    }

    /** The newest epoch this handle has seen in the record. */
    long newestEpochSeen() {
        return laNewestEpoch();
    }

    /** The record as it is in its store, also on a closed handle (tests and trace recording). */
    OwnershipRecord peekRecord() throws DeviceException {
        return records.read();
    }

    /** Whether {@link #close()} has run. */
    boolean isClosed() {
        return closed;
    }

    /* ---- Transition internals (callers hold transitions and, except as noted, io.writeLock) ---- */

    private void activateLocked(HandoffToken expected, String op, OwnershipTrace.Step lockStep) throws DeviceException {
        OwnershipTrace t = trace;
        if (t != null) {
            t.begin();
        }
        boolean locked = false;
        try {
            lock.acquire(); // throws ImageInactiveException: still INACTIVE, nothing held
            locked = true;
        } finally {
            if (t != null) {
                t.end(this, lockStep, locked, expected == null ? 0 : expected.epoch(),
                        expected == null ? null : expected.ownerId());
            }
        }
        try {
            if (t != null) {
                t.begin();
            }
            OwnershipRecord current;
            boolean continues = true;
            try {
                dropCaches();
                current = records.read();
                cachedRecord = current;
                observeEpoch(current.epoch());
                continues = expected == null || continues(expected, current);
            } finally {
                if (t != null) {
                    t.end(this, OwnershipTrace.Step.ACT_READ, continues, 0, null);
                }
            }
            if (!continues) {
                throw staleToken(expected, current, op);
            }
            long next = Math.max(current.epoch(), laNewestEpoch()) + 1;
            OwnershipRecord mine = new OwnershipRecord(next, ownerId, false);
            if (t != null) {
                t.begin();
            }
            OwnershipRecord found = current;
            try {
                found = records.compareAndWrite(current.epoch(), mine);
                if (found.epoch() == current.epoch()) {
                    cachedRecord = mine;
                    soEpoch(next);
                    observeEpoch(next);
                    spoLastRecheckAt(System.nanoTime());
                    pending = null;
                    soState(State.ACTIVE); // release: publishes epoch and cachedRecord to laState readers
                } else {
                    observeEpoch(found.epoch());
                }
            } finally {
                if (t != null) {
                    t.end(this, OwnershipTrace.Step.ACT_CAS, found.epoch() == current.epoch(), 0, null);
                }
            }
            if (found.epoch() != current.epoch()) {
                // Someone moved the epoch between our read and our write: only possible if the
                // lock failed to exclude them. The compare makes exactly one of us win.
                throw new ImageFencedException(op + " refused for " + name + ": another holder activated concurrently "
                        + "(record epoch " + found.epoch() + ", owner '" + found.ownerId() + "'); " + name
                        + " remains INACTIVE", current.epoch(), found.epoch());
            }
        } catch (DeviceException | RuntimeException | Error e) {
            if (t != null) {
                t.begin();
            }
            try {
                lock.release();
            } catch (DeviceException suppressed) {
                e.addSuppressed(suppressed);
            } finally {
                if (t != null) {
                    t.end(this, OwnershipTrace.Step.ACT_FAIL, true, 0, null);
                }
            }
            if (e instanceof ImageInactiveException || e instanceof ImageFencedException || !(e instanceof DeviceException)) {
                throw e;
            }
            DeviceException d = (DeviceException) e;
            DeviceException wrapped = new DeviceException(d.kind(), op + " failed; " + name
                    + " remains INACTIVE and its lock is released: " + d.getMessage(), d);
            throw wrapped;
        }
    }

    private static boolean continues(HandoffToken token, OwnershipRecord current) {
        return current.epoch() == token.epoch() && current.ownerId().equals(token.ownerId()) && current.clean();
    }

    private ImageFencedException staleToken(HandoffToken token, OwnershipRecord current, String op) {
        String why = current.epoch() > token.epoch()
                ? "another holder activated since (record epoch " + current.epoch() + ", owner '" + current.ownerId() + "')"
                : "the record (epoch " + current.epoch() + ", owner '" + current.ownerId() + "', "
                        + (current.clean() ? "clean" : "unclean") + ") does not continue it";
        return new ImageFencedException(op + " refused for " + name + ": the handoff token (epoch " + token.epoch()
                + ", owner '" + token.ownerId() + "') is stale: " + why + "; " + name + " remains INACTIVE",
                token.epoch(), current.epoch());
    }

    /**
     * Inactivates an ACTIVE handle. Caller holds transitions and the io write lock.
     */
    private void inactivateLocked(String op, boolean handoff) throws DeviceException {
        OwnershipTrace t = trace;
        if (t != null) {
            t.begin();
        }
        try {
            recheckOrStayActive(op);
        } finally {
            if (t != null) {
                t.end(this, handoff ? OwnershipTrace.Step.PREPARE_READ : OwnershipTrace.Step.INACTIVATE_READ,
                        !isFenced(), 0, null);
            }
        }
        if (isFenced()) {
            throw fencedInactivation(op, "nothing was flushed or written");
        }
        if (t != null) {
            t.begin();
        }
        try {
            device.flush();
        } catch (DeviceException e) {
            throw stillActive(op, "flush", e);
        } finally {
            if (t != null) {
                t.end(this, OwnershipTrace.Step.IN_FLUSH, true, 0, null);
            }
        }
        OwnershipRecord clean = new OwnershipRecord(lpEpoch(), ownerId, true);
        OwnershipRecord found = null;
        if (t != null) {
            t.begin();
        }
        ImageFencedException refused = null;
        try {
            try {
                found = records.compareAndWrite(lpEpoch(), clean);
            } catch (DeviceException e) {
                throw stillActive(op, "writing the ownership record", e);
            }
            if (found.epoch() != lpEpoch()) {
                observeEpoch(found.epoch());
                refused = fencedInactivation(op, "the data was flushed but the record was not written");
            } else {
                cachedRecord = clean;
                if (handoff) {
                    pending = new HandoffToken(clean.epoch(), ownerId);
                }
                soState(State.INACTIVE);
            }
        } finally {
            if (t != null) {
                t.end(this, OwnershipTrace.Step.IN_CAS, found != null && refused == null, 0, null);
            }
        }
        if (refused != null) {
            throw refused;
        }
        if (t != null) {
            t.begin();
        }
        try {
            lock.release();
        } catch (DeviceException e) {
            throw new DeviceException(e.kind(), op + ": " + name + " is INACTIVE (data and record flushed), "
                    + "but its ownership lock could not be released: " + e.getMessage(), e);
        } finally {
            if (t != null) {
                t.end(this, OwnershipTrace.Step.IN_RELEASE, true, 0, null);
            }
        }
    }

    private void recheckOrStayActive(String op) throws DeviceException {
        try {
            recheckRecord();
        } catch (DeviceException e) {
            throw stillActive(op, "reading the ownership record", e);
        }
    }

    private DeviceException stillActive(String op, String step, DeviceException cause) {
        return new DeviceException(cause.kind(), op + " failed at " + step + "; " + name
                + " remains ACTIVE and still holds its lock: " + cause.getMessage(), cause);
    }

    /** A fenced handle writes nothing on its way out: INACTIVE, lock released, then report. */
    private ImageFencedException fencedInactivation(String op, String what) {
        OwnershipTrace t = trace;
        if (t != null) {
            t.begin();
        }
        try {
            return fencedInactivationStep(op, what);
        } finally {
            if (t != null) {
                t.end(this, OwnershipTrace.Step.IN_FENCED, true, 0, null);
            }
        }
    }

    private ImageFencedException fencedInactivationStep(String op, String what) {
        soState(State.INACTIVE);
        ImageFencedException e = fenced(op, ": " + what + "; " + name
                + " is now INACTIVE and writes since its last successful flush may be lost");
        try {
            lock.release();
        } catch (DeviceException suppressed) {
            e.addSuppressed(suppressed);
        }
        return e;
    }

    /** Close of an ACTIVE handle: returns the failure to report, never throws. Lock released by caller. */
    private DeviceException closeActiveLocked() {
        OwnershipTrace t = trace;
        DeviceException failure = null;
        try {
            if (t != null) {
                t.begin();
            }
            try {
                recheckRecord();
            } finally {
                if (t != null) {
                    t.end(this, OwnershipTrace.Step.CLOSE_READ, !isFenced(), 0, null);
                }
            }
            if (isFenced()) {
                failure = fenced("close", ": nothing was flushed or written");
            } else {
                if (t != null) {
                    t.begin();
                }
                try {
                    device.flush();
                } finally {
                    if (t != null) {
                        t.end(this, OwnershipTrace.Step.CLOSE_FLUSH, true, 0, null);
                    }
                }
                OwnershipRecord clean = new OwnershipRecord(lpEpoch(), ownerId, true);
                if (t != null) {
                    t.begin();
                }
                boolean written = false;
                try {
                    OwnershipRecord found = records.compareAndWrite(lpEpoch(), clean);
                    if (found.epoch() != lpEpoch()) {
                        observeEpoch(found.epoch());
                        failure = fenced("close", ": the record was not written");
                    } else {
                        cachedRecord = clean;
                        written = true;
                    }
                } finally {
                    if (t != null) {
                        t.end(this, OwnershipTrace.Step.CLOSE_CAS, written, 0, null);
                    }
                }
            }
        } catch (DeviceException e) {
            failure = new DeviceException(e.kind(), "close of ACTIVE " + name
                    + " could not flush and mark the record clean; the record is left unclean and the handle is closed: "
                    + e.getMessage(), e);
        }
        return failure;
    }

    private void dropCaches() {
        header.drop();
        cachedRecord = null;
        cacheDrops++;
    }

    private Lock drainLock() {
        Lock l = io.writeLock();
        l.lock();
        return l;
    }

    /* ---- I/O admission (callers hold io.readLock) ---- */

    private void admitState(String op) throws DeviceException {
        ensureOpen(op);
        if (laState() != State.ACTIVE) {
            throw new ImageInactiveException(op + " refused: " + name
                    + " is INACTIVE (another holder may own it); nothing was written");
        }
    }

    private void admitWrite(String op) throws DeviceException {
        OwnershipTrace t = trace;
        if (t != null) {
            t.begin();
        }
        boolean admitted = false;
        boolean reread = false;
        try {
            admitState(op);
            if (System.nanoTime() - lpoLastRecheckAt() >= recheckNanos) {
                reread = true;
                recheckRecord();
            }
            checkNotFenced(op);
            admitted = true;
        } finally {
            if (t != null) {
                t.end(this, OwnershipTrace.Step.WRITE_ADMIT, admitted, reread ? 1 : 0, null);
            }
        }
    }

    /** The device call of a write, write-zeroes or discard, and the header cache's invalidation. */
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


    /** Reads the record and raises the newest epoch seen. Safe from several threads at once. */
    private void recheckRecord() throws DeviceException {
        OwnershipRecord r = records.read();
        observeEpoch(r.epoch());
        spoLastRecheckAt(System.nanoTime());
    }

    private boolean isFenced() {
        return laNewestEpoch() > lpEpoch();
    }

    private void checkNotFenced(String op) throws ImageFencedException {
        if (isFenced()) {
            throw fenced(op, " refused; nothing was written");
        }
    }

    private ImageFencedException fenced(String op, String tail) {
        long mine = lpEpoch();
        long newest = laNewestEpoch();
        return new ImageFencedException(op + " of " + name + tail + ": this handle activated with epoch " + mine
                + " but the ownership record shows epoch " + newest + " (another owner took over)", mine, newest);
    }

    private void ensureOpen(String op) throws DeviceException {
        if (closed) {
            throw new DeviceException(DeviceException.Kind.CLOSED, op + " on " + name + ": the handle is closed");
        }
    }

    /* ---- Ordered accessors ---- */

    private State laState() {
        return (State) STATE.getAcquire(this); // pairs with soState
    }

    private State lpState() {
        return (State) STATE.get(this); // plain: caller holds transitions, which every soState holds too
    }

    private void soState(State s) {
        STATE.setRelease(this, s); // publishes epoch, cachedRecord written before it
    }

    private long laEpoch() {
        return (long) EPOCH.getAcquire(this); // pairs with soEpoch; atomic on every platform
    }

    private long lpEpoch() {
        // Plain: callers hold io.readLock or transitions; soEpoch runs under both io.writeLock and
        // transitions, so the lock hand-off orders it. (Activation is the only writer.)
        return (long) EPOCH.get(this);
    }

    private void soEpoch(long e) {
        EPOCH.setRelease(this, e); // pairs with laEpoch in epoch()
    }

    private long laNewestEpoch() {
        return (long) NEWEST_EPOCH.getAcquire(this); // pairs with casNewestEpoch
    }

    /** Raises newestEpoch to at least {@code e}: a max-register, so concurrent record reads never lower it. */
    private void observeEpoch(long e) {
        long seen;
        do {
            seen = laNewestEpoch();
            if (seen >= e) {
                return;
            }
        } while (!NEWEST_EPOCH.compareAndSet(this, seen, e)); // volatile CAS: pairs with laNewestEpoch
    }

    private long lpoLastRecheckAt() {
        return (long) LAST_RECHECK_AT.getOpaque(this); // benign race: see the overview
    }

    private void spoLastRecheckAt(long t) {
        LAST_RECHECK_AT.setOpaque(this, t); // benign race: see the overview
    }

    private static DeviceException addOrSet(DeviceException failure, DeviceException e) {
        if (failure == null) {
            return e;
        }
        failure.addSuppressed(e);
        return failure;
    }

    private static void closeQuietly(AutoCloseable c, Exception primary) {
        try {
            c.close();
        } catch (Exception e) {
            primary.addSuppressed(e);
        }
    }
}
