package dev.handoff.cli;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A loop device over a file, attached by the test and detached on close: a real block device for
 * the block-device tests. Where losetup is missing or not permitted (not root) the test is skipped
 * with the reason; on CI (which runs as root) it fails instead.
 */
final class LoopDevice implements AutoCloseable {
    final Path device;
    final Path backing;

    private LoopDevice(Path device, Path backing) {
        this.device = device;
        this.backing = backing;
    }

    static LoopDevice attach(Path backing) throws Exception {
        boolean present = Files.isExecutable(Path.of("/usr/sbin/losetup")) || Files.isExecutable(Path.of("/sbin/losetup"));
        if (!present && System.getenv("CI") != null) {
            throw new AssertionError("losetup is missing on CI");
        }
        assumeTrue(present, "losetup is not installed: the block-device tests need loop devices (util-linux)");
        Object[] r = QemuTools.run("losetup", "-f", "--show", backing.toString());
        if ((Integer) r[0] != 0) {
            if (System.getenv("CI") != null) {
                throw new AssertionError("losetup failed on CI, which runs as root: " + r[1]);
            }
            assumeTrue(false, "cannot attach a loop device (root is needed): " + r[1]);
        }
        return new LoopDevice(Path.of(((String) r[1]).strip()), backing);
    }

    /** Bytes allocated to {@code file} (st_blocks × 512, from stat(1)), as du counts them. */
    static long allocated(Path file) throws Exception {
        Object[] r = QemuTools.run("stat", "-c", "%b", file.toString());
        if ((Integer) r[0] != 0) {
            throw new AssertionError("stat failed: " + r[1]);
        }
        return Long.parseLong(((String) r[1]).strip()) * 512;
    }

    @Override
    public void close() throws Exception {
        Object[] r = QemuTools.run("losetup", "-d", device.toString());
        if ((Integer) r[0] != 0) {
            throw new AssertionError("losetup -d " + device + ": " + r[1]);
        }
    }

    @Override
    public String toString() {
        return device + " (over " + backing + ")";
    }
}
