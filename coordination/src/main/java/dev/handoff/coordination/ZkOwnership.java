package dev.handoff.coordination;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.FileDevice;
import dev.handoff.ownership.OwnedImage;
import dev.handoff.ownership.OwnershipLock;
import dev.handoff.ownership.OwnershipRecord;
import dev.handoff.ownership.RecordStore;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;

/**
 * An image's ownership kept in a ZooKeeper ensemble, for images on storage that several hosts
 * share (an iSCSI or SAN LUN, a Ceph RBD device) and that no common file lock protects: the
 * kernel's {@link OwnedImage}, with its ownership record and lock on ZooKeeper instead of a
 * sidecar file and QEMU's byte locks.
 *
 * <pre>{@code
 * ZkOwnership zk = ZkOwnership.connect(ZkAddress.parse("zk://zk1:2181,zk2:2181,zk3:2181/handoff/vm1"),
 *         ZkOwnership.DEFAULT_SESSION_TIMEOUT, ZkOwnership.DEFAULT_CONNECT_TIMEOUT);
 * OwnedImage disk = zk.openFile(Path.of("/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"), "host-a", OwnedImage.State.ACTIVE);
 * ...                      // the handoff calls of OwnedImage, exactly as with openFile
 * disk.close();            // flushes, marks the record clean, releases the lock, closes the session
 * }</pre>
 *
 * <h2>What lives under PATH</h2>
 * <ul>
 *   <li>{@code PATH}: the image's identity, its name and size ({@link ImageIdentity}), written by
 *       the first activation; a holder of another image is refused.</li>
 *   <li>{@code PATH/record}: the ownership record (epoch, owner, clean), replaced only by
 *       compare-and-set on the znode version ({@link ZkRecordStore}).</li>
 *   <li>{@code PATH/lock}: an ephemeral znode, the lock, tied to its holder's session.</li>
 * </ul>
 *
 * <h2>Guarantees</h2>
 * Those of {@link OwnedImage} across every host that uses the same PATH, and:
 * <ul>
 *   <li>Epochs only grow, across session expiry, leader fail-over and a holder that comes back
 *       from a pause longer than its session timeout: the record changes only by compare-and-set
 *       of its epoch, which the ensemble linearizes.</li>
 *   <li>A holder that loses contact with the ensemble acknowledges no write or flush later than
 *       {@link #leaseBound()} (0.6 × the session timeout) after its last confirmed contact, which is
 *       before the ensemble can expire its session and let another holder in; its later writes
 *       and flushes fail as fenced ({@link SessionLease}).</li>
 *   <li>A holder that comes back after another activated is refused by the epoch (the record it
 *       re-reads before writing), whatever its lock says.</li>
 * </ul>
 *
 * <p>One instance serves one image and one handle: {@link #open} or {@link #openFile} once. The
 * handle owns the session: closing the handle closes it.
 *
 * <p>Threading: every method may be called from any thread; the handle's contract is
 * {@link OwnedImage}'s.
 */
public final class ZkOwnership implements AutoCloseable {
    /** The default session timeout: a dead holder's lock outlives it by this long. */
    public static final Duration DEFAULT_SESSION_TIMEOUT = Duration.ofSeconds(10);
    /** How long to wait for a server of the ensemble to answer, by default. */
    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(5);

    private final ZkSession session;
    private final SessionLease lease;
    private final Object lifecycle = new Object();
    private boolean opened; // guarded by lifecycle
    private boolean closed; // guarded by lifecycle
    private OwnedImage handle; // guarded by lifecycle

    private ZkOwnership(ZkSession session, String imageName) {
        this.session = session;
        this.lease = new SessionLease(session, imageName);
    }

    /**
     * Opens a session to the ensemble of {@code address}.
     *
     * @param sessionTimeout the session timeout to ask for (the ensemble may grant another, between
     *     2 and 20 of its ticks: {@link #sessionTimeout()} says which)
     * @param connectTimeout how long to wait for a server to answer, here and in each later operation
     * @throws CoordinationException ({@link CoordinationException.Reason#UNREACHABLE}) if no server
     *     answered within {@code connectTimeout}
     */
    public static ZkOwnership connect(ZkAddress address, Duration sessionTimeout, Duration connectTimeout)
            throws CoordinationException {
        Objects.requireNonNull(address, "address");
        if (sessionTimeout.isNegative() || sessionTimeout.isZero() || connectTimeout.isNegative() || connectTimeout.isZero()) {
            throw new IllegalArgumentException("timeouts must be positive");
        }
        ZkSession session = ZkSession.connect(address, sessionTimeout, connectTimeout);
        return new ZkOwnership(session, address.path());
    }

    /** Where this image's ownership lives. */
    public ZkAddress address() {
        return session.address();
    }

    /** The current session's id (it changes if the ensemble expired the previous one), 0 once closed. */
    public long sessionId() {
        return session.sessionId();
    }

    /** The session timeout the ensemble granted. */
    public Duration sessionTimeout() throws DeviceException {
        return Duration.ofMillis(session.handle().getSessionTimeout());
    }

    /**
     * How long after its last confirmed contact with the ensemble a holder still acknowledges
     * writes: 0.6 × {@link #sessionTimeout()} (see {@link SessionLease} for the margin).
     */
    public Duration leaseBound() throws DeviceException {
        return Duration.ofNanos(SessionLease.boundNanos(TimeUnit.MILLISECONDS.toNanos(session.handle().getSessionTimeout())));
    }

    /**
     * Registers {@code listener}, told once (on an internal thread, with the reason) each time the
     * session that holds the lock is lost for good while the handle is ACTIVE: the handle is then
     * fenced, and the only thing left to do with it is close it.
     */
    public void onSessionLost(Consumer<String> listener) {
        lease.onLost(Objects.requireNonNull(listener, "listener"));
    }

    /**
     * Opens the raw image file (or block device) {@code image}, with ownership under this PATH.
     * The image's identity is its file name and size: give it the same name on every host.
     *
     * @throws CoordinationException ({@link CoordinationException.Reason#WRONG_IMAGE}) if the PATH
     *     belongs to another image
     * @throws dev.handoff.ownership.ImageInactiveException if asked for ACTIVE and another holder
     *     has the lock
     */
    public OwnedImage openFile(Path image, String ownerId, OwnedImage.State initial) throws DeviceException {
        Path name = image.getFileName();
        if (name == null) {
            throw new IllegalArgumentException("not a file: " + image);
        }
        FileDevice file = FileDevice.open(image);
        return open(file, file, name.toString(), ownerId, initial);
    }

    /**
     * Opens {@code device} under the name {@code imageName} with ownership under this PATH.
     * Closing the handle closes {@code release} (the device, typically), then the session.
     */
    public OwnedImage open(BlockDevice device, AutoCloseable release, String imageName, String ownerId,
            OwnedImage.State initial) throws DeviceException {
        return open(device, release, imageName, ownerId, initial, UnaryOperator.identity(), UnaryOperator.identity());
    }

    /**
     * How a handle is built from its parts: {@link OwnedImage#open}, or for trace validation a
     * recorder's equivalent that also records the handle's steps (tests).
     */
    @FunctionalInterface
    interface Assembly {
        OwnedImage open(BlockDevice device, AutoCloseable release, RecordStore records, OwnershipLock lock,
                String ownerId, String name, OwnedImage.State initial) throws DeviceException;
    }

    /** {@link #open}, with the store and the device wrapped (tests interleave steps there). */
    OwnedImage open(BlockDevice device, AutoCloseable release, String imageName, String ownerId, OwnedImage.State initial,
            UnaryOperator<RecordStore> storeView, UnaryOperator<BlockDevice> deviceView) throws DeviceException {
        return open(device, release, imageName, ownerId, initial, storeView, deviceView, OwnedImage::open);
    }

    /** {@link #open}, the handle built by {@code assembly} from the parts (tests trace it). */
    OwnedImage open(BlockDevice device, AutoCloseable release, String imageName, String ownerId, OwnedImage.State initial,
            UnaryOperator<RecordStore> storeView, UnaryOperator<BlockDevice> deviceView, Assembly assembly)
            throws DeviceException {
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(release, "release");
        Objects.requireNonNull(ownerId, "ownerId");
        Objects.requireNonNull(initial, "initial");
        java.util.concurrent.atomic.AtomicBoolean released = new java.util.concurrent.atomic.AtomicBoolean();
        AutoCloseable closeAll = () -> {
            if (!released.compareAndSet(false, true)) {
                return;
            }
            try {
                release.close();
            } finally {
                closeSession();
            }
        };
        synchronized (lifecycle) {
            if (closed || opened) {
                throw new IllegalStateException(closed ? "closed" : "this ZkOwnership already opened its image");
            }
            opened = true;
        }
        try {
            ImageIdentity identity = new ImageIdentity(imageName, device.size());
            ZkImages.checkIdentity(session, identity);
            ZkOwnershipLock lock = new ZkOwnershipLock(session, identity, ownerId, imageName, lease);
            RecordStore records = storeView.apply(new ZkRecordStore(session));
            BlockDevice leased = new LeasedDevice(deviceView.apply(device), lease);
            OwnedImage image = assembly.open(leased, closeAll, records, lock, ownerId, imageName, initial);
            synchronized (lifecycle) {
                handle = image;
            }
            return image;
        } catch (DeviceException | RuntimeException e) {
            closeQuietly(closeAll); // if OwnedImage.open closed it already, a no-op
            throw e;
        }
    }

    /** The session (tests expire it for real). */
    ZkSession session() {
        return session;
    }

    /** The lease of this image's lock (tests measure it). */
    SessionLease lease() {
        return lease;
    }

    /** What the ensemble says about this PATH now: identity, record, lock holder. Writes nothing. */
    public ZkStatus status() throws DeviceException {
        ImageIdentity identity = ZkImages.readIdentity(session);
        OwnershipRecord record = new ZkRecordStore(session).read();
        Holder holder = ZkImages.readHolder(session);
        return new ZkStatus(session.address(), identity, record, holder);
    }

    private void closeSession() {
        synchronized (lifecycle) {
            if (closed) {
                return;
            }
            closed = true;
        }
        lease.close();
        session.close();
    }

    /** Closes the handle, if one is open (which closes the session), or else the session. */
    @Override
    public void close() throws DeviceException {
        OwnedImage h;
        synchronized (lifecycle) {
            h = handle;
        }
        try {
            if (h != null) {
                h.close();
            }
        } finally {
            closeSession();
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        try {
            c.close();
        } catch (Exception ignored) {
            // the primary failure is reported
        }
    }
}
