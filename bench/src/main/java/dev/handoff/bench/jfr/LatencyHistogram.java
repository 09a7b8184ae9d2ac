package dev.handoff.bench.jfr;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;

/**
 * Draws a PNG from a JFR recording of {@code handoff serve --jfr}: the latency histogram of the NBD
 * WRITE requests the server served, one curve per window of the mirror job (alone: the
 * {@value #ALONE_SECONDS} s before it started, as bench/compare.sh's fio part measures it after its
 * warm-up; copy: until READY; ready: after READY until the next state change), cut at the job's
 * {@code dev.handoff.JobState} events; and below it, where each window's time went: the mean receive, queue, device and reply
 * time of a WRITE ({@code dev.handoff.NbdRequest}), and, for write-blocking writes, the mean wait
 * for the claim, source write and target write ({@code dev.handoff.WriteBlockingWrite}).
 *
 * <pre>
 * java -cp bench/target/benchmarks.jar dev.handoff.bench.jfr.LatencyHistogram serve.jfr out.png [TITLE]
 * </pre>
 * It also prints the figures it drew, one line per window.
 */
public final class LatencyHistogram {
    private static final String[] WINDOWS = {"alone", "copy", "ready"};
    private static final Color[] COLORS = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c)};
    private static final Color[] PART_COLORS = {new Color(0x9467bd), new Color(0xff7f0e), new Color(0x8c564b),
        new Color(0x17becf)};
    /** Bins per decade of latency, from 1 µs to 1 s. */
    private static final int PER_DECADE = 10;
    private static final int DECADES = 6;
    /** The alone window: this long before the job started. */
    private static final int ALONE_SECONDS = 3;

    /** One window's WRITE requests and write-blocking writes. */
    private static final class Window {
        final List<Long> nanos = new ArrayList<>();
        final List<Long> headerWaits = new ArrayList<>(); // the reader's wait for each WRITE's header, ns
        long onReader; // WRITEs the connection's reader served itself (inline requests)
        final double[] parts = new double[4]; // receive, queue, device, reply: sums in ns
        final double[] wb = new double[3];    // claim wait, source, target: sums in ns
        long wbCount;

        double mean(double sum, long n) {
            return n == 0 ? Double.NaN : sum / n / 1e3;
        }
    }

    private LatencyHistogram() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 2) {
            System.err.println("usage: LatencyHistogram RECORDING.jfr OUT.png [TITLE]");
            System.exit(2);
        }
        Path jfr = Path.of(args[0]);
        Path png = Path.of(args[1]);
        String title = args.length > 2 ? args[2] : "NBD WRITE latency inside handoff serve: " + jfr.getFileName();
        List<RecordedEvent> events = RecordingFile.readAllEvents(jfr);
        // The measured job is the last one started: handoff serve's own warm-up mirror, at start-up,
        // records its state changes too.
        List<RecordedEvent> states = new ArrayList<>();
        for (RecordedEvent e : events) {
            if (e.getEventType().getName().equals("dev.handoff.JobState")) {
                states.add(e);
            }
        }
        states.sort(Comparator.comparing(RecordedEvent::getStartTime));
        long job = 0;
        boolean started = false;
        for (RecordedEvent e : states) {
            if (e.getString("to").equals("RUNNING") && e.getString("from").equals("CREATED")) {
                job = e.getLong("job");
                started = true;
            }
        }
        Instant running = null;
        Instant ready = null;
        Instant end = null;
        for (RecordedEvent e : states) {
            if (!started || e.getLong("job") != job) {
                continue;
            }
            String to = e.getString("to");
            Instant at = e.getStartTime();
            if (to.equals("RUNNING") && running == null) {
                running = at;
            } else if (to.equals("READY") && ready == null) {
                ready = at;
            } else if (!to.equals("READY") && !to.equals("RUNNING") && ready != null && end == null) {
                end = at; // the first state after READY (COMPLETING, CANCELLING, PAUSED): the ready window ends
            }
        }
        if (running == null) {
            throw new IOException(jfr + " has no dev.handoff.JobState event: was a job running under --jfr?");
        }
        Window[] w = {new Window(), new Window(), new Window()};
        for (RecordedEvent e : events) {
            String type = e.getEventType().getName();
            int i = windowOf(e.getStartTime(), running, ready, end);
            if (i < 0) {
                continue;
            }
            if (type.equals("dev.handoff.NbdRequest") && e.getString("command").equals("WRITE") && e.getInt("error") == 0) {
                w[i].nanos.add(e.getDuration().toNanos());
                w[i].parts[0] += e.getDuration("receiveTime").toNanos();
                w[i].parts[1] += e.getDuration("queueTime").toNanos();
                w[i].parts[2] += e.getDuration("deviceTime").toNanos();
                w[i].parts[3] += e.getDuration("replyTime").toNanos();
                w[i].headerWaits.add(e.getDuration("headerWait").toNanos());
                w[i].onReader += e.getBoolean("onReader") ? 1 : 0;
            } else if (type.equals("dev.handoff.WriteBlockingWrite")) {
                w[i].wb[0] += e.getDuration("claimWait").toNanos();
                w[i].wb[1] += e.getDuration("sourceTime").toNanos();
                w[i].wb[2] += e.getDuration("targetTime").toNanos();
                w[i].wbCount++;
            }
        }
        for (int i = 0; i < 3; i++) {
            long[] sorted = w[i].nanos.stream().mapToLong(Long::longValue).sorted().toArray();
            long n = sorted.length;
            long[] waits = w[i].headerWaits.stream().mapToLong(Long::longValue).sorted().toArray();
            System.out.printf(Locale.ROOT, "%-6s %7d WRITEs  p50 %8.1f µs  p99 %8.1f µs  p99.9 %8.1f µs | mean receive %.1f,"
                            + " queue %.1f, device %.1f, reply %.1f µs | %d write-blocking: claim wait %.1f, source %.1f,"
                            + " target %.1f µs | on the reader %.0f %%, header wait p10 %.1f p50 %.1f µs%n",
                    WINDOWS[i], n, pct(sorted, 0.5), pct(sorted, 0.99), pct(sorted, 0.999), w[i].mean(w[i].parts[0], n),
                    w[i].mean(w[i].parts[1], n), w[i].mean(w[i].parts[2], n), w[i].mean(w[i].parts[3], n), w[i].wbCount,
                    w[i].mean(w[i].wb[0], w[i].wbCount), w[i].mean(w[i].wb[1], w[i].wbCount),
                    w[i].mean(w[i].wb[2], w[i].wbCount), n == 0 ? Double.NaN : 100.0 * w[i].onReader / n,
                    pct(waits, 0.1), pct(waits, 0.5));
        }
        ImageIO.write(draw(title, w), "png", Files.newOutputStream(png));
    }

    private static int windowOf(Instant t, Instant running, Instant ready, Instant end) {
        if (t.isBefore(running)) {
            return t.isBefore(running.minusSeconds(ALONE_SECONDS)) ? -1 : 0;
        }
        if (ready == null || t.isBefore(ready)) {
            return 1;
        }
        return end == null || t.isBefore(end) ? 2 : -1;
    }

    private static double pct(long[] sorted, double q) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        int i = (int) Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
        return sorted[i] / 1e3;
    }

    /* ---- Drawing ---- */

    private static final int WIDTH = 1100;
    private static final int HEIGHT = 820;
    private static final int LEFT = 90;
    private static final int RIGHT = 30;

    private static BufferedImage draw(String title, Window[] w) {
        BufferedImage img = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, WIDTH, HEIGHT);
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
        g.drawString(title, LEFT, 28);
        histogram(g, w, 60, 470);
        parts(g, w, 560, 790);
        g.dispose();
        return img;
    }

    /** Fraction of each window's WRITEs per latency bin, log-scaled latency on x. */
    private static void histogram(Graphics2D g, Window[] w, int top, int bottom) {
        int bins = PER_DECADE * DECADES;
        double[][] frac = new double[3][bins];
        double max = 0;
        for (int i = 0; i < 3; i++) {
            int n = w[i].nanos.size();
            for (long ns : w[i].nanos) {
                double us = Math.max(1, ns / 1e3);
                int b = (int) Math.min(bins - 1, Math.floor(Math.log10(us) * PER_DECADE));
                frac[i][b] += 1.0 / n;
            }
            max = Math.max(max, Arrays.stream(frac[i]).max().orElse(0));
        }
        max = Math.ceil(max * 20) / 20; // a multiple of 5 %
        int plotW = WIDTH - LEFT - RIGHT;
        int plotH = bottom - top;
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
        g.setColor(new Color(0xdddddd));
        for (int d = 0; d <= DECADES; d++) {
            int x = LEFT + d * plotW / DECADES;
            g.drawLine(x, top, x, bottom);
        }
        for (int k = 0; k <= 4; k++) {
            int y = bottom - k * plotH / 4;
            g.drawLine(LEFT, y, LEFT + plotW, y);
        }
        g.setColor(Color.BLACK);
        g.drawRect(LEFT, top, plotW, plotH);
        String[] labels = {"1 µs", "10 µs", "100 µs", "1 ms", "10 ms", "100 ms", "1 s"};
        for (int d = 0; d <= DECADES; d++) {
            int x = LEFT + d * plotW / DECADES;
            g.drawString(labels[d], x - 18, bottom + 18);
        }
        for (int k = 0; k <= 4; k++) {
            int y = bottom - k * plotH / 4;
            g.drawString(String.format(Locale.ROOT, "%.0f %%", 100 * max * k / 4), LEFT - 50, y + 5);
        }
        g.drawString("latency of a WRITE inside the server (header read to reply sent), log scale", LEFT + 200, bottom + 38);
        g.rotate(-Math.PI / 2);
        g.drawString("share of the window's WRITEs", -(top + plotH / 2 + 90), LEFT - 60);
        g.rotate(Math.PI / 2);
        g.setStroke(new BasicStroke(2.2f));
        for (int i = 0; i < 3; i++) {
            if (w[i].nanos.isEmpty()) {
                continue;
            }
            g.setColor(COLORS[i]);
            int px = -1;
            int py = -1;
            for (int b = 0; b < bins; b++) {
                int x = LEFT + (int) ((b + 0.5) * plotW / bins);
                int y = bottom - (int) (frac[i][b] / max * plotH);
                if (px >= 0) {
                    g.drawLine(px, py, x, y);
                }
                px = x;
                py = y;
            }
            long[] sorted = w[i].nanos.stream().mapToLong(Long::longValue).sorted().toArray();
            String legend = String.format(Locale.ROOT, "%s: %d WRITEs, p50 %s, p99 %s, p99.9 %s", WINDOWS[i], sorted.length,
                    us(pct(sorted, 0.5)), us(pct(sorted, 0.99)), us(pct(sorted, 0.999)));
            g.fillRect(LEFT + plotW - 430, top + 14 + 20 * i, 18, 4);
            g.setColor(Color.BLACK);
            g.drawString(legend, LEFT + plotW - 405, top + 20 + 20 * i);
        }
        g.setStroke(new BasicStroke(1f));
    }

    /** Stacked bars of the mean time per WRITE in each part, per window. */
    private static void parts(Graphics2D g, Window[] w, int top, int bottom) {
        String[] names = {"receive payload", "wait for a worker", "device", "send reply"};
        String[] wbNames = {"wait for claim", "source write", "target write"};
        double max = 0;
        for (Window x : w) {
            long n = x.nanos.size();
            double s = 0;
            for (double p : x.parts) {
                s += n == 0 ? 0 : p / n / 1e3;
            }
            max = Math.max(max, s);
        }
        if (max <= 0) {
            return;
        }
        int plotW = WIDTH - LEFT - RIGHT - 250;
        int rowH = (bottom - top) / 6;
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
        g.setColor(Color.BLACK);
        g.drawString("mean time per WRITE by part (µs); per write-blocking write below it", LEFT, top - 10);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        for (int i = 0; i < 3; i++) {
            long n = w[i].nanos.size();
            int y = top + 2 * i * rowH;
            g.setColor(Color.BLACK);
            g.drawString(WINDOWS[i], LEFT - 60, y + rowH - 6);
            int x = LEFT;
            for (int p = 0; p < 4; p++) {
                double us = n == 0 ? 0 : w[i].parts[p] / n / 1e3;
                int len = (int) (us / max * plotW);
                g.setColor(PART_COLORS[p]);
                g.fillRect(x, y + 2, Math.max(len, 0), rowH - 4);
                x += len;
            }
            g.setColor(Color.BLACK);
            g.drawString(String.format(Locale.ROOT, "%.1f µs", w[i].mean(Arrays.stream(w[i].parts).sum(), n)), x + 6,
                    y + rowH - 6);
            if (w[i].wbCount > 0) {
                int yy = y + rowH;
                int xx = LEFT;
                for (int p = 0; p < 3; p++) {
                    double us = w[i].wb[p] / w[i].wbCount / 1e3;
                    int len = (int) (us / max * plotW);
                    g.setColor(PART_COLORS[p].darker());
                    g.fillRect(xx, yy + 6, Math.max(len, 0), rowH - 10);
                    xx += len;
                }
                g.setColor(Color.BLACK);
                g.drawString(String.format(Locale.ROOT, "write-blocking: claim %.1f + source %.1f + target %.1f µs",
                        w[i].wb[0] / w[i].wbCount / 1e3, w[i].wb[1] / w[i].wbCount / 1e3, w[i].wb[2] / w[i].wbCount / 1e3),
                        xx + 6, yy + rowH - 6);
            }
        }
        int lx = LEFT + plotW + 60;
        for (int p = 0; p < 4; p++) {
            g.setColor(PART_COLORS[p]);
            g.fillRect(lx, top + 18 * p, 12, 12);
            g.setColor(Color.BLACK);
            g.drawString(names[p], lx + 18, top + 11 + 18 * p);
        }
        for (int p = 0; p < 3; p++) {
            g.setColor(PART_COLORS[p].darker());
            g.fillRect(lx, top + 90 + 18 * p, 12, 12);
            g.setColor(Color.BLACK);
            g.drawString(wbNames[p], lx + 18, top + 101 + 18 * p);
        }
    }

    private static String us(double micros) {
        if (!Double.isFinite(micros)) {
            return "-";
        }
        return micros >= 10_000 ? String.format(Locale.ROOT, "%.1f ms", micros / 1e3)
                : String.format(Locale.ROOT, "%.0f µs", micros);
    }
}
