package dev.handoff.coordination;

import dev.handoff.device.DeviceException;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.BoundedExponentialBackoffRetry;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.ZooKeeper;

/**
 * One Curator client, and so one ZooKeeper session at a time, to the ensemble of a
 * {@link ZkAddress}. Curator reconnects on its own and, when the ensemble has expired the session,
 * opens a new one: {@link #sessionId()} changes then. Operations that must stay inside one session
 * (the lock, the lease) use the raw handle of that session ({@link #handle()}) and never Curator's
 * retries, which may run an operation again in a newer session.
 *
 * <p>Threading: every method may be called from any thread.
 */
final class ZkSession implements AutoCloseable {
    private final ZkAddress address;
    private final CuratorFramework client;
    private final Duration connectTimeout;

    private ZkSession(ZkAddress address, CuratorFramework client, Duration connectTimeout) {
        this.address = address;
        this.client = client;
        this.connectTimeout = connectTimeout;
    }

    /**
     * Opens a session, waiting at most {@code connectTimeout} for a server to answer.
     *
     * @throws CoordinationException ({@link CoordinationException.Reason#UNREACHABLE}) if none did
     */
    static ZkSession connect(ZkAddress address, Duration sessionTimeout, Duration connectTimeout)
            throws CoordinationException {
        int connectMillis = (int) Math.min(Integer.MAX_VALUE, connectTimeout.toMillis());
        CuratorFramework client = CuratorFrameworkFactory.builder()
                .connectString(address.connectString())
                .sessionTimeoutMs((int) Math.min(Integer.MAX_VALUE, sessionTimeout.toMillis()))
                .connectionTimeoutMs(connectMillis)
                // An operation waits for a connection at most connectTimeout per try, three tries.
                .retryPolicy(new BoundedExponentialBackoffRetry(100, 1000, 2))
                .ensembleTracker(false)
                .build();
        client.start();
        boolean connected;
        try {
            connected = client.blockUntilConnected(connectMillis, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            connected = false;
        }
        if (!connected) {
            client.close();
            throw new CoordinationException(CoordinationException.Reason.UNREACHABLE, "cannot reach the ZooKeeper ensemble "
                    + address.connectString() + ": no server answered within " + connectTimeout.toMillis() + " ms");
        }
        return new ZkSession(address, client, connectTimeout);
    }

    CuratorFramework client() {
        return client;
    }

    ZkAddress address() {
        return address;
    }

    Duration connectTimeout() {
        return connectTimeout;
    }

    /** The raw handle of the current session. */
    ZooKeeper handle() throws DeviceException {
        try {
            return client.getZookeeperClient().getZooKeeper();
        } catch (Exception e) {
            throw failure("open a ZooKeeper handle", e);
        }
    }

    /** The current session's id, or 0 if there is none (the client is closed). */
    long sessionId() {
        try {
            return client.getZookeeperClient().getZooKeeper().getSessionId();
        } catch (Exception e) {
            return 0;
        }
    }

    /**
     * Waits until the server this client talks to has caught up with the leader, so that a read
     * issued afterwards in this session sees every write committed before the sync started.
     */
    void sync(String path) throws DeviceException {
        CountDownLatch done = new CountDownLatch(1);
        AtomicInteger rc = new AtomicInteger(Integer.MIN_VALUE); // written by the callback before countDown
        try {
            client.sync().inBackground((c, event) -> {
                rc.set(event.getResultCode());
                done.countDown();
            }).forPath(path);
            if (!done.await(connectTimeout.toMillis() * 3, TimeUnit.MILLISECONDS)) {
                throw new DeviceException(DeviceException.Kind.IO_ERROR, "ZooKeeper sync of " + path + " at "
                        + address.connectString() + " did not complete within " + connectTimeout.toMillis() * 3 + " ms");
            }
        } catch (DeviceException e) {
            throw e;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw failure("sync " + path, e);
        } catch (Exception e) {
            throw failure("sync " + path, e);
        }
        int code = rc.get();
        if (code != KeeperException.Code.OK.intValue() && code != KeeperException.Code.NONODE.intValue()) {
            throw failure("sync " + path, KeeperException.create(KeeperException.Code.get(code), path));
        }
    }

    /** A one-line {@link DeviceException} for a failed ZooKeeper operation. */
    DeviceException failure(String what, Exception e) {
        if (e instanceof InterruptedException) {
            Thread.currentThread().interrupt();
        }
        String why = e instanceof KeeperException k ? k.code() + (k.getPath() != null ? " (" + k.getPath() + ")" : "")
                : String.valueOf(e.getMessage() != null ? e.getMessage() : e.toString());
        return new DeviceException(DeviceException.Kind.IO_ERROR, "ZooKeeper (" + address.connectString() + "): cannot "
                + what + ": " + why, e);
    }

    @Override
    public void close() {
        client.close();
    }
}
