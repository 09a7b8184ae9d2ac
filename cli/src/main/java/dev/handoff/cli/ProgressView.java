package dev.handoff.cli;

import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorProgress;
import java.io.PrintStream;
import java.util.ArrayDeque;
import java.util.Locale;
import java.util.function.Supplier;
import picocli.CommandLine;

/**
 * Shows a job's progress: a bar redrawn in place on a terminal, or a plain log line every second
 * otherwise (so a log file or a CI console gets readable lines, not carriage returns). Event lines
 * printed through {@link #println} appear above the bar.
 *
 * <p>Fields: state, percentage ({@code offset / length}), bytes copied of the current length,
 * dirty bytes, bytes in flight, copy rate over the last two seconds, and the time left at that rate.
 * Threading: one renderer thread; every method is synchronized on this view.
 */
final class ProgressView implements AutoCloseable {

    /** How progress is shown. */
    enum Mode {
        /** A bar on a terminal, lines otherwise. */
        AUTO,
        BAR,
        LINES,
        NONE
    }

    /** Converts option values. */
    static final class ModeConverter implements CommandLine.ITypeConverter<Mode> {
        @Override
        public Mode convert(String value) {
            try {
                return Choices.parse(Mode.class, value, "progress mode");
            } catch (IllegalArgumentException e) {
                throw new CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }

    private static final long WINDOW_NANOS = 2_000_000_000L;

    private final Supplier<MirrorProgress> progress;
    private final PrintStream out;
    private final Mode mode;
    private final long startNanos;
    private final int columns;
    private final ArrayDeque<long[]> samples = new ArrayDeque<>();
    private Thread renderer;
    private boolean barShown;
    private boolean closed;

    ProgressView(Supplier<MirrorProgress> progress, PrintStream out, Mode requested, long startNanos) {
        this.progress = progress;
        this.out = out;
        this.mode = resolve(requested);
        this.startNanos = startNanos;
        this.columns = mode == Mode.BAR ? terminalColumns() : 0;
    }

    /** AUTO → BAR when stdin and stdout are a terminal (and TERM is not dumb), else LINES. */
    static Mode resolve(Mode requested) {
        if (requested != Mode.AUTO) {
            return requested;
        }
        boolean terminal = System.console() != null && !"dumb".equals(System.getenv("TERM"));
        return terminal ? Mode.BAR : Mode.LINES;
    }

    Mode mode() {
        return mode;
    }

    /** Starts redrawing (10 times a second for the bar, once a second for lines). */
    synchronized void start() {
        if (mode == Mode.NONE || renderer != null) {
            return;
        }
        long interval = mode == Mode.BAR ? 100 : 1000;
        renderer = new Thread(() -> {
            try {
                while (true) {
                    Thread.sleep(interval);
                    synchronized (this) {
                        if (closed) {
                            return;
                        }
                        render();
                    }
                }
            } catch (InterruptedException e) {
                // closed
            }
        }, "progress");
        renderer.setDaemon(true);
        renderer.start();
    }

    /** Prints a line above the bar (or among the log lines). */
    synchronized void println(String line) {
        clearBar();
        out.println(line);
        out.flush();
        if (mode == Mode.BAR && !closed) {
            render();
        }
    }

    /** Seconds since the job started, for event lines. */
    String elapsed() {
        return String.format(Locale.ROOT, "[%6.2fs]", (System.nanoTime() - startNanos) / 1e9);
    }

    /** Stops redrawing and leaves the terminal on a fresh line. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (renderer != null) {
            renderer.interrupt();
        }
        clearBar();
        out.flush();
    }

    private void render() {
        MirrorProgress p = progress.get();
        long now = System.nanoTime();
        samples.addLast(new long[] {now, p.offset()});
        while (samples.size() > 2 && now - samples.peekFirst()[0] > WINDOW_NANOS) {
            samples.removeFirst();
        }
        long[] first = samples.peekFirst();
        double seconds = (now - first[0]) / 1e9;
        double rate = seconds > 0.05 ? (p.offset() - first[1]) / seconds : 0;
        long left = p.length() - p.offset();
        int percent = p.length() == 0 ? 100 : (int) Math.min(100, p.offset() * 100 / p.length());
        String eta;
        if (left == 0) {
            eta = p.state() == JobState.READY ? "in sync" : "0s";
        } else if (rate < 1) {
            eta = "?";
        } else {
            eta = formatDuration(left / rate);
        }
        String stats = String.format(Locale.ROOT, "%3d%% %s/%s dirty %s in-flight %s %s/s ETA %s", percent,
                Sizes.format(p.offset()), Sizes.format(p.length()), Sizes.format(p.dirtyBytes()),
                Sizes.format(p.bytesInFlight()), Sizes.format((long) rate), eta);
        if (mode == Mode.LINES) {
            out.println(elapsed() + " " + String.format(Locale.ROOT, "%-10s", p.state()) + " " + stats);
            out.flush();
            return;
        }
        String state = String.format(Locale.ROOT, "%-10s", p.state());
        int barWidth = Math.max(10, Math.min(40, columns - state.length() - stats.length() - 5));
        int filled = barWidth * percent / 100;
        String bar = "[" + "#".repeat(filled) + "-".repeat(barWidth - filled) + "]";
        String line = state + " " + bar + " " + stats;
        if (line.length() > columns - 1) {
            line = line.substring(0, Math.max(0, columns - 1));
        }
        out.print("\r" + line + "\u001b[K");
        out.flush();
        barShown = true;
    }

    private void clearBar() {
        if (barShown) {
            out.print("\r\u001b[K");
            barShown = false;
        }
    }

    private static String formatDuration(double seconds) {
        long s = (long) Math.ceil(seconds);
        if (s < 60) {
            return s + "s";
        }
        if (s < 3600) {
            return (s / 60) + "m" + String.format(Locale.ROOT, "%02d", s % 60) + "s";
        }
        return (s / 3600) + "h" + String.format(Locale.ROOT, "%02d", (s / 60) % 60) + "m";
    }

    /** The terminal's width from COLUMNS, else {@code stty size}, else 100. */
    private static int terminalColumns() {
        String env = System.getenv("COLUMNS");
        if (env != null && env.matches("\\d+")) {
            return Integer.parseInt(env);
        }
        try {
            Process p = new ProcessBuilder("sh", "-c", "stty size < /dev/tty").redirectErrorStream(true).start();
            String outText = new String(p.getInputStream().readAllBytes()).trim();
            if (p.waitFor() == 0 && outText.matches("\\d+ \\d+")) {
                return Integer.parseInt(outText.split(" ")[1]);
            }
        } catch (java.io.IOException e) {
            // fall through
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return 100;
    }
}
