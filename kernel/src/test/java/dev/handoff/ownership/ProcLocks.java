package dev.handoff.ownership;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The byte-range locks Linux reports in /proc/locks for one file, to check which bytes are held how. */
final class ProcLocks {
    private static final Path PROC_LOCKS = Path.of("/proc/locks");

    /** One lock: {@code "POSIX WRITE 201"}, {@code "OFDLCK READ 100-101"}; pid -1 for OFD locks. */
    record Held(String type, String mode, long pid, long start, String end) {
    }

    private ProcLocks() {
    }

    static boolean available() {
        return Files.isReadable(PROC_LOCKS);
    }

    static List<Held> on(Path file) throws IOException {
        long inode = (Long) Files.getAttribute(file, "unix:ino");
        List<Held> held = new ArrayList<>();
        for (String line : Files.readAllLines(PROC_LOCKS)) {
            // "3: POSIX  ADVISORY  READ 5157 fe:00:2146611 101 101" (blocked waiters have "->")
            String[] f = line.trim().split("\\s+");
            if (f.length < 8 || f[1].equals("->")) {
                continue;
            }
            String[] dev = f[5].split(":");
            if (Long.parseLong(dev[dev.length - 1]) != inode) {
                continue;
            }
            held.add(new Held(f[1], f[3], Long.parseLong(f[4]), Long.parseLong(f[6]), f[7]));
        }
        return held;
    }

    /** Locks on {@code file} held by this process, as {@code "MODE start-end"}. */
    static List<String> ofThisProcess(Path file) throws IOException {
        long pid = ProcessHandle.current().pid();
        List<String> out = new ArrayList<>();
        for (Held h : on(file)) {
            if (h.pid() == pid) {
                out.add(h.mode() + " " + h.start() + "-" + h.end());
            }
        }
        return out;
    }
}
