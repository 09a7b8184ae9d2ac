package dev.handoff.coordination;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.handoff.device.DeviceException;
import dev.handoff.device.MemoryDevice;
import dev.handoff.ownership.HandoffToken;
import dev.handoff.ownership.ImageFencedException;
import dev.handoff.ownership.ImageInactiveException;
import dev.handoff.ownership.ImageLockedException;
import dev.handoff.ownership.OwnedImage;
import dev.handoff.ownership.OwnershipRecord;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.zookeeper.data.Stat;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The ZooKeeper record store and lock behind OwnedImage, on a real three-server ensemble, in one JVM. */
@Timeout(120)
class ZkOwnershipTest {
    static final Duration SESSION = Duration.ofSeconds(4);
    static final Duration CONNECT = Duration.ofSeconds(10);
    static Ensemble ensemble;
    static final AtomicInteger paths = new AtomicInteger();

    @BeforeAll
    static void startEnsemble() throws Exception {
        ensemble = Ensemble.start();
    }

    @AfterAll
    static void stopEnsemble() throws Exception {
        ensemble.close();
    }

    static ZkAddress freshPath() {
        return ensemble.address("/handoff/test/image-" + paths.incrementAndGet());
    }

    static ZkOwnership connect(ZkAddress address) throws Exception {
        return ZkOwnership.connect(address, SESSION, CONNECT);
    }

    static OwnedImage open(ZkAddress address, MemoryDevice disk, String owner, OwnedImage.State state) throws Exception {
        return connect(address).open(disk, () -> { }, "disk.img", owner, state);
    }

    @Test
    void aHandoffThroughZooKeeperMovesTheEpochAndFencesTheSource() throws Exception {
        ZkAddress at = freshPath();
        MemoryDevice disk = new MemoryDevice(1 << 20);
        try (OwnedImage src = open(at, disk, "a", OwnedImage.State.ACTIVE);
                OwnedImage dst = open(at, disk, "b", OwnedImage.State.INACTIVE)) {
            assertThat(src.epoch()).isEqualTo(1);
            src.write(0, ByteBuffer.wrap(new byte[] {1, 2, 3}));
            HandoffToken token = src.prepareHandoff();
            assertThat(token).isEqualTo(new HandoffToken(1, "a"));
            dst.acceptHandoff(token);
            assertThat(dst.state()).isEqualTo(OwnedImage.State.ACTIVE);
            assertThat(dst.epoch()).isEqualTo(2);
            assertThat(dst.readRecord()).isEqualTo(new OwnershipRecord(2, "b", false));
            assertThatThrownBy(src::activate).isInstanceOf(ImageLockedException.class)
                    .hasMessageContaining("locked by another holder").hasMessageContaining("owner 'b'");
            assertThatThrownBy(() -> src.write(0, ByteBuffer.wrap(new byte[1]))).isInstanceOf(ImageInactiveException.class);
        }
        try (ZkOwnership look = connect(at)) {
            ZkStatus status = look.status();
            assertThat(status.record()).isEqualTo(new OwnershipRecord(2, "b", true));
            assertThat(status.holder()).isNull();
            assertThat(status.identity()).isEqualTo(new ImageIdentity("disk.img", 1 << 20));
        }
    }

    @Test
    void anAbortRacingAnAcceptHasExactlyOneWinner() throws Exception {
        ZkAddress at = freshPath();
        MemoryDevice disk = new MemoryDevice(1 << 16);
        try (OwnedImage src = open(at, disk, "a", OwnedImage.State.ACTIVE);
                OwnedImage dst = open(at, disk, "b", OwnedImage.State.INACTIVE)) {
            HandoffToken token = src.prepareHandoff();
            dst.acceptHandoff(token);
            assertThatThrownBy(src::abortHandoff).isInstanceOfAny(ImageLockedException.class, ImageFencedException.class);
            dst.inactivate();
            // b let go; a's abort now finds the record moved on: fenced by the epoch, not refused by the lock
            assertThatThrownBy(src::abortHandoff).isInstanceOf(ImageFencedException.class).hasMessageContaining("stale");
            assertThat(src.state()).isEqualTo(OwnedImage.State.INACTIVE);
        }
    }

    @Test
    void statusShowsTheHoldersOwnerHostAndSession() throws Exception {
        ZkAddress at = freshPath();
        MemoryDevice disk = new MemoryDevice(1 << 16);
        ZkOwnership holder = connect(at);
        try (OwnedImage a = holder.open(disk, () -> { }, "disk.img", "alice", OwnedImage.State.ACTIVE);
                ZkOwnership look = connect(at)) {
            ZkStatus status = look.status();
            assertThat(status.record()).isEqualTo(new OwnershipRecord(1, "alice", false));
            assertThat(status.holder().ownerId()).isEqualTo("alice");
            assertThat(status.holder().pid()).isEqualTo(ProcessHandle.current().pid());
            assertThat(status.holder().sessionId()).isEqualTo(holder.sessionId()).isNotZero();
            assertThat(holder.leaseBound()).isEqualTo(holder.sessionTimeout().multipliedBy(6).dividedBy(10));
        }
    }

    @Test
    void aPathThatBelongsToAnotherImageIsRefused() throws Exception {
        ZkAddress at = freshPath();
        try (OwnedImage a = open(at, new MemoryDevice(1 << 16), "a", OwnedImage.State.ACTIVE)) {
            assertThat(a.state()).isEqualTo(OwnedImage.State.ACTIVE);
        }
        ZkOwnership other = connect(at);
        assertThatThrownBy(() -> other.open(new MemoryDevice(1 << 17), () -> { }, "disk.img", "b", OwnedImage.State.INACTIVE))
                .isInstanceOfSatisfying(CoordinationException.class,
                        e -> assertThat(e.reason()).isEqualTo(CoordinationException.Reason.WRONG_IMAGE))
                .hasMessageContaining("belongs to another image").hasMessageContaining("65536 bytes")
                .hasMessageContaining("131072 bytes");
    }

    @Test
    void anInactiveHolderWritesNothingToZooKeeper() throws Exception {
        ZkAddress at = freshPath();
        try (OwnedImage dst = open(at, new MemoryDevice(1 << 16), "b", OwnedImage.State.INACTIVE)) {
            assertThat(dst.readRecord()).isEqualTo(OwnershipRecord.ABSENT);
        }
        try (ZkOwnership look = connect(at)) {
            ZkStatus status = look.status();
            assertThat(status.identity()).isNull(); // not even the PATH znode
            assertThat(status.record()).isEqualTo(OwnershipRecord.ABSENT);
        }
    }

    @Test
    void racingCompareAndWritesFromOneEpochHaveExactlyOneWinner() throws Exception {
        ZkAddress at = freshPath();
        int writers = 4;
        ZkSession[] sessions = new ZkSession[writers];
        ZkRecordStore[] stores = new ZkRecordStore[writers];
        for (int i = 0; i < writers; i++) {
            sessions[i] = ZkSession.connect(at, SESSION, CONNECT);
            stores[i] = new ZkRecordStore(sessions[i]);
        }
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(writers);
        try {
            for (long epoch = 0; epoch < 20; epoch++) {
                long from = epoch;
                java.util.concurrent.CyclicBarrier start = new java.util.concurrent.CyclicBarrier(writers);
                java.util.List<java.util.concurrent.Future<Boolean>> won = new java.util.ArrayList<>();
                for (int i = 0; i < writers; i++) {
                    ZkRecordStore store = stores[i];
                    String owner = "w" + i;
                    won.add(pool.submit(() -> {
                        start.await();
                        return store.compareAndWrite(from, new OwnershipRecord(from + 1, owner, false)).epoch() == from;
                    }));
                }
                int winners = 0;
                for (java.util.concurrent.Future<Boolean> f : won) {
                    winners += f.get() ? 1 : 0;
                }
                assertThat(winners).as("compare-and-writes that moved epoch %d", from).isEqualTo(1);
                assertThat(stores[0].read().epoch()).isEqualTo(from + 1);
            }
        } finally {
            pool.shutdownNow();
            for (ZkSession s : sessions) {
                s.close();
            }
        }
    }

    @Test
    @Timeout(60)
    void aReleaseWhoseDeleteLosesItsConnectionTriesAgainInTheSameSession() throws Exception {
        ZkAddress direct = freshPath();
        try (PartitionProxy proxy = new PartitionProxy(ensemble.ports());
                ZkSession session = ZkSession.connect(new ZkAddress(proxy.connectString(), direct.path()), SESSION, CONNECT);
                ZkSession look = ZkSession.connect(direct, SESSION, CONNECT);
                SessionLease lease = new SessionLease(session, "disk.img")) {
            ZkOwnershipLock lock = new ZkOwnershipLock(session, new ImageIdentity("disk.img", 1 << 20), "a", "disk.img", lease);
            lock.acquire();
            long held = session.sessionId();
            assertThat(lockSeenBy(look)).isNotNull();
            proxy.partition(); // the delete goes out, and nothing of it reaches the ensemble
            CompletableFuture<Void> released = releaseAsync(lock);
            Thread.sleep(500);
            assertThat(released).isNotDone();
            assertThat(lockSeenBy(look)).isNotNull();
            proxy.heal(); // the client's connection drops: the delete is answered CONNECTIONLOSS, and reconnects
            released.get(40, TimeUnit.SECONDS); // within the release's deadline (connectTimeout x 3)
            // Deleted by the retry, in the same session (not by the session's end)
            assertThat(session.sessionId()).isEqualTo(held);
            assertThat(lockSeenBy(look)).isNull();
            assertThat(lock.isHeld()).isFalse();
        }
    }

    @Test
    @Timeout(60)
    void aReleaseWhoseDeleteWasAppliedButWhoseReplyWasLostEndsReleasedInTheSameSession() throws Exception {
        ZkAddress direct = freshPath();
        try (PartitionProxy proxy = new PartitionProxy(ensemble.ports());
                ZkSession session = ZkSession.connect(new ZkAddress(proxy.connectString(), direct.path()), SESSION, CONNECT);
                ZkSession look = ZkSession.connect(direct, SESSION, CONNECT);
                SessionLease lease = new SessionLease(session, "disk.img")) {
            ZkOwnershipLock lock = new ZkOwnershipLock(session, new ImageIdentity("disk.img", 1 << 20), "a", "disk.img", lease);
            lock.acquire();
            long held = session.sessionId();
            proxy.dropReplies(); // the delete reaches the ensemble, and its answer never comes back
            CompletableFuture<Void> released = releaseAsync(lock);
            awaitLockGone(look, direct.lockPath()); // applied at the ensemble
            assertThat(released).as("a release whose reply is lost").isNotDone();
            proxy.heal(); // the client's connection drops: the delete is answered CONNECTIONLOSS, and reconnects
            assertThatCode(() -> released.get(40, TimeUnit.SECONDS)) // within the release's deadline (connectTimeout x 3)
                    .as("the release that finds its lost delete applied").doesNotThrowAnyException();
            assertThat(session.sessionId()).as("the session after the release").isEqualTo(held);
            assertThat(lockSeenBy(look)).isNull();
            assertThat(lock.isHeld()).isFalse();
        }
    }

    @Test
    @Timeout(60)
    void aReleaseWhoseLostReplyLetAnotherHolderInNeverDeletesThatHoldersLock() throws Exception {
        ZkAddress direct = freshPath();
        ImageIdentity image = new ImageIdentity("disk.img", 1 << 20);
        try (PartitionProxy proxy = new PartitionProxy(ensemble.ports());
                ZkSession session = ZkSession.connect(new ZkAddress(proxy.connectString(), direct.path()), SESSION, CONNECT);
                ZkSession later = ZkSession.connect(direct, SESSION, CONNECT);
                ZkSession look = ZkSession.connect(direct, SESSION, CONNECT);
                SessionLease lease = new SessionLease(session, "disk.img");
                SessionLease laterLease = new SessionLease(later, "disk.img")) {
            ZkOwnershipLock lock = new ZkOwnershipLock(session, image, "a", "disk.img", lease);
            ZkOwnershipLock laterLock = new ZkOwnershipLock(later, image, "b", "disk.img", laterLease);
            lock.acquire();
            long held = session.sessionId();
            proxy.dropReplies(); // the delete reaches the ensemble, and its answer never comes back
            CompletableFuture<Void> released = releaseAsync(lock);
            awaitLockGone(look, direct.lockPath()); // applied at the ensemble
            laterLock.acquire(); // b takes the lock while a still waits for the answer to its delete
            assertThat(released).as("a release whose reply is lost").isNotDone();
            Holder b = holderSeenBy(look);
            assertThat(b.sessionId()).isEqualTo(later.sessionId()).isNotEqualTo(held);
            proxy.heal(); // a's connection drops: the delete is answered CONNECTIONLOSS, and a tries again
            assertThatCode(() -> released.get(40, TimeUnit.SECONDS))
                    .as("the release that finds its lost delete applied").doesNotThrowAnyException();
            assertThat(session.sessionId()).as("the session after the release").isEqualTo(held);
            assertThat(lock.isHeld()).isFalse();
            // b's znode is untouched: same session, same data, and b still holds the lock
            assertThat(holderSeenBy(look)).as("the later holder's lock znode after the first holder's release")
                    .isEqualTo(b);
            assertThat(laterLock.isHeld()).isTrue();
            laterLock.release();
            assertThat(lockSeenBy(look)).isNull();
        }
    }

    /** Releases on another thread, so that the test can watch the ensemble while the release waits. */
    static CompletableFuture<Void> releaseAsync(ZkOwnershipLock lock) {
        return CompletableFuture.runAsync(() -> {
            try {
                lock.release();
            } catch (DeviceException e) {
                throw new CompletionException(e);
            }
        });
    }

    /** The lock znode as {@code look} sees it after a sync: every write committed before is in it. */
    static Stat lockSeenBy(ZkSession look) throws Exception {
        look.sync(look.address().lockPath());
        return look.client().checkExists().forPath(look.address().lockPath());
    }

    /** The lock's holder as {@code look} sees it after a sync; null if there is no lock znode. */
    static Holder holderSeenBy(ZkSession look) throws Exception {
        look.sync(look.address().lockPath());
        return ZkImages.readHolder(look);
    }

    /** Waits until a direct session no longer sees the lock znode: the ensemble applied its delete. */
    static void awaitLockGone(ZkSession look, String lockPath) throws Exception {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (look.client().checkExists().forPath(lockPath) != null) {
            assertThat(end - System.nanoTime()).as("time left for the lock znode %s to go", lockPath).isPositive();
            Thread.sleep(20);
        }
    }

    @Test
    void anUnreachableEnsembleIsReportedWithinTheConnectTimeout() throws Exception {
        // A port bound and never listening: connections to it are refused, and no other process (another
        // build's ensemble, say) can take it while the test runs, as it could a port closed after bind(0).
        try (java.net.Socket reserved = new java.net.Socket()) {
            reserved.bind(new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0));
            int port = reserved.getLocalPort();
            long t = System.nanoTime();
            assertThatThrownBy(() -> ZkOwnership.connect(new ZkAddress("127.0.0.1:" + port, "/x"), SESSION, Duration.ofSeconds(1)))
                    .isInstanceOfSatisfying(CoordinationException.class,
                            e -> assertThat(e.reason()).isEqualTo(CoordinationException.Reason.UNREACHABLE))
                    .hasMessageContaining("cannot reach the ZooKeeper ensemble 127.0.0.1:" + port);
            assertThat(Duration.ofNanos(System.nanoTime() - t)).isLessThan(Duration.ofSeconds(30));
        }
    }
}
