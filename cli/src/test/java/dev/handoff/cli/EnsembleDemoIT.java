package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code handoff ensemble-demo} end to end: three ZooKeeper servers, two holders, every check passed. */
@Timeout(240)
class EnsembleDemoIT {
    @TempDir
    Path dir;

    @Test
    void ensembleDemoHandsOverThroughALeaderFailOverAndFencesThePausedHolder() throws Exception {
        Cli.Result r = Cli.run(dir, "ensemble-demo");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("leader server", "killed (SIGKILL) during the handoff",
                "host-b: accept 1:host-a", "ok ACTIVE epoch=2 owner=host-b", "ok ACTIVE epoch=3 owner=host-a",
                "paused host-b got nothing acknowledged", "epoch 3, owner host-a, clean", "ensemble demo passed");
        assertThat(r.stdout()).doesNotContain("FAILED");
        assertThat(r.stderr()).isEmpty();
    }
}
