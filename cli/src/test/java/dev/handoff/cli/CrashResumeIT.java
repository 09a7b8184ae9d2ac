package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.handoff.device.DeviceException;
import dev.handoff.nbd.NbdDevice;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real crash (DESIGN §2.10): {@code handoff mirror --bitmap}, and {@code handoff serve --mirror-to
 * --bitmap} under a guest writing over NBD, killed with SIGKILL at random points, a bounded number
 * of times, then run again with the same command line, resume from the bitmap, say how much they
 * copy again, and end with a target {@code qemu-img compare} finds identical.
 */
@Timeout(300) // up to four JVM starts and a rate-limited copy of 32 MiB, on a loaded machine
class CrashResumeIT {
    private static final long SIZE = 32L << 20;
    private static final int BITS_OFFSET = 4096; // FileBitmapStore's: after the two header slots
    private static final Pattern AGAIN = Pattern.compile("resuming \\(generation (\\d+), after a crash\\): (.+) of (.+) to"
            + " copy again");

    @TempDir
    Path dir;

    @Test
    void aMirrorKilledAtRandomPointsResumesWithTheSameCommandAndEndsIdentical() throws Exception {
        QemuTools.require("qemu-img");
        long seed = System.nanoTime();
        Random random = new Random(seed);
        Images.randomImage(dir.resolve("src.img"), SIZE, 5);
        String[] command = {"mirror", "src.img", "dst.img", "--bitmap", "copy.bitmap", "--speed", "2M/s",
            "--progress", "none"};
        Path bitmap = dir.resolve("copy.bitmap");
        List<String> resumes = new ArrayList<>();
        int kills = 0;
        boolean completed = false;
        for (int k = 0; k < 3 && !completed; k++) {
            try (Cli.Running r = Cli.start(dir, command)) {
                String line = r.awaitLine("bitmap copy.bitmap");
                if (k > 0) {
                    Matcher m = AGAIN.matcher(line);
                    assertThat(m.find()).as("seed %d, run %d: %s", seed, k + 1, line).isTrue();
                    resumes.add(m.group(2) + " of " + m.group(3));
                } else {
                    assertThat(line).as("seed %d: a new bitmap of the default regions", seed)
                            .contains("new, regions of 1 MiB");
                }
                // Kill once this run has cleared a region (a clear pass runs every second; a full copy
                // takes 16 s at this speed), then a random moment later: some regions copied and
                // cleared, not all, however loaded the machine. What the file shows survives SIGKILL.
                int before = clearedRegions(bitmap);
                int now = before;
                long deadline = System.nanoTime() + 30_000_000_000L;
                while (now <= before && r.process.isAlive() && System.nanoTime() < deadline) {
                    Thread.sleep(50);
                    now = clearedRegions(bitmap);
                }
                if (r.process.isAlive() && now >= 0) {
                    assertThat(now).as("seed %d, run %d: a region cleared within 30 s (%d before)", seed, k + 1,
                            before).isGreaterThan(before);
                    Thread.sleep(random.nextInt(1_500));
                }
                if (r.process.isAlive()) {
                    r.signal("KILL");
                }
                Cli.Result result = r.waitFor();
                if (result.exit() != 137) {
                    // Done before the kill (or between the last look and the signal): done cleanly.
                    assertThat(result.exit()).as("seed %d: done before the kill\n%s", seed, result).isZero();
                    assertThat(Files.exists(bitmap)).as("seed %d: removed once complete", seed).isFalse();
                    completed = true;
                    break;
                }
                kills++;
            }
            // A kill that lands after the copy completed finds the bitmap removed: nothing to resume.
            completed = !Files.exists(bitmap);
        }
        assertThat(kills).as("seed %d: at least one kill landed mid-copy", seed).isPositive();
        if (Files.exists(dir.resolve("copy.bitmap"))) {
            Cli.Result last = Cli.run(dir, command);
            assertThat(last.exit()).as("seed %d\n%s", seed, last).isZero();
            Matcher m = AGAIN.matcher(last.stdout());
            assertThat(m.find()).as("seed %d: the last run resumes\n%s", seed, last).isTrue();
            resumes.add(m.group(2) + " of " + m.group(3));
            assertThat(last.stdout()).contains("bitmap copy.bitmap removed: the copy is complete");
        }
        assertThat(Files.exists(dir.resolve("copy.bitmap"))).isFalse();
        assertThat(QemuTools.compare(dir.resolve("src.img"), dir.resolve("dst.img")))
                .as("seed %d: qemu-img compare after %d kills", seed, kills).isZero();
        // Every kill came after a clear that the next run finds: no resume copies the whole image.
        assertThat(resumes).as("seed %d: a resume after each kill", seed).hasSize(kills);
        assertThat(resumes).as("seed %d: every resume copies less than the whole image", seed)
                .noneMatch(r -> r.startsWith("32 MiB of"));
        System.out.println("SIGKILL resume (seed " + seed + "): copied again after each kill: " + resumes);
    }

    @Test
    void aServeMirroringUnderAWriterKilledAtRandomPointsResumesAndEndsIdentical() throws Exception {
        QemuTools.require("qemu-img");
        long seed = System.nanoTime();
        Random random = new Random(seed);
        Images.randomImage(dir.resolve("src.img"), SIZE / 2, 6);
        String[] command = {"serve", "src.img", "--nbd", "unix:s.sock", "--control", "s.qmp", "--owner", "a",
            "--mirror-to", "dst.img", "--bitmap", "copy.bitmap", "--speed", "4M/s"};
        String uri = "nbd+unix:///disk?socket=" + dir.resolve("s.sock");
        Path bitmap = dir.resolve("copy.bitmap");
        List<String> resumes = new ArrayList<>();
        List<String> killPoints = new ArrayList<>();
        long written = 0;
        int kills = 1 + random.nextInt(3);
        for (int k = 0; k < kills; k++) {
            try (Cli.Running serve = Cli.start(dir, command)) {
                String line = serve.awaitLine("serving src.img");
                if (k > 0) {
                    Matcher m = AGAIN.matcher(line);
                    assertThat(m.find()).as("seed %d, run %d: %s", seed, k + 1, line).isTrue();
                    resumes.add(m.group(2) + " of " + m.group(3));
                }
                Writer writer = new Writer(uri, random.nextLong());
                writer.start();
                // A random point, reached by evidence rather than by the clock: the guest has had a
                // random number of writes acknowledged, and, in a run drawn to, the bulk copy has
                // copied and cleared a region (so the resume has less to copy), however loaded the machine.
                long acked = 1 + random.nextInt(400);
                boolean afterAClear = k == 0 && random.nextBoolean(); // later runs may find every cold region clear
                int clearedAtStart = clearedRegions(bitmap, (int) (SIZE / 2 / REGION));
                long deadline = System.nanoTime() + 60_000_000_000L;
                while ((writer.writes < acked || afterAClear
                        && clearedRegions(bitmap, (int) (SIZE / 2 / REGION)) <= Math.max(0, clearedAtStart))
                        && writer.failure == null && serve.process.isAlive() && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                }
                assertThat(writer.failure).as("seed %d, run %d: the writer before the kill", seed, k + 1).isNull();
                assertThat(writer.writes).as("seed %d, run %d: writes acknowledged within 60 s", seed, k + 1)
                        .isGreaterThanOrEqualTo(acked);
                killPoints.add(writer.writes + " writes" + (afterAClear ? ", after a clear" : ""));
                serve.signal("KILL");
                Cli.Result killed = serve.waitFor();
                assertThat(killed.exit()).as("seed %d: killed by SIGKILL\n%s", seed, killed).isEqualTo(137);
                writer.join(60_000);
                written += writer.writes;
            }
        }
        try (Cli.Running serve = Cli.start(dir, command)) {
            String line = serve.awaitLine("serving src.img");
            Matcher m = AGAIN.matcher(line);
            assertThat(m.find()).as("seed %d, the last run: %s", seed, line).isTrue();
            resumes.add(m.group(2) + " of " + m.group(3));
            Writer writer = new Writer(uri, random.nextLong());
            writer.start();
            Thread.sleep(500);
            writer.halt();
            writer.join(60_000);
            assertThat(writer.failure).as("seed %d: the writer of the last run", seed).isNull();
            written += writer.writes;
            try (QmpClient qmp = QmpClient.connect(dir.resolve("s.qmp"), serve)) {
                qmp.execute("qmp_capabilities");
                qmp.execute("block-job-set-speed", "{\"device\":\"mirror0\",\"speed\":0}");
                JsonWaits.ready(qmp);
                qmp.execute("block-job-cancel", "{\"device\":\"mirror0\"}");
                qmp.awaitEvent("BLOCK_JOB_COMPLETED");
                serve.awaitLine("bitmap copy.bitmap removed: the copy is complete");
                qmp.execute("quit");
            }
            assertThat(serve.waitFor().exit()).isZero();
        }
        assertThat(Files.exists(dir.resolve("copy.bitmap"))).isFalse();
        assertThat(QemuTools.compare(dir.resolve("src.img"), dir.resolve("dst.img")))
                .as("seed %d: qemu-img compare after %d kills under %d guest writes", seed, kills, written).isZero();
        assertThat(resumes).as("seed %d: a resume after each kill", seed).hasSize(kills);
        System.out.println("SIGKILL resume of serve --mirror-to under a writer (seed " + seed + ", " + written
                + " guest writes): killed at " + killPoints + "; copied again after each kill: " + resumes);
    }

    /** The default region of a bitmap (DESIGN §2.10): 32 of them in the mirror test's image. */
    private static final int REGION = 1 << 20;

    /**
     * The regions whose bit is clear in the mirror test's bitmap file of {@code SIZE / REGION} regions, read as
     * FileBitmapStore lays it out (two header slots of 2 KiB, then the bits, little-endian 64-bit
     * words, bit r of word r / 64 for region r); -1 if there is no file (the copy completed).
     */
    private static int clearedRegions(Path bitmap) throws IOException {
        return clearedRegions(bitmap, (int) (SIZE / REGION));
    }

    /** As above, for a bitmap of {@code regions} regions; -1 if there is no file (yet, or any more). */
    private static int clearedRegions(Path bitmap, int regions) throws IOException {
        ByteBuffer words = ByteBuffer.allocate((regions + 63) / 64 * 8).order(ByteOrder.LITTLE_ENDIAN);
        try (SeekableByteChannel c = Files.newByteChannel(bitmap)) {
            c.position(BITS_OFFSET);
            while (words.hasRemaining() && c.read(words) >= 0) {
                // read on: a positional read may return less than asked
            }
        } catch (NoSuchFileException e) {
            return -1;
        }
        assertThat(words.hasRemaining()).as("%s holds all its bits (it is created whole)", bitmap).isFalse();
        int cleared = 0;
        for (int r = 0; r < regions; r++) {
            if ((words.getLong((r >>> 6) * 8) & (1L << r)) == 0) {
                cleared++;
            }
        }
        return cleared;
    }

    /**
     * A guest writing random 4 KiB blocks over NBD in the first quarter of the disk (so the rest is
     * copied, then left alone, and its bits can be cleared), flushing now and then, until stopped or
     * cut off.
     */
    private static final class Writer extends Thread {
        private final String uri;
        private final Random random;
        private volatile boolean halted;
        volatile long writes;
        volatile Throwable failure;

        Writer(String uri, long seed) {
            this.uri = uri;
            this.random = new Random(seed);
            setDaemon(true);
        }

        void halt() {
            halted = true;
        }

        @Override
        public void run() {
            try (NbdDevice device = NbdDevice.open(uri)) {
                ByteBuffer b = ByteBuffer.allocate(4096);
                long blocks = device.size() / 4 / 4096;
                while (!halted) {
                    random.nextBytes(b.array());
                    b.clear();
                    device.write((long) (random.nextDouble() * blocks) * 4096, b);
                    writes++;
                    if (random.nextInt(32) == 0) {
                        device.flush();
                    }
                }
            } catch (DeviceException e) {
                if (!halted) {
                    failure = e; // cut off by the kill: expected in the killed runs
                }
            }
        }
    }

    /** Waiting for READY over QMP (the event, or a query that says so, whichever the job did first). */
    private static final class JsonWaits {
        static void ready(QmpClient qmp) throws Exception {
            for (int i = 0; i < 600; i++) {
                var jobs = qmp.execute("query-block-jobs").path("return");
                if (jobs.size() > 0 && jobs.get(0).path("ready").asBoolean()) {
                    assertThat(jobs.get(0).path("bitmap").path("file").asText()).endsWith("copy.bitmap");
                    return;
                }
                Thread.sleep(100);
            }
            throw new AssertionError("the job never became READY");
        }
    }
}
