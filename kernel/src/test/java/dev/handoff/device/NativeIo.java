package dev.handoff.device;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * What tests of sparse files and block devices need from the machine: the native library, a
 * system tool's answer (the allocated size of a file, as {@code du} reports it), loop devices.
 * Missing pieces skip the test with the reason on a developer's machine and fail it on CI (the CI
 * variable is set), where .ci/run installs gcc and runs as root.
 */
final class NativeIo {
    private NativeIo() {
    }

    static boolean onCi() {
        return System.getenv("CI") != null;
    }

    /** Skips (or fails on CI) unless the native calls are available. */
    static void requireNative() {
        if (!LinuxFiles.available() && onCi()) {
            throw new AssertionError("the native library must load on CI: " + LinuxFiles.unavailableReason());
        }
        assumeTrue(LinuxFiles.available(), "native calls unavailable: " + LinuxFiles.unavailableReason());
    }

    /** Bytes allocated to {@code file} on disk (st_blocks × 512, from stat(1)). */
    static long allocated(Path file) throws IOException, InterruptedException {
        return Long.parseLong(run("stat", "-c", "%b", file.toString()).strip()) * 512;
    }

    static String run(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(List.of(command)).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", command) + " did not finish");
        }
        if (p.exitValue() != 0) {
            throw new IOException(String.join(" ", command) + " exited " + p.exitValue() + ": " + out);
        }
        return out;
    }

    /** A loop device over {@code backing}, detached on close. */
    static final class Loop implements AutoCloseable {
        final Path device;

        private Loop(Path device) {
            this.device = device;
        }

        /**
         * Attaches one; skips the test (with why) where losetup is missing or not permitted (not root),
         * and fails it on CI, which runs as root.
         */
        static Loop attach(Path backing) throws IOException, InterruptedException {
            boolean present = List.of(System.getenv().getOrDefault("PATH", "/usr/sbin:/sbin").split(":")).stream()
                    .anyMatch(d -> java.nio.file.Files.isExecutable(Path.of(d, "losetup")))
                    || java.nio.file.Files.isExecutable(Path.of("/usr/sbin/losetup"));
            if (!present && onCi()) {
                throw new AssertionError("losetup is missing on CI");
            }
            assumeTrue(present, "losetup is not installed: block-device tests need loop devices (util-linux)");
            String out;
            try {
                out = run("losetup", "-f", "--show", backing.toString());
            } catch (IOException e) {
                if (onCi()) {
                    throw new AssertionError("losetup failed on CI (it runs as root): " + e.getMessage(), e);
                }
                assumeTrue(false, "cannot attach a loop device (needs root): " + e.getMessage());
                throw e;
            }
            return new Loop(Path.of(out.strip()));
        }

        @Override
        public void close() throws IOException, InterruptedException {
            run("losetup", "-d", device.toString());
        }
    }
}
