package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.handoff.device.DeviceException;
import dev.handoff.nbd.NbdDevice;
import java.nio.ByteBuffer;
import java.nio.file.Files;
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
                }
                // Some regions copied and cleared, not all (a full copy takes 16 s at this speed).
                Thread.sleep(1_200 + random.nextInt(1_500));
                if (!r.process.isAlive()) {
                    Cli.Result done = r.waitFor();
                    assertThat(done.exit()).as("seed %d: done before the kill\n%s", seed, done).isZero();
                    completed = true;
                    break;
                }
                r.signal("KILL");
                Cli.Result killed = r.waitFor();
                assertThat(killed.exit()).as("seed %d: killed by SIGKILL\n%s", seed, killed).isEqualTo(137);
                kills++;
            }
            // A kill that lands after the copy completed finds the bitmap removed: nothing to resume.
            completed = !Files.exists(dir.resolve("copy.bitmap"));
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
        if (resumes.size() >= 2) {
            assertThat(resumes).as("seed %d: some resume copies less than the whole image", seed)
                    .anyMatch(r -> !r.startsWith("32 MiB of"));
        }
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
        List<String> resumes = new ArrayList<>();
        long written = 0;
        for (int k = 0; k < 3; k++) {
            try (Cli.Running serve = Cli.start(dir, command)) {
                String line = serve.awaitLine("serving src.img");
                if (k > 0) {
                    Matcher m = AGAIN.matcher(line);
                    assertThat(m.find()).as("seed %d, run %d: %s", seed, k + 1, line).isTrue();
                    resumes.add(m.group(2) + " of " + m.group(3));
                }
                Writer writer = new Writer(uri, random.nextLong());
                writer.start();
                Thread.sleep(1_500 + random.nextInt(2_000)); // clear passes run every second
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
                .as("seed %d: qemu-img compare after 3 kills under %d guest writes", seed, written).isZero();
        System.out.println("SIGKILL resume of serve --mirror-to under a writer (seed " + seed + ", " + written
                + " guest writes): copied again after each kill: " + resumes);
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
