package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code handoff demo} end to end, and the broken variant its checks must catch. */
class DemoIT {
    @TempDir
    Path dir;

    @Test
    void demoMirrorsVerifiesAndHandsOffToAChildProcess() throws Exception {
        Cli.Result r = Cli.run(dir, "demo", "--size", "32M", "--dir", dir.resolve("work").toString());
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("READY", "COMPLETED (pivot", "target = source at the pivot ........ yes",
                "every acknowledged write on target .. yes", "handoff epoch", "1 -> 2", "refused (inactive)",
                "refused (busy)", "refused (fenced)", "epoch 2, owner demo-child, clean", "demo passed");
        assertThat(r.stderr()).isEmpty();
        try (Stream<Path> left = Files.list(dir.resolve("work"))) {
            assertThat(left.filter(p -> p.getFileName().toString().endsWith(".img"))).isEmpty();
        }
    }

    @Test
    void demoCatchesATargetThatLosesWrites() throws Exception {
        Cli.Result r = Cli.run(dir, "demo", "--size", "16M", "--no-handoff", "--x-lose-target-writes", "4",
                "--guest-rate", "1M", "--dir", dir.resolve("work").toString());
        assertThat(r.exit()).as(r.toString()).isEqualTo(ExitCodes.FAILED);
        assertThat(r.stdout()).contains("NO");
        assertThat(r.stderr()).contains("handoff demo: FAILED");
    }

    @Test
    void demoPassesInjectedTargetErrorsToTheJobAndItsPolicy() throws Exception {
        Cli.Result ignore = Cli.run(dir, "demo", "--size", "16M", "--no-handoff", "--inject-target-errors", "3@0.3",
                "--on-target-error", "ignore", "--granularity", "256K", "--copy-mode", "write-blocking",
                "--dir", dir.resolve("a").toString());
        assertThat(ignore.exit()).as(ignore.toString()).isZero();
        assertThat(ignore.stdout()).contains("ERROR target write", "-> ignore", "I/O errors met by the job");

        Cli.Result report = Cli.run(dir, "demo", "--size", "16M", "--no-handoff", "--inject-target-errors", "1@1",
                "--dir", dir.resolve("b").toString());
        assertThat(report.exit()).as(report.toString()).isEqualTo(ExitCodes.FAILED);
        assertThat(report.stdout()).contains("-> report", "FAILED");
    }
}
