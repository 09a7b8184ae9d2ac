package dev.handoff.example;

import dev.handoff.device.MemoryDevice;
import dev.handoff.mirror.MirrorEvent;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import dev.handoff.mirror.MirrorProgress;
import dev.handoff.workload.SyntheticGuest;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Arrays;

/**
 * The runnable example: mirrors a 256 MiB in-memory device while four guest threads write to it,
 * completes (pivot), and checks that the target holds every acknowledged write and equals the
 * source as it was at the pivot. Exits non-zero if any check fails.
 *
 * <p>Arguments (all optional): {@code SIZE_MIB THREADS}.
 */
public final class MirrorDemo {
    private MirrorDemo() {
    }

    public static void main(String[] args) throws Exception {
        long size = (args.length > 0 ? Long.parseLong(args[0]) : 256) << 20;
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : 4;
        MemoryDevice source = new MemoryDevice(size);
        MemoryDevice target = new MemoryDevice(size);
        fill(source);

        MirrorJob job = MirrorJob.create(source, target, MirrorOptions.defaults());
        job.addListener(e -> {
            if (!(e instanceof MirrorEvent.StateChanged)) {
                System.out.println("event " + e);
            }
        });
        SyntheticGuest guest = new SyntheticGuest(job.guestDevice(), threads, 42, 256 << 10);
        long t0 = System.nanoTime();
        guest.start(Long.MAX_VALUE);
        job.start();
        while (!job.awaitReady(Duration.ofMillis(250))) {
            print(job.progress());
        }
        print(job.progress());
        long ready = System.nanoTime();
        Thread.sleep(200); // phase 2: the guest keeps writing, the copier keeps up
        job.complete();
        job.awaitConclusion(Duration.ofMinutes(5));
        long done = System.nanoTime();
        Thread.sleep(100); // the guest goes on, now on the target
        guest.stop();

        String onTarget = guest.verify(target);
        boolean guestOk = guest.failures().isEmpty();
        System.out.printf("%nstate          %s%n", job.state());
        System.out.printf("time to READY  %.2f s%n", (ready - t0) / 1e9);
        System.out.printf("time to done   %.2f s%n", (done - t0) / 1e9);
        System.out.printf("guest writes   %d (%d MiB)%n", guest.writes(), guest.bytesWritten() >> 20);
        System.out.printf("target check   %s%n", onTarget == null ? "every acknowledged write present" : onTarget);
        System.out.printf("guest errors   %s%n", guestOk ? "none" : guest.failures());
        if (onTarget != null || !guestOk || job.state() != dev.handoff.mirror.JobState.COMPLETED) {
            System.exit(1);
        }
    }

    private static void print(MirrorProgress p) {
        System.out.printf("%-10s copied %4d MiB  dirty %4d MiB  in flight %3d MiB  length %4d MiB%n", p.state(),
                p.offset() >> 20, p.dirtyBytes() >> 20, p.bytesInFlight() >> 20, p.length() >> 20);
    }

    private static void fill(MemoryDevice device) throws Exception {
        ByteBuffer buf = ByteBuffer.allocate(1 << 20);
        for (long off = 0; off < device.size(); off += buf.capacity()) {
            Arrays.fill(buf.array(), (byte) (off >>> 20));
            buf.clear().limit((int) Math.min(buf.capacity(), device.size() - off));
            device.write(off, buf);
        }
    }
}
