package dev.handoff.bench.compare;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;

/**
 * The raw images of a comparison: a fresh sparse target for each run, and {@code qemu-img compare}
 * as the one judge of whether a mirror's target equals its source. Stateless.
 */
final class RawImages {
    private RawImages() {
    }

    /** Replaces {@code image} by a sparse file of {@code size} bytes (all holes), and returns it. */
    static Path sparse(Path image, long size) throws IOException {
        Files.deleteIfExists(image);
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[1]), size - 1);
        }
        return image;
    }

    /**
     * {@code qemu-img compare} of two raw images, its output in {@code log}: exit 0 identical, 1
     * different (the first difference is printed to {@code out}), anything else an error.
     */
    static boolean identical(Path a, Path b, Path log, PrintStream out) throws IOException, InterruptedException {
        int exit = Child.run("qemu-img compare", List.of("qemu-img", "compare", "-f", "raw", "-F", "raw", a.toString(),
                b.toString()), log, Duration.ofMinutes(5));
        if (exit != 0 && exit != 1) {
            throw new IOException("qemu-img compare failed (" + exit + "): " + Files.readString(log));
        }
        if (exit == 1) {
            out.println("    qemu-img compare: " + Files.readString(log).trim());
        }
        return exit == 0;
    }
}
