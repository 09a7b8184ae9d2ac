package dev.handoff.coordination;

import static dev.handoff.ownership.Refusals.fenced;
import static dev.handoff.ownership.Refusals.refused;

import dev.handoff.device.MemoryDevice;
import dev.handoff.ownership.HandoffToken;
import dev.handoff.ownership.OwnedImage;
import dev.handoff.ownership.OwnershipTraceRecorder;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.UnaryOperator;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;

/**
 * Ownership handoffs through ZooKeeper, recorded for trace validation against
 * {@code TraceOwnership.tla} (specs/README.md): two holders, "n1" and "n2", each with a
 * {@link ZkOwnership} session of its own to a real three-server ensemble (this JVM's threads; the
 * recorder serialises their steps), their handles built by the recorder from ZooKeeper's record
 * store and lock ({@link OwnershipTraceRecorder#open}) on one shared memory device. Each scenario
 * returns the log's lines, in the order the steps took effect.
 *
 * <p>One instance owns one ensemble; every scenario runs under a PATH of its own. Threading: one
 * scenario at a time.
 */
public final class ZkOwnershipTraceScenarios implements AutoCloseable {
    private static final Duration SESSION = Duration.ofSeconds(4);
    private static final Duration CONNECT = Duration.ofSeconds(10);
    /** How long the ensemble may take to delete an expired session's lock, on a loaded machine. */
    private static final Duration EXPIRY_WAIT = Duration.ofSeconds(60);
    /** Longer than the kernel's recheck interval of a write (100 ms), so that the next write re-reads the record. */
    private static final long PAST_RECHECK_MILLIS = 250;
    private static final int SIZE = 64 << 10;

    private final Ensemble ensemble;
    private final AtomicInteger paths = new AtomicInteger();

    private ZkOwnershipTraceScenarios(Ensemble ensemble) {
        this.ensemble = ensemble;
    }

    /** Starts the ensemble (a few seconds). */
    public static ZkOwnershipTraceScenarios start() throws Exception {
        return new ZkOwnershipTraceScenarios(Ensemble.start());
    }

    /**
     * n1 writes and flushes, hands the image to n2 through ZooKeeper, which writes and flushes;
     * n1 is refused a write and an activation (the lock znode is n2's); n2 hands it back and n1
     * takes it; n2 is refused a write; n1 writes and flushes; both close.
     */
    public List<String> handoffAndBack(Path dir) throws Exception {
        Path log = log(dir);
        OwnershipTraceRecorder recorder = new OwnershipTraceRecorder(log);
        ZkAddress at = freshPath();
        MemoryDevice disk = new MemoryDevice(SIZE);
        try (OwnedImage n1 = open(recorder, at, disk, "n1", OwnedImage.State.ACTIVE);
                OwnedImage n2 = open(recorder, at, disk, "n2", OwnedImage.State.INACTIVE)) {
            OwnershipTraceRecorder.start(log);
            n1.write(0, block(1));
            n1.flush();
            n1.write(4096, block(2));
            HandoffToken t1 = n1.prepareHandoff();
            n2.acceptHandoff(t1);
            n2.write(0, block(3));
            n2.flush();
            refused(() -> n1.write(0, block(4)));
            refused(n1::activate);
            HandoffToken t2 = n2.prepareHandoff();
            n1.acceptHandoff(t2);
            refused(() -> n2.write(0, block(5)));
            n1.write(8192, block(6));
            n1.flush();
            closeNow(n2);
            closeNow(n1);
        }
        return OwnershipTraceRecorder.lines(log);
    }

    /**
     * n1 writes and flushes; its ZooKeeper session is expired for real (a second client joins the
     * session with its id and password and closes it: the ensemble ends the session and deletes
     * its ephemeral lock znode), recorded as the environment step {@code LOSE_LOCK} of n1, which
     * keeps running and believes itself ACTIVE; n2 activates (the lock is free), writes and
     * flushes; n1's write and flush are refused as fenced by the epoch they re-read, and so are an
     * activation (no step: it is ACTIVE and knows it is fenced) and an inactivation (which writes
     * nothing and releases the lock in its ended session only, leaving n2's znode); n1's next
     * activation is refused by the lock, n2's; n2 writes and flushes again; both close. The image
     * holds n2's data where n1's refused write went.
     */
    public List<String> sessionExpiry(Path dir) throws Exception {
        Path log = log(dir);
        OwnershipTraceRecorder recorder = new OwnershipTraceRecorder(log);
        ZkAddress at = freshPath();
        MemoryDevice disk = new MemoryDevice(SIZE);
        ZkOwnership z1 = ZkOwnership.connect(at, SESSION, CONNECT);
        try (OwnedImage n1 = open(recorder, z1, disk, "n1", OwnedImage.State.ACTIVE);
                OwnedImage n2 = open(recorder, at, disk, "n2", OwnedImage.State.INACTIVE)) {
            OwnershipTraceRecorder.start(log);
            n1.write(0, block(1));
            n1.flush();
            recorder.environment("LOSE_LOCK", n1, () -> expire(z1, at));
            n2.activate();
            n2.write(4096, block(2));
            n2.flush();
            Thread.sleep(PAST_RECHECK_MILLIS);
            fenced(() -> n1.write(0, block(3)));
            fenced(n1::flush);
            fenced(n1::activate);
            fenced(n1::inactivate);
            refused(n1::activate);
            n2.write(0, block(4));
            n2.flush();
            closeNow(n1);
            closeNow(n2);
        } finally {
            z1.close();
        }
        expectBlock(disk, 0, 4);
        expectBlock(disk, 4096, 2);
        return OwnershipTraceRecorder.lines(log);
    }

    /** Closes a handle as a step of the scenario, in its order; the try's own close is then a no-op. */
    private static void closeNow(OwnedImage image) throws Exception {
        image.close();
    }

    private static void expectBlock(MemoryDevice disk, long offset, int value) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(4096);
        disk.read(offset, b);
        for (int i = 0; i < b.capacity(); i++) {
            if (b.get(i) != (byte) value) {
                throw new IllegalStateException("byte " + (offset + i) + " is " + b.get(i) + ", expected " + value);
            }
        }
    }

    private ZkAddress freshPath() {
        return ensemble.address("/handoff/trace/image-" + paths.incrementAndGet());
    }

    private static Path log(Path dir) throws IOException {
        Files.createDirectories(dir);
        return dir.resolve("trace.log");
    }

    private static OwnedImage open(OwnershipTraceRecorder recorder, ZkAddress at, MemoryDevice disk, String node,
            OwnedImage.State initial) throws Exception {
        return open(recorder, ZkOwnership.connect(at, SESSION, CONNECT), disk, node, initial);
    }

    private static OwnedImage open(OwnershipTraceRecorder recorder, ZkOwnership zk, MemoryDevice disk, String node,
            OwnedImage.State initial) throws Exception {
        return zk.open(disk, () -> { }, "disk.img", node, initial, UnaryOperator.identity(), UnaryOperator.identity(),
                recorder::open);
    }

    /**
     * Ends {@code holder}'s session at the ensemble as an expiry does: a second client attaches to
     * the session (its id and password) and closes it. Returns once the lock znode is gone and the
     * holder's client has learnt that its session ended (it has a new one).
     */
    private void expire(ZkOwnership holder, ZkAddress at) {
        try {
            ZooKeeper own = holder.session().handle();
            long id = own.getSessionId();
            CountDownLatch connected = new CountDownLatch(1);
            ZooKeeper twin = new ZooKeeper(ensemble.connectString(), (int) SESSION.toMillis(), event -> {
                if (event.getState() == Watcher.Event.KeeperState.SyncConnected) {
                    connected.countDown();
                }
            }, id, own.getSessionPasswd());
            try {
                if (!connected.await(CONNECT.toMillis(), TimeUnit.MILLISECONDS)) {
                    throw new IllegalStateException("could not attach to session 0x" + Long.toHexString(id));
                }
            } finally {
                twin.close(); // closes the session: the ensemble deletes its ephemeral znodes
            }
            long end = System.nanoTime() + EXPIRY_WAIT.toNanos();
            try (ZkOwnership look = ZkOwnership.connect(at, SESSION, CONNECT)) {
                while (look.status().holder() != null || holder.sessionId() == id || holder.sessionId() == 0) {
                    if (System.nanoTime() - end > 0) {
                        throw new IllegalStateException("session 0x" + Long.toHexString(id) + " still holds the lock, or its"
                                + " client has not noticed its end, " + EXPIRY_WAIT + " after it was closed");
                    }
                    Thread.sleep(50);
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("expiring the session of " + at + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static ByteBuffer block(int value) {
        byte[] b = new byte[4096];
        java.util.Arrays.fill(b, (byte) value);
        return ByteBuffer.wrap(b);
    }

    @Override
    public void close() throws IOException {
        ensemble.close();
    }
}
