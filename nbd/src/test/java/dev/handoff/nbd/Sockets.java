package dev.handoff.nbd;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * Short directories for unix sockets: a socket path must fit in 107 bytes, which a deep build
 * directory may not leave room for. Uses java.io.tmpdir (the build directory under Surefire) when
 * it is short enough, /tmp otherwise.
 */
final class Sockets {
    private Sockets() {
    }

    static Path newDirectory() {
        try {
            Path base = Path.of(System.getProperty("java.io.tmpdir"));
            if (base.toAbsolutePath().toString().length() > 60) {
                base = Path.of("/tmp");
            }
            return Files.createTempDirectory(base, "nbd");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void deleteTree(Path dir) {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    // best effort
                }
            });
        } catch (IOException e) {
            // best effort
        }
    }
}
