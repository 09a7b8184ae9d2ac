package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The repository's ./handoff launcher runs the jar this build made (no rebuild: it is newer than the sources). */
class LauncherIT {
    @Test
    void launcherRunsTheShadedJar() throws Exception {
        Path root = Cli.jar().getParent().getParent().getParent();
        Path launcher = root.resolve("handoff");
        assertThat(launcher).isExecutable();
        Process p = new ProcessBuilder("bash", launcher.toString(), "--version").redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor(300, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(out).isZero();
        assertThat(out).contains("handoff " + System.getProperty("handoff.version", ""));
        assertThat(Files.isRegularFile(Cli.jar())).isTrue();
    }
}
