package dev.handoff.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.device.MemoryDevice;
import dev.handoff.mirror.MirrorJob;
import java.nio.ByteBuffer;
import java.time.Duration;

/**
 * One write-blocking mirror job of 4 MiB between two memory devices, run once on a daemon thread
 * of priority {@code NORM_PRIORITY - 1} when {@code serve} starts, so that the first {@code blockdev-mirror} a client
 * sends does not wait for this JVM to load, link and initialise the job's classes (QMP argument
 * parsing, the direct-memory check, the job, its copier and thread pool: about 300 classes). On a
 * loaded machine that first-use cost was 0.5–0.7 s of a cold {@code blockdev-mirror}'s return,
 * against 0.07–0.2 s for the second one (docs/BENCHMARKS.md, "Time to READY under the writer,
 * write-blocking"). It touches nothing of the served image; what it allocates is dropped when it
 * ends; a failure changes nothing and is not reported. A {@code --jfr} recording shows its job
 * among the others (4 MiB, in memory).
 */
final class MirrorWarmUp {
    private static final int SIZE = 4 << 20;

    private MirrorWarmUp() {
    }

    /** Starts the warm-up; returns at once. */
    static void startInBackground() {
        Thread t = new Thread(MirrorWarmUp::run, "mirror-warm-up");
        t.setDaemon(true);
        // One below normal, not the minimum: with the launcher's thread-priority flags (README,
        // "Guest-first after READY") the minimum is nice 19, which a busy host would starve while it
        // holds the initialisation of classes the first blockdev-mirror then waits for. One below
        // is nice 1: yields to the guest's threads and the server's without stalling.
        t.setPriority(Thread.NORM_PRIORITY - 1);
        t.start();
    }

    /** Runs the warm-up job on this thread; returns whether it reached READY and then its end. */
    static boolean run() {
        try {
            ObjectNode args = Json.object();
            args.put("job-id", "warm-up");
            args.put("sync", "full");
            args.put("copy-mode", "write-blocking");
            JobLauncher launcher = MirrorArgs.parse(args).launcher("warm-up", SIZE, SIZE);
            MemoryDevice source = new MemoryDevice(SIZE);
            source.write(0, ByteBuffer.wrap(new byte[SIZE / 2]).put(0, (byte) 1));
            MirrorJob job = MirrorJob.create(source, new MemoryDevice(SIZE), launcher.options());
            job.start();
            boolean ready = job.awaitReady(Duration.ofSeconds(60));
            if (ready) {
                job.guestDevice().write(SIZE - 4096, ByteBuffer.allocate(4096)); // the write-blocking path
            }
            job.cancel(true);
            job.awaitConclusion(Duration.ofSeconds(60));
            return ready;
        } catch (Exception | LinkageError e) {
            return false; // a warm-up only: the first real job pays what this did not
        }
    }
}
