package dev.handoff.bench.compare;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * A loop device over an image file ({@code losetup --find --show --direct-io=off FILE}), detached
 * by {@link #close}: a block device as a mirror's target, whose writes ({@code blkdev_write_iter})
 * do not take the file's inode lock that serialises buffered writes to one regular file. Buffered
 * ({@code --direct-io=off}), like the file target it stands in for. Every device attached here is
 * registered until detached, and {@link #detachAll} (run by the comparison's cleanup, also on
 * Ctrl-C) detaches whatever is left.
 */
final class LoopDevice implements AutoCloseable {
    private static final Set<LoopDevice> ATTACHED = ConcurrentHashMap.newKeySet();
    private static final long TIMEOUT_SECONDS = 30;

    private final Path device;
    private final Path backing;

    private LoopDevice(Path device, Path backing) {
        this.device = device;
        this.backing = backing;
    }

    /**
     * Why this process cannot attach loop devices (not root, or no {@code losetup} on the PATH),
     * or null if it can.
     */
    static String unavailableReason() {
        if (findLosetup() == null) {
            return "losetup (util-linux) is not on the PATH";
        }
        try {
            Object uid = Files.getAttribute(Path.of("/proc/self"), "unix:uid");
            if (!Integer.valueOf(0).equals(uid)) {
                return "attaching a loop device needs root (this process runs as uid " + uid + ")";
            }
        } catch (IOException | UnsupportedOperationException e) {
            return "cannot tell whether this process runs as root: " + e.getMessage();
        }
        return null;
    }

    private static Path findLosetup() {
        String path = System.getenv().getOrDefault("PATH", "") + File.pathSeparator + "/usr/sbin" + File.pathSeparator
                + "/sbin";
        for (String dir : path.split(File.pathSeparator)) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, "losetup"))) {
                return Path.of(dir, "losetup");
            }
        }
        return null;
    }

    /** Attaches {@code backing} to the first free loop device. */
    static LoopDevice attach(Path backing) throws IOException, InterruptedException {
        Path losetup = findLosetup();
        if (losetup == null) {
            throw new IOException("losetup (util-linux) is not on the PATH");
        }
        String out = losetup(List.of(losetup.toString(), "--find", "--show", "--direct-io=off", backing.toString()),
                "attach " + backing);
        String name = out.strip();
        if (!name.startsWith("/dev/loop") || name.contains("\n")) {
            throw new IOException("losetup --find --show printed no device name but: " + out);
        }
        LoopDevice d = new LoopDevice(Path.of(name), backing);
        ATTACHED.add(d);
        return d;
    }

    /** The device, {@code /dev/loopN}. */
    Path device() {
        return device;
    }

    /** Detaches the device ({@code losetup -d}); the backing file stays as the device left it. */
    @Override
    public void close() throws IOException, InterruptedException {
        if (!ATTACHED.remove(this)) {
            return; // detached already (by detachAll)
        }
        Path losetup = findLosetup();
        losetup(List.of(losetup != null ? losetup.toString() : "losetup", "-d", device.toString()),
                "detach " + device);
    }

    /** Detaches every device still attached; failures are printed, not thrown (cleanup). */
    static void detachAll() {
        for (LoopDevice d : List.copyOf(ATTACHED)) {
            try {
                d.close();
            } catch (IOException | InterruptedException e) {
                System.err.println("compare: could not detach " + d + ": " + e.getMessage());
            }
        }
    }

    /**
     * Runs losetup and returns its output (stdout and stderr). Not a registered {@link Child}, and
     * no log file: the cleanup runs it while the children are killed and the work directory deleted.
     */
    private static String losetup(List<String> command, String what) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("losetup (" + what + ") did not exit within " + TIMEOUT_SECONDS + " s");
        }
        if (p.exitValue() != 0) {
            throw new IOException("losetup (" + what + ") exited with " + p.exitValue() + ": " + out.strip());
        }
        return out;
    }

    @Override
    public String toString() {
        return device + " (over " + backing + ")";
    }
}
