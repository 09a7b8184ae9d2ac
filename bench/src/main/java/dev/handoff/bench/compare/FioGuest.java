package dev.handoff.bench.compare;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * One fio process driving an NBD export with a section of {@code bench/fio/guest.fio} (fio's
 * {@code nbd} engine, libnbd), from {@link #start} until {@link #stop}, and what it measured: every
 * I/O's completion time and total latency from fio's per-I/O latency log, on CLOCK_MONOTONIC (the
 * clock of {@link System#nanoTime()}), so that windows can be cut at any instant this process saw
 * (a QMP event's arrival); and fio's JSON report of the whole run, against which the log is
 * checked.
 *
 * <p>Not thread-safe: one thread starts, stops and reads it.
 */
final class FioGuest implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** IOPS and total-latency percentiles (µs) of the I/Os that completed in a window. */
    record Window(long ios, double seconds, double iops, double p50Micros, double p99Micros, double p999Micros) {
        /** A window that did not happen (no READY within the limit): every figure NaN. */
        static final Window NONE = new Window(0, 0, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
    }

    private final Child fio;
    private final Path latLog;
    private final Path json;
    private long[] doneMillis;  // completion time of each I/O, ms on CLOCK_MONOTONIC, sorted
    private long[] latencyNanos; // its total latency (submission to completion), same index
    private long reportedIos;

    private FioGuest(Child fio, Path latLog, Path json) {
        this.fio = fio;
        this.latLog = latLog;
        this.json = json;
    }

    /**
     * Starts fio on {@code jobFile}'s {@code section} against {@code uri}; its files go to
     * {@code dir} under {@code name}. Returns once fio is running (it connects within its first
     * milliseconds; the caller's warm-up covers it).
     */
    static FioGuest start(Path jobFile, String section, String uri, Path dir, String name) throws IOException {
        Path prefix = dir.resolve(name);
        Path json = dir.resolve(name + ".json");
        Files.deleteIfExists(json);
        for (String suffix : List.of("_lat.1.log", "_clat.1.log", "_slat.1.log")) {
            Files.deleteIfExists(dir.resolve(name + suffix));
        }
        List<String> cmd = List.of("fio", "--section=" + section, "--output-format=json", "--output=" + json,
                jobFile.toString());
        Child c = Child.start("fio " + section, cmd, dir.resolve(name + ".out"),
                Map.of("NBD_URI", uri, "LAT_LOG", prefix.toString()));
        return new FioGuest(c, dir.resolve(name + "_lat.1.log"), json);
    }

    /**
     * Stops fio (SIGINT: it ends its jobs, writes its logs and its JSON report) and reads what it
     * measured. Fails if fio reported an error or its log disagrees with its report.
     */
    void stop() throws IOException, InterruptedException {
        if (fio.isAlive()) {
            Child.run("kill", List.of("kill", "-INT", Long.toString(fio.pid())), latLog.resolveSibling("kill.log"),
                    Duration.ofSeconds(10));
        }
        int exit = fio.waitFor(Duration.ofMinutes(2));
        readLog();
        readReport(exit);
    }

    private void readLog() throws IOException {
        if (!Files.exists(latLog)) {
            throw new IOException("fio wrote no latency log (" + latLog + "):\n" + fio.output());
        }
        long[] t = new long[1 << 16];
        long[] lat = new long[1 << 16];
        int n = 0;
        try (BufferedReader in = Files.newBufferedReader(latLog)) {
            String line;
            while ((line = in.readLine()) != null) {
                // "time_ms, latency_ns, direction, block size, priority"
                int a = line.indexOf(',');
                int b = line.indexOf(',', a + 1);
                if (a < 0 || b < 0) {
                    continue;
                }
                if (n == t.length) {
                    t = Arrays.copyOf(t, 2 * n);
                    lat = Arrays.copyOf(lat, 2 * n);
                }
                t[n] = Long.parseLong(line.substring(0, a).trim());
                lat[n] = Long.parseLong(line.substring(a + 1, b).trim());
                n++;
            }
        }
        // fio writes the log in completion order per job; sort by time to be safe.
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        long[] tt = t;
        Arrays.sort(order, (x, y) -> Long.compare(tt[x], tt[y]));
        doneMillis = new long[n];
        latencyNanos = new long[n];
        for (int i = 0; i < n; i++) {
            doneMillis[i] = t[order[i]];
            latencyNanos[i] = lat[order[i]];
        }
    }

    private void readReport(int exit) throws IOException {
        String text = Files.exists(json) ? Files.readString(json) : "";
        int brace = text.indexOf('{'); // fio may print "fio: terminating on signal 2" first
        if (brace < 0) {
            throw new IOException("fio wrote no JSON report (exit " + exit + "):\n" + fio.output());
        }
        JsonNode report = JSON.readTree(text.substring(brace));
        JsonNode job = report.path("jobs").path(0);
        if (job.path("error").asInt() != 0) {
            throw new IOException("fio reported error " + job.path("error").asInt() + ":\n" + fio.output());
        }
        reportedIos = job.path("read").path("total_ios").asLong() + job.path("write").path("total_ios").asLong();
        long logged = doneMillis.length;
        // The report and the log count the same I/Os; a few in flight at the stop may be in one only.
        if (Math.abs(reportedIos - logged) > 64 + reportedIos / 1000) {
            throw new IOException("fio's JSON report counts " + reportedIos + " I/Os, its latency log " + logged);
        }
    }

    /** I/Os that completed in [from, to) ({@link System#nanoTime()} instants). */
    Window window(long fromNanos, long toNanos) {
        long from = Math.floorDiv(fromNanos, 1_000_000L);
        long to = Math.floorDiv(toNanos, 1_000_000L);
        int lo = lowerBound(doneMillis, from);
        int hi = lowerBound(doneMillis, to);
        long[] l = Arrays.copyOfRange(latencyNanos, lo, hi);
        Arrays.sort(l);
        double seconds = (to - from) / 1e3;
        return new Window(l.length, seconds, l.length / seconds, pct(l, 0.50), pct(l, 0.99), pct(l, 0.999));
    }

    /** fio's process id (its job runs in a child process). */
    long pid() {
        return fio.pid();
    }

    /** I/Os fio's JSON report counted for the whole run. */
    long reportedIos() {
        return reportedIos;
    }

    private static double pct(long[] sorted, double q) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        int i = (int) Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1);
        return sorted[Math.max(0, i)] / 1e3;
    }

    private static int lowerBound(long[] a, long key) {
        int lo = 0;
        int hi = a.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (a[mid] < key) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /** Kills fio if it still runs (a failed measurement). */
    @Override
    public void close() {
        fio.close();
    }
}
