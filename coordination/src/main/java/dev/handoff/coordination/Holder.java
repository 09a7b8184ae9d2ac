package dev.handoff.coordination;

import java.nio.charset.StandardCharsets;

/**
 * Who holds an image's ZooKeeper lock, as its lock znode says: the owner id it activates with, the
 * host and process it runs in, and the ZooKeeper session the znode lives and dies with.
 *
 * @param ownerId   the holder's owner id (as in the ownership record)
 * @param host      the holder's host name
 * @param pid       the holder's process id on that host
 * @param sessionId the ZooKeeper session that owns the ephemeral lock znode
 */
public record Holder(String ownerId, String host, long pid, long sessionId) {

    static String encode(String ownerId, String host, long pid) {
        return "owner=" + ownerId.replace('\n', ' ') + "\nhost=" + host + "\npid=" + pid + "\n";
    }

    /** Parses a lock znode's data; fields it cannot read are left empty or -1. */
    static Holder decode(byte[] data, long sessionId) {
        String owner = "";
        String host = "";
        long pid = -1;
        for (String line : new String(data == null ? new byte[0] : data, StandardCharsets.UTF_8).split("\n")) {
            if (line.startsWith("owner=")) {
                owner = line.substring(6);
            } else if (line.startsWith("host=")) {
                host = line.substring(5);
            } else if (line.startsWith("pid=")) {
                try {
                    pid = Long.parseLong(line.substring(4));
                } catch (NumberFormatException ignored) {
                    // left -1
                }
            }
        }
        return new Holder(owner, host, pid, sessionId);
    }

    /** "owner 'b' on host h2 (pid 4242, ZooKeeper session 0x1000a3b2c0001)". */
    public String describe() {
        return "owner '" + ownerId + "' on host " + host + " (pid " + pid + ", ZooKeeper session 0x"
                + Long.toHexString(sessionId) + ")";
    }
}
