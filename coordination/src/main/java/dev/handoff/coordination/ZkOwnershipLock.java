package dev.handoff.coordination;

import dev.handoff.device.DeviceException;
import dev.handoff.ownership.ImageLockedException;
import dev.handoff.ownership.OwnershipLock;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
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
 * session only, never in a newer one, so a holder can never delete a later holder's lock.
 *
 * <p>{@link #isHeld} is this process's belief (the lock's session is still the client's current
 * session); after a long pause it may be stale until the client learns that the session expired.
 * Nothing here or in the kernel trusts it to admit a write: the lease and the epoch do.
 *
 * <p>Threading: acquire and release are synchronized on this instance (the kernel calls them under
 * its transition lock anyway); {@link #isHeld} reads one volatile field and the client's session.
 *
 * <p>Access modes (CONTRIBUTING, "One accessor convention"): {@code heldSession} is written only
 * under this monitor ({@link #svHeldSession}), read there with {@link #lpHeldSession} (the monitor
 * orders it after every store) and lock-free by {@link #isHeld} with {@link #lvHeldSession},
 * pairing with those stores. A release store would do (a session id publishes nothing else).
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

    @Override
    public synchronized void release() throws DeviceException {
        long s = lpHeldSession();
        lease.disarm();
        svHeldSession(0);
        if (s == 0) {
            return;
        }
        ZooKeeper zk = session.handle();
        if (zk.getSessionId() != s) {
            return; // the session ended, and the ensemble deleted its znode with it
        }
        CountDownLatch done = new CountDownLatch(1);
        AtomicInteger rc = new AtomicInteger(); // written by the callback before countDown
        zk.delete(lockPath, heldVersion, (code, path, ctx) -> {
            rc.set(code);
            done.countDown();
        }, null);
        boolean answered;
        try {
            answered = done.await(session.connectTimeout().toMillis() * 3, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            answered = false;
        }
        KeeperException.Code code = answered ? KeeperException.Code.get(rc.get()) : KeeperException.Code.OPERATIONTIMEOUT;
        if (code == KeeperException.Code.OK || code == KeeperException.Code.NONODE
                || code == KeeperException.Code.SESSIONEXPIRED) {
            return;
        }
        throw new DeviceException(DeviceException.Kind.IO_ERROR, "ZooKeeper (" + session.address().connectString()
                + "): cannot delete the lock znode " + lockPath + ": " + code + "; it goes away when session 0x"
                + Long.toHexString(s) + " ends");
    }

    @Override
    public boolean isHeld() {
        long s = lvHeldSession();
        return s != 0 && session.sessionId() == s;
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
