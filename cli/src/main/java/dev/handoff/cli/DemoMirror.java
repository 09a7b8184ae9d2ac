package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorEvent;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import dev.handoff.ownership.OwnedImage;
import dev.handoff.workload.SyntheticGuest;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Steps 1 and 2 of the demo: mirror the source to the target while a synthetic guest writes
 * through the job's guest device, reach READY (switching to write-blocking if the guest outruns
 * the copier), keep writing in phase 2, complete (pivot) while the guest goes on, then verify:
 * the target equals the source as it was at the pivot, and holds every acknowledged write.
 */
final class DemoMirror {
    private static final int BLOCK = 1 << 20;

    /** The synthetic guest: writer threads, largest write, write rate (0 = as fast as it can), seed. */
    record Guest(int threads, long maxWrite, long rate, long seed) {
    }

    /** How long the guest writes while READY, and how long to wait for READY before write-blocking. */
    record Timing(double phase2Seconds, double convergeTimeoutSeconds) {
    }

    private final PrintStream out;
    private final DemoReport report;
    private final Guest guestSpec;
    private final Timing timing;
    private final ProgressView.Mode progress;
    private final long loseTargetWrites;

    DemoMirror(PrintStream out, DemoReport report, Guest guest, Timing timing, ProgressView.Mode progress,
            long loseTargetWrites) {
        this.out = out;
        this.report = report;
        this.guestSpec = guest;
        this.timing = timing;
        this.progress = progress;
        this.loseTargetWrites = loseTargetWrites;
    }

    /** Fills 3 of every 4 MiB of {@code image} with seeded data and leaves the rest as holes; returns the bytes written. */
    static long fill(OwnedImage image, long seed) throws DeviceException {
        byte[] pattern = new byte[BLOCK];
        new SplittableRandom(seed).nextBytes(pattern);
        ByteBuffer buf = ByteBuffer.wrap(pattern);
        long size = image.size();
        long written = 0;
        for (long off = 0, block = 0; off < size; off += BLOCK, block++) {
            if (block % 4 == 3) {
                continue;
            }
            buf.clear().limit((int) Math.min(BLOCK, size - off));
            buf.putLong(0, block); // each block differs
            image.write(off, buf);
            written += buf.limit();
        }
        image.flush();
        return written;
    }

    /** Runs steps 1 and 2; true if the job pivoted and the target verified. */
    boolean run(OwnedImage source, OwnedImage target, JobLauncher launcher) throws Exception {
        JobOptions.Injection injection = launcher.injection();
        BlockDevice lossy = loseTargetWrites > 0 ? new LosingDevice(target, 8, loseTargetWrites) : target;
        JobRun run = launcher.launch(source, lossy, true);
        MirrorJob job = run.job();
        MirrorOptions options = job.options();
        if (injection != null) {
            // Faults are for the copy; once the job drains for the pivot the guest writes the target.
            job.addListener(e -> {
                if (e instanceof MirrorEvent.StateChanged s
                        && (s.to() == JobState.COMPLETING || s.to() == JobState.CANCELLING || s.to().isConcluded())) {
                    run.disarmFaults();
                }
            });
        }
        long t0 = System.nanoTime();
        ProgressView view = new ProgressView(job::progress, out, progress, t0);
        run.addSink((e, qmp) -> {
            String line = EventLines.describe(e);
            if (line != null) {
                view.println(view.elapsed() + " " + line);
            }
        });
        GuestView guestDisk = new GuestView(job.guestDevice(), source, guestSpec.rate());
        SyntheticGuest guest = new SyntheticGuest(guestDisk, guestSpec.threads(), guestSpec.seed(),
                (int) guestSpec.maxWrite());
        out.println();
        out.println("1. mirror source.img -> target.img (granularity " + Sizes.format(options.granularity()) + ", "
                + Choices.name(options.copyMode()) + ", buf-size " + Sizes.format(options.bufSize())
                + (options.speed() > 0 ? ", speed " + Sizes.format(options.speed()) + "/s" : "")
                + ", on-target-error " + Choices.name(options.onTargetError())
                + (injection != null ? ", injecting " + injection : "") + ")");
        out.println("   guest: " + guestSpec.threads() + " writer threads, random unaligned writes of up to "
                + Sizes.format(guestSpec.maxWrite())
                + (guestSpec.rate() > 0 ? ", " + Sizes.format(guestSpec.rate()) + "/s in all" : ", as fast as they can"));
        guest.start(Long.MAX_VALUE);
        view.start();
        run.start();

        double convergeTimeout = timing.convergeTimeoutSeconds();
        boolean ready = job.awaitReady(seconds(convergeTimeout));
        if (!ready && !job.state().isConcluded() && job.progress().copyMode() == CopyMode.BACKGROUND) {
            view.println(view.elapsed() + " not READY after " + convergeTimeout + " s: the guest writes faster than the"
                    + " copier; switching to write-blocking (block-job-change copy-mode=write-blocking)");
            try {
                job.setCopyMode(CopyMode.WRITE_BLOCKING);
            } catch (IllegalStateException raced) {
                // concluded meanwhile
            }
            ready = job.awaitReady(seconds(convergeTimeout));
        }
        long readyAt = System.nanoTime();
        if (ready) {
            Thread.sleep((long) (timing.phase2Seconds() * 1000));
            try {
                job.complete();
            } catch (IllegalStateException e) {
                view.println(view.elapsed() + " cannot complete: " + e.getMessage());
            }
        } else if (!job.state().isConcluded()) {
            job.cancel(true);
        }
        JobState end = job.awaitConclusion(Duration.ofMinutes(10));
        long doneAt = System.nanoTime();
        guest.stop();
        run.awaitDelivered(Duration.ofSeconds(5));
        view.close();

        report.check("READY reached", ready, ready ? String.format(Locale.ROOT, "yes, after %.2f s", (readyAt - t0) / 1e9)
                : "no" + (job.failureReason() != null ? ": " + job.failureReason() : ""));
        boolean completed = end == JobState.COMPLETED && job.guestDevice().currentDevice() != source;
        report.check("COMPLETED with pivot", completed, completed
                ? String.format(Locale.ROOT, "yes, after %.2f s", (doneAt - t0) / 1e9)
                : "no: the job ended " + end + (job.failureReason() != null ? ": " + job.failureReason() : ""));
        long errors = job.progress().errorCount();
        if (errors > 0 || injection != null) {
            report.note("I/O errors met by the job", errors + " (policy " + Choices.name(options.onTargetError())
                    + " on the target)");
        }
        if (!guest.failures().isEmpty()) {
            report.check("guest writes all succeeded", false, "no: " + guest.failures().get(0));
        }
        if (!completed) {
            return false;
        }
        return verify(source, target, guestDisk, guest);
    }

    /** Step 2: the target against the source at the pivot, and against every acknowledged write. */
    private boolean verify(OwnedImage source, OwnedImage target, GuestView guestDisk, SyntheticGuest guest)
            throws DeviceException {
        out.println();
        out.println("2. verify");
        List<long[]> afterPivot = guestDisk.writtenAfterPivot();
        long diff = ImageDiff.firstDifference(source, target, afterPivot);
        report.check("target = source at the pivot", diff < 0, diff < 0
                ? "yes, byte for byte (" + afterPivot.size() + " writes after the pivot excluded: only the target has them)"
                : "NO: first difference at byte " + diff);
        out.println("   target = source at the pivot ........ " + (diff < 0 ? "yes" : "NO, first difference at byte " + diff));
        String missing = guest.verify(target);
        report.check("acknowledged writes on the target", missing == null, missing == null
                ? "all " + guest.writes() + " (" + Sizes.format(guest.bytesWritten()) + "), before, during and after the pivot"
                : "NO: " + missing);
        out.println("   every acknowledged write on target .. " + (missing == null ? "yes (" + guest.writes() + " writes)"
                : "NO: " + missing));
        return diff < 0 && missing == null;
    }

    private static Duration seconds(double s) {
        return Duration.ofMillis((long) (s * 1000));
    }
}
