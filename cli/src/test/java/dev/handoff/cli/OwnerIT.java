package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The ownership protocol from the shell: status, activate, inactivate, and a handoff between two processes. */
class OwnerIT {
    private static final long SIZE = 4L << 20;

    @TempDir
    Path dir;

    @Test
    void statusOfANeverActivatedImageWritesNothing() throws Exception {
        Path img = Images.randomImage(dir.resolve("disk.img"), SIZE, 1);
        var before = Images.snapshot(dir);
        Cli.Result r = Cli.run(dir, "owner", "status", "disk.img");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("epoch 0: never activated", "none: no process holds write locks");
        Cli.Result json = Cli.run(dir, "owner", "status", "disk.img", "--json");
        assertThat(json.stdout()).contains("\"epoch\":0", "\"active-elsewhere\":false");
        assertThat(Images.snapshot(dir)).isEqualTo(before);
        assertThat(img.resolveSibling("disk.img.owner")).doesNotExist();
    }

    @Test
    void activeHolderIsSeenByStatusQemuAndASecondActivation() throws Exception {
        Path img = Images.randomImage(dir.resolve("disk.img"), SIZE, 2);
        try (Cli.Running a = Cli.start(dir, "owner", "activate", "disk.img", "--owner", "alice")) {
            assertThat(a.nextLine()).startsWith("ok ACTIVE epoch=1 owner=alice");
            Cli.Result status = Cli.run(dir, "owner", "status", "disk.img");
            assertThat(status.stdout()).contains("epoch 1, owner alice, unclean", "ACTIVE elsewhere",
                    "byte 201 exclusive by pid " + a.pid());
            Cli.Result second = Cli.run(dir, "owner", "activate", "disk.img", "--owner", "bob");
            assertThat(second.exit()).as(second.toString()).isEqualTo(ExitCodes.BUSY);
            assertThat(second.errLines()).hasSize(1);
            assertThat(second.stderr()).contains("locked by another process");
            QemuTools.require("qemu-io");
            Object[] io = QemuTools.run("qemu-io", "-f", "raw", "-c", "write 0 4k", img.toString());
            assertThat((String) io[1]).contains("Failed to get \"write\" lock");
            assertThat(a.send("write 0 4K")).startsWith("ok wrote 4096 bytes at 0");
            assertThat(a.send("quit")).startsWith("ok closed (was ACTIVE with epoch 1");
            assertThat(a.waitFor().exit()).isZero();
        }
        assertThat(Cli.run(dir, "owner", "status", "disk.img").stdout()).contains("epoch 1, owner alice, clean");
    }

    @Test
    void handoffBetweenTwoProcessesFencesTheFirst() throws Exception {
        Images.randomImage(dir.resolve("disk.img"), SIZE, 3);
        try (Cli.Running src = Cli.start(dir, "owner", "activate", "disk.img", "--owner", "src")) {
            assertThat(src.nextLine()).startsWith("ok ACTIVE epoch=1");
            String prepared = src.send("prepare");
            assertThat(prepared).startsWith("ok INACTIVE epoch=1 owner=src").endsWith("token=1:src");
            assertThat(src.send("write 0 4K")).startsWith("refused inactive:");
            try (Cli.Running dst = Cli.start(dir, "owner", "accept", "disk.img", "--token", "1:src", "--owner", "dst")) {
                assertThat(dst.nextLine()).startsWith("ok ACTIVE epoch=2 owner=dst");
                assertThat(src.send("activate")).startsWith("refused busy:");
                assertThat(src.send("abort")).startsWith("refused busy:");
                assertThat(dst.send("write 0 4K")).startsWith("ok wrote");
                assertThat(dst.send("quit")).startsWith("ok closed");
                assertThat(dst.waitFor().exit()).isZero();
            }
            assertThat(src.send("abort")).startsWith("refused fenced:");
            assertThat(src.send("status")).isEqualTo("ok INACTIVE epoch=1 owner=src record=2:dst:clean");
            assertThat(src.send("quit")).contains("was INACTIVE: nothing written");
        }
        Cli.Result stale = Cli.run(dir, "owner", "accept", "disk.img", "--token", "1:src");
        assertThat(stale.exit()).as(stale.toString()).isEqualTo(ExitCodes.FENCED);
        assertThat(stale.stderr()).contains("stale");
    }

    @Test
    void abortTakesAPreparedHandoffBackWhenNobodyAccepted() throws Exception {
        Images.randomImage(dir.resolve("disk.img"), SIZE, 4);
        try (Cli.Running src = Cli.start(dir, "owner", "activate", "disk.img", "--owner", "src")) {
            src.nextLine();
            assertThat(src.send("prepare")).endsWith("token=1:src");
            assertThat(src.send("abort")).startsWith("ok ACTIVE epoch=2 owner=src");
            assertThat(src.send("quit")).startsWith("ok closed");
        }
        Cli.Result late = Cli.run(dir, "owner", "accept", "disk.img", "--token", "1:src");
        assertThat(late.exit()).as(late.toString()).isEqualTo(ExitCodes.FENCED);
    }

    @Test
    void inactiveHolderRefusesWritesAndClosesWithoutWriting() throws Exception {
        Path img = Images.randomImage(dir.resolve("disk.img"), SIZE, 5);
        var before = Images.snapshot(dir);
        try (Cli.Running h = Cli.start(dir, "owner", "inactivate", "disk.img", "--owner", "idle")) {
            assertThat(h.nextLine()).startsWith("ok INACTIVE epoch=0 owner=idle");
            assertThat(h.send("write 0 4K")).startsWith("refused inactive:");
            assertThat(h.send("flush")).startsWith("refused inactive:");
            assertThat(h.send("bogus")).startsWith("error: unknown command");
            h.closeStdin();
            Cli.Result r = h.waitFor();
            assertThat(r.exit()).isZero();
            assertThat(r.stdout()).contains("was INACTIVE: nothing written");
        }
        assertThat(Images.snapshot(dir)).isEqualTo(before);
        assertThat(Files.exists(img.resolveSibling("disk.img.owner"))).isFalse();
    }
}
