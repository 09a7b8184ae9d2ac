package dev.handoff.ownership;

import static dev.handoff.ownership.OwnedImage.State.ACTIVE;
import static dev.handoff.ownership.OwnedImage.State.INACTIVE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.handoff.device.FileDevice;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Handoff and QEMU's own tools (Debian's {@code qemu-utils}) on one raw image see each other's
 * ownership through the lock bytes 101/201. Without {@code qemu-io} the tests fail when the
 * environment variable {@code CI} is set (CI installs it in {@code .ci/run}) and are skipped
 * otherwise.
 */
class QemuInteropTest {

    @TempDir
    Path dir;
    private Path image;

    @BeforeAll
    static void requireQemuIo() {
        boolean present = onPath("qemu-io");
        if (!present && System.getenv("CI") != null) {
            Assertions.fail("qemu-io is not installed, and CI must run the QEMU interop tests (apt-get install qemu-utils)");
        }
        Assumptions.assumeTrue(present, "qemu-io is not installed (apt-get install qemu-utils)");
    }

    @BeforeEach
    void createImage() throws Exception {
        image = dir.resolve("vm.img");
        FileDevice.create(image, 1 << 20).close();
    }

    @Test
    void qemuIoHoldingTheImageForWritingBlocksActivationWithAMessageSayingSo() throws Exception {
        Process qemu = new ProcessBuilder("qemu-io", "-f", "raw", image.toString()).redirectErrorStream(true).start();
        try (Writer commands = new OutputStreamWriter(qemu.getOutputStream(), StandardCharsets.UTF_8);
                BufferedReader out = new BufferedReader(new InputStreamReader(qemu.getInputStream(), StandardCharsets.UTF_8))) {
            // Once qemu-io answers a command, it has the image open read-write with its locks taken.
            commands.write("write -P 0x5c 0 4k\n");
            commands.flush();
            awaitLine(out, "wrote 4096/4096 bytes");

            try (OwnedImage handle = OwnedImage.openFile(image, "handoff", INACTIVE)) {
                assertThatThrownBy(handle::activate).isInstanceOf(ImageInactiveException.class)
                        .hasMessageContaining("Failed to get \"write\" lock")
                        .hasMessageContaining("locked by another process")
                        .hasMessageContaining("byte 101");
                assertThat(handle.state()).isEqualTo(INACTIVE);
                assertThat(SharedImage.read(handle, 0, 4096)).isEqualTo(SharedImage.filled(4096, 0x5c));

                commands.write("quit\n");
                commands.flush();
                assertThat(qemu.waitFor(10, TimeUnit.SECONDS)).isTrue();
                handle.activate(); // qemu-io is gone: the lock is free
                assertThat(handle.epoch()).isEqualTo(1);
            }
        } finally {
            qemu.destroyForcibly();
        }
    }

    @Test
    void anActiveHandoffImageMakesQemuIoWritesFailWithQemusLockError() throws Exception {
        try (OwnedImage handle = OwnedImage.openFile(image, "handoff", ACTIVE)) {
            handle.write(0, SharedImage.bytes(4096, 0x11));
            handle.flush();
            Result write = run("qemu-io", "-f", "raw", "-c", "write -P 0x22 0 4k", image.toString());
            assertThat(write.exitCode).isNotZero();
            assertThat(write.output).contains("Failed to get \"write\" lock").contains("Is another process using the image");
            assertThat(SharedImage.read(handle, 0, 4096)).isEqualTo(SharedImage.filled(4096, 0x11));

            if (onPath("qemu-img")) { // read-only inspection still works, as with a running VM
                Result info = run("qemu-img", "info", "-f", "raw", image.toString());
                assertThat(info.exitCode).as(info.output).isZero();
            }

            handle.inactivate(); // lets go: QEMU may write now
            Result after = run("qemu-io", "-f", "raw", "-c", "write -P 0x33 0 4k", image.toString());
            assertThat(after.exitCode).as(after.output).isZero();
            assertThat(SharedImage.read(handle, 0, 4096)).isEqualTo(SharedImage.filled(4096, 0x33));
        }
    }

    @Test
    void qemuNbdExportingTheImageBlocksOpeningItActive() throws Exception {
        Assumptions.assumeTrue(onPath("qemu-nbd") || System.getenv("CI") != null, "qemu-nbd is not installed");
        Path socket = dir.resolve("nbd.sock");
        Path pidFile = dir.resolve("nbd.pid");
        // --fork returns once the server runs with the image open; the pid file names the server.
        // Output to a file, not a pipe: the forked server would hold a pipe open.
        Path log = dir.resolve("nbd.log");
        Process parent = new ProcessBuilder("qemu-nbd", "--fork", "--pid-file=" + pidFile, "-f", "raw",
                "-k", socket.toString(), image.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertThat(parent.waitFor(20, TimeUnit.SECONDS)).as("qemu-nbd --fork returns").isTrue();
        assertThat(parent.exitValue()).as(Files.readString(log)).isZero();
        ProcessHandle nbd = ProcessHandle.of(Long.parseLong(Files.readString(pidFile).trim())).orElseThrow();
        try {
            assertThatThrownBy(() -> OwnedImage.openFile(image, "handoff", ACTIVE))
                    .isInstanceOf(ImageInactiveException.class).hasMessageContaining("locked by another process");
            assertThat(Files.exists(OwnershipRecord.sidecarOf(image))).as("no record written").isFalse();
        } finally {
            nbd.destroyForcibly();
            nbd.onExit().get(10, TimeUnit.SECONDS);
        }
        try (OwnedImage handle = OwnedImage.openFile(image, "handoff", ACTIVE)) {
            assertThat(handle.epoch()).isEqualTo(1);
        }
    }

    private record Result(int exitCode, String output) {
    }

    private static Result run(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(20, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException(String.join(" ", command) + " did not finish");
        }
        return new Result(p.exitValue(), output);
    }

    private static void awaitLine(BufferedReader out, String prefix) throws IOException {
        List<String> seen = new ArrayList<>();
        for (String line; (line = out.readLine()) != null; ) {
            seen.add(line);
            if (line.contains(prefix)) {
                return;
            }
        }
        throw new AssertionError("qemu-io ended before printing '" + prefix + "': " + seen);
    }

    private static boolean onPath(String tool) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (Files.isExecutable(Path.of(d, tool))) {
                return true;
            }
        }
        return false;
    }
}
