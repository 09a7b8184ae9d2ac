package dev.handoff.coordination;

import dev.handoff.device.DeviceException;
import dev.handoff.ownership.ImageLockedException;
import dev.handoff.ownership.OwnershipLock;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

/**
 * An image's write lock as the ephemeral znode {@code PATH/lock}: whoever created it holds the
 * lock for as long as the session that created it lives; the ensemble deletes it when that
 * session ends (closed, or expired after the session timeout without contact). Its data names the
 * holder ({@code owner=}, {@code host=}, {@code pid=}).
 *
 * <p>Taking the lock first makes sure the PATH znode exists and names this image
 * ({@link ImageIdentity}); it then arms the {@link SessionLease}, which bounds how long the
 * holder may acknowledge writes without confirmed contact. Releasing deletes the znode in its own
 * session only, never in a newer one, so a holder can never delete a later holder's lock; a delete
 * whose connection was lost is tried again (after re-reading that the znode is still the session's)
 * until the release's deadline ({@link #release}).
 *
 * <p>{@link #isHeld} is this process's belief (the lock's session is still the client's current
 * session); after a long pause it may be stale until the client learns that the session expired.
 * Nothing here or in the kernel trusts it to admit a write: the lease and the epoch do.
 *
 * <p>Threading: acquire and release are synchronized on this instance (the kernel calls them under
 * its transition lock anyway); release may hold it up to its deadline (connectTimeout x 3) while it
 * retries. {@link #isHeld} reads one volatile field and the client's session. The answers of
 * release's asynchronous requests come on the client's event thread, each in a {@link Reply}.
 *
 * <p>Access modes (CONTRIBUTING, "One accessor convention"): {@code heldSession} is written only
 * under this monitor ({@link #svHeldSession}), read there with {@link #lpHeldSession} (the monitor
 * orders it after every store) and lock-free by {@link #isHeld} with {@link #lvHeldSession},
 * pairing with those stores. A release store would do (a session id publishes nothing else).
 * A {@link Reply}'s fields are plain and need no accessor: the client's event thread writes them
 * before counting its latch down, and release reads them only after an await that saw the count
 * reach zero (the latch orders the two).
 */
final class ZkOwnershipLock implements OwnershipLock {
    private final ZkSession session;
    private final ImageIdentity identity;
    private final String ownerId;
    private final String name;
    private final SessionLease lease;
    private final String lockPath;
    private static final VarHandle HELD_SESSION;

    static {
        try {
            HELD_SESSION = MethodHandles.lookup().findVarHandle(ZkOwnershipLock.class, "heldSession", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @SuppressWarnings("unused") // through HELD_SESSION: written under this monitor; 0 when not held
    private volatile long heldSession;
    private int heldVersion;           // guarded by this
    /** The pause between two tries of the lock znode's delete after a lost connection. */
    static final long RETRY_PAUSE_MS = 150;

    ZkOwnershipLock(ZkSession session, ImageIdentity identity, String ownerId, String name, SessionLease lease) {
        this.session = session;
        this.identity = identity;
        this.ownerId = ownerId;
        this.name = name;
        this.lease = lease;
        this.lockPath = session.address().lockPath();
    }

    @Override
    public synchronized void acquire() throws DeviceException {
        if (isHeld()) {
            return;
        }
        svHeldSession(0);
        ZkImages.claimPath(session, identity);
        long sent = System.nanoTime(); // the lease counts from before the request that created the znode
        Stat stat = new Stat();
        try {
            session.client().create().storingStatIn(stat).withMode(CreateMode.EPHEMERAL).forPath(lockPath, holderData());
        } catch (KeeperException.NodeExistsException exists) {
            Holder other = ZkImages.readHolder(session);
            if (other == null || other.sessionId() != session.sessionId()) {
                throw new ImageLockedException("Failed to get \"write\" lock: " + name + " is locked by another holder"
                        + (other != null ? ": " + other.describe() : "") + " (ZooKeeper " + session.address() + ")");
            }
            // Ours: a create that Curator retried after a lost reply.
            stat.setEphemeralOwner(other.sessionId());
            stat.setVersion(0);
        } catch (Exception e) {
            throw session.failure("create the lock znode " + lockPath, e);
        }
        ZooKeeper zk = session.handle();
        if (zk.getSessionId() != stat.getEphemeralOwner()) {
            // Curator moved to a new session meanwhile: the znode, if it is ours, dies with the old one.
            throw new DeviceException(DeviceException.Kind.IO_ERROR, "ZooKeeper (" + session.address().connectString()
                    + "): the session changed while the lock was taken; try again");
        }
        heldVersion = stat.getVersion();
        svHeldSession(stat.getEphemeralOwner());
        lease.arm(lpHeldSession(), heldVersion, TimeUnit.MILLISECONDS.toNanos(zk.getSessionTimeout()), sent);
    }

    /**
     * Disarms the lease and deletes the lock znode, in the lock's own session only.
     *
     * <p>A delete answered CONNECTIONLOSS (the client lost its server; the outcome is unknown and the
     * session usually survives the reconnection) or OPERATIONTIMEOUT is tried again, pausing
     * {@link #RETRY_PAUSE_MS} between tries, until one deadline for the whole release (connectTimeout
     * x 3); only then does it fail, the znode left to the end of the session. A retry is safe: it runs
     * in the same session, and it first syncs and re-reads the znode there, deleting it (version
     * checked) only if that session still owns it. The sync orders the re-read after every request
     * the ensemble applied before it, the lost delete among them: if that one took effect the znode is
     * gone (NONODE, released) or is a later holder's (another session's, left alone); it cannot be
     * deleted meanwhile by anyone but this session, and a version-checked delete of it applied twice
     * is NONODE. A session that changed (ended: the ensemble deleted its ephemeral znode) or expired
     * ends the release as released.
     */
    @Override
    public synchronized void release() throws DeviceException {
        long s = lpHeldSession();
        lease.disarm();
        svHeldSession(0);
        if (s == 0) {
            return;
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(session.connectTimeout().toMillis() * 3);
        KeeperException.Code answer;
        for (int tries = 0; ; tries++) {
            ZooKeeper zk = session.handle();
            if (zk.getSessionId() != s) {
                return; // the session ended, and the ensemble deleted its znode with it
            }
            if (tries > 0) {
                // The last delete's outcome is unknown: is the znode still this session's?
                Reply owner = new Reply();
                zk.sync(lockPath, (c, path, ctx) -> { }, null); // answered before the exists below, in order
                zk.exists(lockPath, false, (c, path, ctx, stat) -> owner.answer(c, stat), null);
                answer = owner.await(deadline);
                if (answer == KeeperException.Code.NONODE
                        || answer == KeeperException.Code.OK && owner.stat.getEphemeralOwner() != s) {
                    return; // the lost delete took effect (and a later holder may have the lock now)
                }
            } else {
                answer = KeeperException.Code.OK;
            }
            if (answer == KeeperException.Code.OK) {
                Reply deleted = new Reply();
                zk.delete(lockPath, heldVersion, (code, path, ctx) -> {
                    deleted.answer(code, null);
                }, null);
                answer = deleted.await(deadline);
            }
            if (answer == KeeperException.Code.OK || answer == KeeperException.Code.NONODE
                    || answer == KeeperException.Code.SESSIONEXPIRED) {
                return;
            }
            boolean retryable = answer == KeeperException.Code.CONNECTIONLOSS || answer == KeeperException.Code.OPERATIONTIMEOUT;
            long left = deadline - System.nanoTime();
            if (!retryable || Thread.currentThread().isInterrupted() || left <= TimeUnit.MILLISECONDS.toNanos(RETRY_PAUSE_MS)) {
                break;
            }
            try {
                Thread.sleep(RETRY_PAUSE_MS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        throw new DeviceException(DeviceException.Kind.IO_ERROR, "ZooKeeper (" + session.address().connectString()
                + "): cannot delete the lock znode " + lockPath + ": " + answer + "; it goes away when session 0x"
                + Long.toHexString(s) + " ends");
    }

    @Override
    public boolean isHeld() {
        long s = lvHeldSession();
        return s != 0 && session.sessionId() == s;
    }

    /** One asynchronous request's answer: its code (and stat), or OPERATIONTIMEOUT past the deadline. */
    private static final class Reply {
        private final CountDownLatch done = new CountDownLatch(1);
        private int rc;      // written by the client's event thread before countDown
        private Stat stat;   // likewise; null unless rc is OK

        void answer(int code, Stat st) {
            rc = code;
            stat = st;
            done.countDown();
        }

        KeeperException.Code await(long deadline) {
            try {
                if (done.await(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                    return KeeperException.Code.get(rc);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return KeeperException.Code.OPERATIONTIMEOUT;
        }
    }

    /* ---- Accessors (modes and partners: "Access modes" in the class comment) ---- */

    private long lvHeldSession() {
        return (long) HELD_SESSION.getVolatile(this); // lock-free; pairs with svHeldSession
    }

    private long lpHeldSession() {
        return (long) HELD_SESSION.get(this); // under this monitor, as every store
    }

    private void svHeldSession(long s) {
        HELD_SESSION.setVolatile(this, s); // under this monitor; a release would do
    }

    private byte[] holderData() {
        return Holder.encode(ownerId, ZkImages.hostName(), ProcessHandle.current().pid()).getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public String toString() {
        return "ZkOwnershipLock[" + lockPath + (isHeld() ? ", held" : "") + "]";
    }
}
