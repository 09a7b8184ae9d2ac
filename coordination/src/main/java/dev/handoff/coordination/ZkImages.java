package dev.handoff.coordination;

import dev.handoff.device.DeviceException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

/** The PATH znode (the image's identity) and the lock znode's holder, read and claimed. */
final class ZkImages {
    private ZkImages() {
    }

    /**
     * What the PATH znode says about the image it belongs to: {@code null} if the PATH does not
     * exist yet (no holder ever activated).
     *
     * @throws CoordinationException ({@link CoordinationException.Reason#WRONG_IMAGE}) if the PATH
     *     exists but is not a Handoff image's
     */
    static ImageIdentity readIdentity(ZkSession session) throws DeviceException {
        String path = session.address().path();
        byte[] data;
        try {
            data = session.client().getData().forPath(path);
        } catch (KeeperException.NoNodeException absent) {
            return null;
        } catch (Exception e) {
            throw session.failure("read " + path, e);
        }
        ImageIdentity found = ImageIdentity.decode(data);
        if (found == null) {
            throw new CoordinationException(CoordinationException.Reason.WRONG_IMAGE, "ZooKeeper " + session.address()
                    + " is not a Handoff image's ownership PATH (its znode holds " + (data == null ? 0 : data.length)
                    + " bytes of something else); choose a PATH of its own for each image");
        }
        return found;
    }

    /** Refuses {@code identity} if the PATH belongs to another image. Writes nothing. */
    static void checkIdentity(ZkSession session, ImageIdentity identity) throws DeviceException {
        ImageIdentity found = readIdentity(session);
        if (found != null && !found.equals(identity)) {
            throw wrongImage(session, identity, found);
        }
    }

    /** Makes sure the PATH exists and names {@code identity}: creates it, or checks it. */
    static void claimPath(ZkSession session, ImageIdentity identity) throws DeviceException {
        String path = session.address().path();
        try {
            session.client().create().creatingParentsIfNeeded().forPath(path, identity.encode());
            return;
        } catch (KeeperException.NodeExistsException exists) {
            // someone claimed it first (or our own retried create did): check what it says
        } catch (Exception e) {
            throw session.failure("create " + path, e);
        }
        checkIdentity(session, identity);
    }

    static CoordinationException wrongImage(ZkSession session, ImageIdentity mine, ImageIdentity found) {
        return new CoordinationException(CoordinationException.Reason.WRONG_IMAGE, "ZooKeeper " + session.address()
                + " belongs to another image: " + found + ", not " + mine + "; each image needs a PATH of its own");
    }

    /** The holder named by the lock znode, or {@code null} if nobody holds the lock. */
    static Holder readHolder(ZkSession session) throws DeviceException {
        String lock = session.address().lockPath();
        Stat stat = new Stat();
        byte[] data;
        try {
            data = session.client().getData().storingStatIn(stat).forPath(lock);
        } catch (KeeperException.NoNodeException absent) {
            return null;
        } catch (Exception e) {
            throw session.failure("read the lock znode " + lock, e);
        }
        return Holder.decode(data, stat.getEphemeralOwner());
    }

    /** This host's name, without asking DNS. */
    static String hostName() {
        String env = System.getenv("HOSTNAME");
        if (env != null && !env.isBlank()) {
            return env.strip();
        }
        try {
            String etc = Files.readString(Path.of("/etc/hostname"), StandardCharsets.UTF_8).strip();
            if (!etc.isEmpty()) {
                return etc;
            }
        } catch (IOException | RuntimeException ignored) {
            // fall through
        }
        return "unknown-host";
    }
}
