package dev.handoff.bench.compare;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The CPU time a process and its descendants have used, read from Linux's {@code /proc}, so that a
 * window's CPU is the difference of two samples taken at its ends.
 *
 * <p>A sample holds, for every thread of the tree, the first field of
 * {@code /proc/PID/task/TID/schedstat} (nanoseconds on the CPU), and for every process
 * {@code utime + stime} of {@code /proc/PID/stat} (clock ticks: {@code AT_CLKTCK} of
 * {@code /proc/self/auxv}, 100 a second here), which also counts the process's threads that have
 * exited. The difference of two samples is the nanosecond figure when no thread of the first
 * sample has gone by the second (a thread born in between counts from zero); when one has, its
 * last moments are in no thread's schedstat any more, and the difference is taken from the ticks
 * instead (resolution 10 ms a sample). A child process that exits in the window takes its CPU
 * with it either way; the trees measured here (a server, fio and its job process) keep theirs.
 * Descendants are found through {@code /proc/PID/task/TID/children}.
 *
 * <p>Stateless; a sample of a process that has gone is empty.
 */
final class ProcessCpu {
    private static final Path PROC = Path.of("/proc");
    private static final long AT_CLKTCK = 17;
    private static final long TICKS_PER_SECOND = clockTicks();

    private ProcessCpu() {
    }

    /** The CPU use of a process tree at {@link #nanoTime}: nanoseconds per thread, ticks per process. */
    record Tree(long nanoTime, Map<Long, Long> threadNanos, long ticks, long ticksPerSecond) {
        /** CPU-seconds the tree used from {@code earlier} to this sample. */
        double secondsSince(Tree earlier) {
            if (!threadNanos.keySet().containsAll(earlier.threadNanos.keySet())) {
                return (ticks - earlier.ticks) / (double) ticksPerSecond; // a thread exited in between
            }
            long ns = 0;
            for (Map.Entry<Long, Long> e : threadNanos.entrySet()) {
                ns += e.getValue() - earlier.threadNanos.getOrDefault(e.getKey(), 0L);
            }
            return ns / 1e9;
        }
    }

    /** Both trees of a fio run at one instant: the server's and fio's. */
    record Mark(Tree server, Tree fio) {
        static Mark take(long serverPid, long fioPid) {
            return new Mark(sample(serverPid), sample(fioPid));
        }

        /** The CPU from this mark to {@code later}. */
        Usage until(Mark later) {
            double wall = ((later.server.nanoTime() - server.nanoTime()) + (later.fio.nanoTime() - fio.nanoTime())) / 2e9;
            return new Usage(later.server.secondsSince(server), later.fio.secondsSince(fio), wall);
        }
    }

    /** CPU-seconds of the server and of fio over a window of {@code wallSeconds}. */
    record Usage(double serverSeconds, double fioSeconds, double wallSeconds) {
        /** A window that did not happen: every figure NaN. */
        static final Usage NONE = new Usage(Double.NaN, Double.NaN, Double.NaN);

        /** The server's CPUs busy: CPU-seconds per second. */
        double serverBusy() {
            return serverSeconds / wallSeconds;
        }

        double fioBusy() {
            return fioSeconds / wallSeconds;
        }

        /** Server and fio CPU per I/O, µs, at {@code iops} I/Os a second in the same window. */
        double microsPerIo(double iops) {
            return (serverBusy() + fioBusy()) / iops * 1e6;
        }
    }

    /** Samples {@code pid} and its descendants now. */
    static Tree sample(long pid) {
        long start = System.nanoTime();
        Map<Long, Long> threads = new HashMap<>();
        long ticks = 0;
        Deque<Long> todo = new ArrayDeque<>(List.of(pid));
        while (!todo.isEmpty()) {
            long p = todo.pop();
            Path dir = PROC.resolve(Long.toString(p));
            String stat = readOrNull(dir.resolve("stat"));
            if (stat == null) {
                continue; // gone
            }
            ticks += statTicks(stat);
            for (Path task : tasks(dir)) {
                String sched = readOrNull(task.resolve("schedstat"));
                if (sched != null) {
                    threads.put(Long.parseLong(task.getFileName().toString()), schedstatNanos(sched));
                }
                String children = readOrNull(task.resolve("children"));
                if (children != null) {
                    for (String c : children.trim().split("\\s+")) {
                        if (!c.isEmpty()) {
                            todo.push(Long.parseLong(c));
                        }
                    }
                }
            }
        }
        long end = System.nanoTime();
        return new Tree(start + (end - start) / 2, threads, ticks, TICKS_PER_SECOND);
    }

    /** {@code utime + stime} (fields 14 and 15) of a {@code /proc/PID/stat} line, in clock ticks. */
    static long statTicks(String stat) {
        // The name (field 2) is in parentheses and may hold spaces and ')': fields count from the last ')'.
        int close = stat.lastIndexOf(')');
        if (close < 0) {
            throw new IllegalArgumentException("not a /proc/PID/stat line: " + stat);
        }
        String[] f = stat.substring(close + 1).trim().split("\\s+");
        if (f.length < 13) {
            throw new IllegalArgumentException("too few fields in a /proc/PID/stat line: " + stat);
        }
        return Long.parseLong(f[11]) + Long.parseLong(f[12]); // f[0] is field 3 (state)
    }

    /** The first field of a {@code schedstat} line: nanoseconds the task has run on a CPU. */
    static long schedstatNanos(String schedstat) {
        String[] f = schedstat.trim().split("\\s+");
        if (f.length != 3) {
            throw new IllegalArgumentException("not a schedstat line (three fields): " + schedstat);
        }
        return Long.parseLong(f[0]);
    }

    /** {@code AT_CLKTCK} of an auxiliary vector ({@code /proc/self/auxv}, 64-bit little-endian pairs). */
    static long clockTicks(byte[] auxv) {
        ByteBuffer b = ByteBuffer.wrap(auxv).order(ByteOrder.LITTLE_ENDIAN);
        while (b.remaining() >= 16) {
            long type = b.getLong();
            long value = b.getLong();
            if (type == AT_CLKTCK) {
                return value;
            }
            if (type == 0) {
                break; // AT_NULL ends the vector
            }
        }
        throw new IllegalArgumentException("no AT_CLKTCK in the auxiliary vector");
    }

    private static long clockTicks() {
        try {
            return clockTicks(Files.readAllBytes(PROC.resolve("self/auxv")));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read /proc/self/auxv for the clock tick", e);
        }
    }

    private static List<Path> tasks(Path processDir) {
        List<Path> tasks = new ArrayList<>();
        try (DirectoryStream<Path> d = Files.newDirectoryStream(processDir.resolve("task"))) {
            d.forEach(tasks::add);
        } catch (NoSuchFileException gone) {
            // the process exited while being read
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return tasks;
    }

    private static String readOrNull(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException gone) {
            return null; // no such file, or ESRCH: the task exited between the listing and the read
        }
    }
}
