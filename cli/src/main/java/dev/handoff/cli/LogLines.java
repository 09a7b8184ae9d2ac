package dev.handoff.cli;

import java.io.PrintStream;
import java.time.Instant;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.Arrays;
import java.util.Objects;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogManager;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * What the library modules log ({@link System.Logger}, which is {@code java.util.logging} here)
 * reaches the user of {@code handoff} as one line per event on stderr: the time (UTC, to the
 * millisecond), the level in {@link System.Logger.Level}'s names, and the message, with the cause's
 * one-line summary when there is one. For example
 * {@code 2026-12-06T07:20:21.123Z WARNING nbd connection 4: device failed on READ: java.io.IOException: boom}.
 * Without {@code HANDOFF_DEBUG} only INFO and above are shown; with it, DEBUG too and the cause's
 * stack trace after its line.
 *
 * <p>Thread safety: {@link #format} is stateless; the handler writes each line with one call on a
 * {@link PrintStream}, which is synchronized, so lines of concurrent events never interleave.
 */
final class LogLines extends Formatter {
    private final boolean stackTraces;

    LogLines(boolean stackTraces) {
        this.stackTraces = stackTraces;
    }

    /** Replaces the root logger's handlers (java.util.logging's two-line console default) with one line per event to {@code out}. */
    static void install(PrintStream out, boolean debug) {
        LogManager.getLogManager().reset();
        Logger root = Logger.getLogger("");
        Handler handler = new Handler() {
            @Override
            public void publish(LogRecord record) {
                if (isLoggable(record)) {
                    out.print(getFormatter().format(record));
                    out.flush();
                }
            }

            @Override
            public void flush() {
                out.flush();
            }

            @Override
            public void close() {
                out.flush();
            }
        };
        handler.setFormatter(new LogLines(debug));
        Level level = debug ? Level.FINE : Level.INFO;
        handler.setLevel(level);
        root.setLevel(level);
        root.addHandler(handler);
    }

    @Override
    public String format(LogRecord record) {
        StringBuilder line = new StringBuilder(160);
        // ISO_INSTANT here rather than in a static field: java.time's formatters load when a line is
        // written, not at every start-up (LogLines is installed by every command).
        line.append(DateTimeFormatter.ISO_INSTANT.format(Instant.ofEpochMilli(record.getMillis()).truncatedTo(ChronoUnit.MILLIS)))
                .append(' ').append(levelName(record.getLevel())).append(' ').append(oneLine(formatMessage(record)));
        Throwable cause = record.getThrown();
        if (cause != null) {
            line.append(": ").append(oneLine(String.valueOf(cause)));
        }
        line.append(System.lineSeparator());
        if (cause != null && stackTraces) {
            for (StackTraceElement e : cause.getStackTrace()) {
                line.append("\tat ").append(e).append(System.lineSeparator());
            }
        }
        return line.toString();
    }

    /** System.Logger's names for the java.util.logging levels it maps to. */
    static String levelName(Level level) {
        int v = Objects.requireNonNull(level, "level").intValue();
        if (v >= Level.SEVERE.intValue()) {
            return "ERROR";
        } else if (v >= Level.WARNING.intValue()) {
            return "WARNING";
        } else if (v >= Level.INFO.intValue()) {
            return "INFO";
        } else if (v >= Level.FINE.intValue()) {
            return "DEBUG";
        }
        return "TRACE";
    }

    private static String oneLine(String text) {
        if (text == null) {
            return "";
        }
        return String.join("; ", Arrays.stream(text.split("\\R")).map(String::strip).filter(s -> !s.isEmpty()).toList());
    }
}
