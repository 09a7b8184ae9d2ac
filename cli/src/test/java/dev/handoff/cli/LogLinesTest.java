package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.logging.LogManager;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** What a library's System.Logger says reaches the user as one line per event: time, level, message. */
@Timeout(30)
class LogLinesTest {
    private static final String LINE = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z ";

    @AfterEach
    void restoreDefaults() throws IOException {
        LogManager.getLogManager().readConfiguration();
    }

    @Test
    void eachEventIsOneLineWithTimeLevelAndMessage() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        LogLines.install(new PrintStream(out, true, StandardCharsets.UTF_8), false);
        System.Logger log = System.getLogger("dev.handoff.nbd");
        log.log(System.Logger.Level.INFO, "nbd server: a client\nwith two lines");
        log.log(System.Logger.Level.WARNING, "nbd connection 4: device failed on READ", new java.io.IOException("boom"));
        log.log(System.Logger.Level.ERROR, "failed");
        log.log(System.Logger.Level.DEBUG, "not shown without HANDOFF_DEBUG");
        String[] lines = out.toString(StandardCharsets.UTF_8).split("\\R");
        assertThat(lines).hasSize(3);
        assertThat(lines[0]).matches(LINE + "INFO nbd server: a client; with two lines");
        assertThat(lines[1]).matches(LINE + "WARNING nbd connection 4: device failed on READ: java.io.IOException: boom");
        assertThat(lines[2]).matches(LINE + "ERROR failed");
    }

    @Test
    void debugShowsDebugEventsAndTheCauseStack() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        LogLines.install(new PrintStream(out, true, StandardCharsets.UTF_8), true);
        System.Logger log = System.getLogger("dev.handoff.nbd");
        log.log(System.Logger.Level.DEBUG, "nbd connection 7 closed");
        log.log(System.Logger.Level.WARNING, "failed", new IllegalStateException("x"));
        String[] lines = out.toString(StandardCharsets.UTF_8).split("\\R");
        assertThat(lines[0]).matches(LINE + "DEBUG nbd connection 7 closed");
        assertThat(lines[1]).matches(LINE + "WARNING failed: java.lang.IllegalStateException: x");
        assertThat(lines[2]).startsWith("\tat dev.handoff.cli.LogLinesTest");
    }
}
