package dev.handoff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.device.BlockDevice;
import dev.handoff.nbd.NbdAddress;
import dev.handoff.nbd.NbdUri;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The block nodes of a running {@code serve} besides its image: mirror targets opened by QMP's
 * {@code blockdev-add} (drivers {@code file}, {@code host_device}, {@code nbd}, and {@code raw}
 * over one of them) or made for a {@code drive-mirror}, by node name. A node is busy while a job
 * uses it as its target, and for good once a pivot made it the export's image; only an idle node
 * may be deleted. The explicit driver is the format: nothing is probed (QEMU's {@code driver: file}
 * is the file's bytes). Thread-safe.
 */
final class BlockNodes implements AutoCloseable {

    /** An open node. */
    static final class Node {
        final String name;
        final MirrorTarget target;
        final BlockDevice device;
        final String driver;
        final boolean implicit; // made by drive-mirror: closed when its job is dismissed, unless pivoted to
        String usedBy;          // guarded by the BlockNodes monitor: a job id, "the export", or null

        Node(String name, MirrorTarget target, BlockDevice device, String driver, boolean implicit) {
            this.name = name;
            this.target = target;
            this.device = device;
            this.driver = driver;
            this.implicit = implicit;
        }
    }

    private final Map<String, Node> nodes = new LinkedHashMap<>(); // guarded by this
    private final String imageNode;
    private int anonymous;                                           // guarded by this

    BlockNodes(String imageNode) {
        this.imageNode = imageNode;
    }

    /** {@code blockdev-add}: opens the node the arguments describe. */
    Node add(ObjectNode args) throws QmpException {
        if (!args.has("node-name")) {
            throw QmpException.generic("'node-name' must be specified for the root node");
        }
        String name = Args.string(args, "node-name");
        checkName(name);
        Spec spec = spec(args, true);
        synchronized (this) {
            if (nodes.containsKey(name) || name.equals(imageNode)) {
                throw QmpException.generic("Duplicate nodes with node-name='" + name + "'");
            }
        }
        Node node = open(name, spec.target(), spec.driver(), false);
        synchronized (this) {
            if (nodes.putIfAbsent(name, node) != null) {
                node.target.close();
                throw QmpException.generic("Duplicate nodes with node-name='" + name + "'");
            }
        }
        return node;
    }

    /** A node for {@code drive-mirror}'s target, opened by {@code open}; named {@code name} or given a name. */
    synchronized Node addImplicit(String name, MirrorTarget target, BlockDevice device) throws QmpException {
        String n = name != null ? name : "#block" + (++anonymous);
        if (nodes.containsKey(n) || n.equals(imageNode)) {
            throw QmpException.generic("Duplicate nodes with node-name='" + n + "'");
        }
        Node node = new Node(n, target, device, "file", true);
        nodes.put(n, node);
        return node;
    }

    /** The node named {@code name}, as blockdev-mirror looks it up. */
    synchronized Node get(String name) throws QmpException {
        Node n = nodes.get(name);
        if (n == null) {
            throw QmpException.generic("Cannot find device='" + name + "' nor node-name='" + name + "'");
        }
        return n;
    }

    /** Marks {@code node} as used by {@code user}; refuses a busy node. */
    synchronized void use(Node node, String user) throws QmpException {
        if (node.usedBy != null) {
            throw busy(node);
        }
        node.usedBy = user;
    }

    /** A job is done with {@code node}: idle again, or closed if it was drive-mirror's own. */
    void release(Node node, boolean pivotedTo) {
        boolean close;
        synchronized (this) {
            if (pivotedTo) {
                node.usedBy = "the export (the image was pivoted to it)";
                return;
            }
            node.usedBy = null;
            close = node.implicit && nodes.remove(node.name, node);
        }
        if (close) {
            node.target.close();
        }
    }

    /** {@code blockdev-del}. */
    void delete(String name) throws QmpException {
        Node node;
        synchronized (this) {
            node = nodes.get(name);
            if (node == null) {
                throw QmpException.generic("Failed to find node with node-name='" + name + "'");
            }
            if (node.usedBy != null) {
                throw busy(node);
            }
            nodes.remove(name);
        }
        node.target.close();
    }

    /** {@code query-named-block-nodes}, in brief. */
    synchronized ArrayNode describe() {
        ArrayNode list = Json.array();
        for (Node n : nodes.values()) {
            ObjectNode o = list.addObject();
            o.put("node-name", n.name);
            o.put("drv", n.driver);
            o.put("file", n.target.display());
            o.put("ro", false);
            ObjectNode image = o.putObject("image");
            image.put("virtual-size", n.device.size());
            image.put("filename", n.target.display());
            image.put("format", "raw");
        }
        return list;
    }

    @Override
    public void close() {
        List<Node> all;
        synchronized (this) {
            all = new ArrayList<>(nodes.values());
            nodes.clear();
        }
        for (Node n : all) {
            n.target.close();
        }
    }

    private static QmpException busy(Node node) {
        return QmpException.generic("Node " + node.name + " is in use"); // QEMU's words; usedBy says by what
    }

    /** QEMU's rule for ids: a letter, then letters, digits, '-', '.' and '_'. */
    static boolean wellFormed(String id) {
        if (id.isEmpty() || !Character.isLetter(id.charAt(0)) || id.charAt(0) > 127) {
            return false;
        }
        for (int i = 1; i < id.length(); i++) {
            char c = id.charAt(i);
            if (c > 127 || !(Character.isLetterOrDigit(c) || c == '-' || c == '.' || c == '_')) {
                return false;
            }
        }
        return true;
    }

    private static void checkName(String name) throws QmpException {
        if (!wellFormed(name)) {
            throw QmpException.generic("Invalid node-name: '" + name + "'");
        }
    }

    private record Spec(MirrorTarget target, String driver) {
    }

    /** QEMU's other block drivers: named, they get "not supported"; anything else is not a driver at all. */
    private static final java.util.Set<String> QEMU_DRIVERS = java.util.Set.of("blkdebug", "blklogwrites",
            "blkreplay", "blkverify", "bochs", "cloop", "compress", "copy-before-write", "copy-on-read", "dmg",
            "ftp", "ftps", "gluster", "host_cdrom", "http", "https", "io_uring", "iscsi", "luks", "nfs", "null-aio",
            "null-co", "nvme", "parallels", "preallocate", "qcow", "qcow2", "qed", "quorum", "rbd", "replication",
            "snapshot-access", "ssh", "throttle", "vdi", "vhdx", "vmdk", "vpc", "vvfat");

    /** The target a node's description names; {@code top} allows the node-level keys. */
    private Spec spec(ObjectNode args, boolean top) throws QmpException {
        String driver = Args.string(args, "driver");
        String[] common = top ? new String[] {"driver", "node-name", "read-only", "auto-read-only", "discard",
            "cache", "detect-zeroes"} : new String[] {"driver", "read-only", "auto-read-only", "discard", "cache",
            "detect-zeroes", "node-name"};
        if (Args.optBool(args, "read-only", false)) {
            throw QmpException.generic("A read-only node cannot be a mirror target: Handoff adds nodes only as targets");
        }
        switch (driver) {
            case "file":
            case "host_device": {
                Args.allow(args, concat(common, "filename", "aio", "locking"));
                return new Spec(new FileTarget(Path.of(Args.string(args, "filename"))), driver);
            }
            case "nbd": {
                Args.allow(args, concat(common, "server", "export", "reconnect-delay"));
                ObjectNode server = Args.optObject(args, "server");
                if (server == null) {
                    throw QmpException.generic("Parameter 'server' is missing");
                }
                String type = Args.string(server, "type");
                NbdAddress address;
                if (type.equals("unix")) {
                    Args.allow(server, "type", "path");
                    address = NbdAddress.unix(Path.of(Args.string(server, "path")));
                } else if (type.equals("inet")) {
                    Args.allow(server, "type", "host", "port");
                    String port = Args.string(server, "port");
                    try {
                        address = NbdAddress.tcp(Args.string(server, "host"), Integer.parseInt(port));
                    } catch (IllegalArgumentException e) {
                        throw QmpException.generic("Parameter 'port' expects a port number, got '" + port + "'");
                    }
                } else {
                    throw QmpException.generic("Parameter 'type' does not accept value '" + type + "'");
                }
                String export = Args.optString(args, "export");
                return new Spec(new NbdTarget(new NbdUri(address, export != null ? export : ""), null), driver);
            }
            case "raw": {
                Args.allow(args, concat(common, "file", "offset", "size"));
                if (args.has("offset") || args.has("size")) {
                    throw QmpException.generic("The raw driver's 'offset' and 'size' are not supported: a mirror"
                            + " target is the whole of its file");
                }
                JsonNode file = args.get("file");
                if (file == null) {
                    throw QmpException.generic("Parameter 'file' is missing");
                }
                if (file.isTextual()) {
                    throw QmpException.generic("Node '" + file.asText() + "' cannot be shared by a raw node: describe"
                            + " the file inline ({\"driver\": \"file\", \"filename\": ...})");
                }
                if (!file.isObject()) {
                    throw QmpException.generic("Invalid parameter type for 'file', expected: object");
                }
                Spec child = spec((ObjectNode) file, false);
                return new Spec(child.target(), "raw");
            }
            default:
                if (!QEMU_DRIVERS.contains(driver)) {
                    throw QmpException.generic("Parameter 'driver' does not accept value '" + driver + "'");
                }
                throw QmpException.generic("Driver '" + driver + "' is not supported: a mirror target is added with"
                        + " driver file, host_device, nbd, or raw over one of them");
        }
    }

    private static Node open(String name, MirrorTarget target, String driver, boolean implicit) throws QmpException {
        try {
            return new Node(name, target, target.openExisting(), driver, implicit);
        } catch (CliException e) {
            throw QmpException.generic(e.getMessage());
        }
    }

    private static String[] concat(String[] a, String... b) {
        String[] all = new String[a.length + b.length];
        System.arraycopy(a, 0, all, 0, a.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }
}
