package dev.handoff.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Who holds byte-range locks on a file, from Linux's {@code /proc/locks}: lets {@code owner status}
 * show QEMU's and Handoff's locks (bytes 100+n held, 200+n not shared) without taking any lock,
 * as QEMU's own probe ({@code F_OFD_GETLK}) does; Java has no way to ask without taking.
 */
final class LockTable {
    private static final Path PROC_LOCKS = Path.of("/proc/locks");

    /** One lock: type POSIX, OFDLCK or FLOCK; mode READ (shared) or WRITE (exclusive); pid -1 if unknown. */
    record Lock(String type, String mode, long pid, long start, String end) {
        /** Whether the lock covers byte {@code b} (the kernel merges adjacent locks of one owner). */
        boolean covers(long b) {
            return start <= b && (end.equals("EOF") || Long.parseLong(end) >= b);
        }

        String describe() {
            String range = end.equals(String.valueOf(start)) ? "byte " + start : "bytes " + start + "-" + end;
            return range + " " + (mode.equals("READ") ? "shared" : "exclusive")
                    + (pid > 0 ? " by pid " + pid : "") + (type.equals("OFDLCK") ? " (OFD lock, as QEMU takes)" : "");
        }
    }

    private LockTable() {
    }

    static boolean available() {
        return Files.isReadable(PROC_LOCKS);
    }

    /** The locks on {@code file}. */
    static List<Lock> on(Path file) throws IOException {
        long inode = ((Number) Files.getAttribute(file, "unix:ino")).longValue();
        long dev = ((Number) Files.getAttribute(file, "unix:dev")).longValue();
        long major = ((dev >>> 8) & 0xfff) | ((dev >>> 32) & ~0xfffL);
        long minor = (dev & 0xff) | ((dev >>> 12) & ~0xffL);
        List<Lock> held = new ArrayList<>();
        for (String line : Files.readAllLines(PROC_LOCKS)) {
            // "3: POSIX  ADVISORY  READ 5157 fe:00:2146611 101 101"; blocked waiters have "->" after the id
            String[] f = line.trim().split("\\s+");
            if (f.length < 8 || f[1].equals("->")) {
                continue;
            }
            String[] id = f[5].split(":");
            if (id.length != 3) {
                continue;
            }
            try {
                if (Long.parseLong(id[2]) != inode || Long.parseLong(id[0], 16) != major
                        || Long.parseLong(id[1], 16) != minor) {
                    continue;
                }
                held.add(new Lock(f[1], f[3], Long.parseLong(f[4]), Long.parseLong(f[6]), f[7]));
            } catch (NumberFormatException e) {
                // a format we do not know: skip the line
            }
        }
        return held;
    }
}
