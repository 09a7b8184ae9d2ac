package dev.handoff.coordination;

import dev.handoff.device.DeviceException;
import dev.handoff.ownership.OwnershipRecord;
import dev.handoff.ownership.RecordStore;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

/**
 * The ownership record in the persistent znode {@code PATH/record}, replaced only by a
 * compare-and-set on the znode's version, so that two writers that both read epoch {@code e}
 * cannot both move it: the ensemble applies at most one {@code setData} per version.
 *
 * <h2>The znode's data</h2>
 * Big-endian, {@code 14 + r} bytes:
 * <pre>
 *  0       4       6                               14                 14+r
 *  +-------+-------+-------------------------------+------------------+
 *  | magic |version|      write id (u64)           | ownership record |
 *  | HZKR  |  u16  |  random, one per write        | (OwnershipRecord)|
 *  +-------+-------+-------------------------------+------------------+
 * </pre>
 * The record is the kernel's own layout (magic HOWN, epoch, owner, clean flag, CRC-32C), so a
 * corrupt record is refused, never read as epoch 0. The write id tells a writer whether a
 * compare-and-set that Curator retried after a lost connection had in fact been applied by its
 * first try (the retry then fails on the version it moved itself).
 *
 * <h2>Reads</h2>
 * A read syncs first: ZooKeeper serves reads from the server the client talks to, which may lag
 * the leader, and the kernel's fencing re-reads the record precisely to learn of a newer epoch.
 *
 * <p>Threading: safe from any thread; the ensemble orders the writes.
 */
final class ZkRecordStore implements RecordStore {
    static final int MAGIC = 0x485A4B52; // "HZKR"
    static final int VERSION = 1;
    static final int HEADER_BYTES = 14;

    private final ZkSession session;
    private final String path;

    ZkRecordStore(ZkSession session) {
        this.session = session;
        this.path = session.address().recordPath();
    }

    /** A record as found, with the znode version to compare against; version -1: no znode. */
    private record Found(OwnershipRecord record, int version, long writeId) {
    }

    @Override
    public OwnershipRecord read() throws DeviceException {
        return readFound().record();
    }

    @Override
    public OwnershipRecord compareAndWrite(long expectedEpoch, OwnershipRecord next) throws DeviceException {
        long writeId = ThreadLocalRandom.current().nextLong() | 1; // never 0, which no write uses
        byte[] data = encode(writeId, next);
        while (true) {
            Found current = readFound();
            if (current.record().epoch() != expectedEpoch) {
                return current.record();
            }
            try {
                if (current.version() < 0) {
                    session.client().create().creatingParentsIfNeeded().forPath(path, data);
                } else {
                    session.client().setData().withVersion(current.version()).forPath(path, data);
                }
                return current.record();
            } catch (KeeperException.BadVersionException | KeeperException.NodeExistsException raced) {
                // Someone wrote since our read, or our own write landed and a retry found it: look.
                if (readFound().writeId() == writeId) {
                    return current.record();
                }
                // Another writer's: compare again with what it wrote.
            } catch (Exception e) {
                throw session.failure("write the ownership record " + path
                        + " (it may or may not have been written; it is re-read before any further write)", e);
            }
        }
    }

    private Found readFound() throws DeviceException {
        session.sync(path);
        Stat stat = new Stat();
        byte[] data;
        try {
            data = session.client().getData().storingStatIn(stat).forPath(path);
        } catch (KeeperException.NoNodeException absent) {
            return new Found(OwnershipRecord.ABSENT, -1, 0);
        } catch (Exception e) {
            throw session.failure("read the ownership record " + path, e);
        }
        return decode(data, stat.getVersion());
    }

    private Found decode(byte[] data, int version) throws DeviceException {
        String source = "ZooKeeper znode " + path;
        if (data == null || data.length < HEADER_BYTES) {
            throw corrupt(source, "too short (" + (data == null ? 0 : data.length) + " bytes)");
        }
        ByteBuffer b = ByteBuffer.wrap(data);
        int magic = b.getInt();
        if (magic != MAGIC) {
            throw corrupt(source, "bad magic 0x" + Integer.toHexString(magic) + " (not a Handoff ownership record)");
        }
        int v = Short.toUnsignedInt(b.getShort());
        if (v != VERSION) {
            throw corrupt(source, "unsupported version " + v);
        }
        long writeId = b.getLong();
        OwnershipRecord record = OwnershipRecord.decode(Arrays.copyOfRange(data, HEADER_BYTES, data.length), source);
        return new Found(record, version, writeId);
    }

    static byte[] encode(long writeId, OwnershipRecord record) {
        byte[] r = record.encode();
        return ByteBuffer.allocate(HEADER_BYTES + r.length).putInt(MAGIC).putShort((short) VERSION).putLong(writeId)
                .put(r).array();
    }

    private static DeviceException corrupt(String source, String why) {
        return new DeviceException(DeviceException.Kind.IO_ERROR, "ownership record " + source + " is corrupt: " + why);
    }

    @Override
    public String describe() {
        return "ZooKeeper znode " + path + " at " + session.address().connectString();
    }
}
