package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;

import java.nio.ByteBuffer;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The inspection seam of a {@link MirrorJob} for other modules' checks (jcstress harnesses,
 * Lincheck tests, benchmarks), published in the kernel's test-jar so that no other module puts
 * classes in the kernel's package or reflects into it. It reads the job's bitmap and claims to
 * state the key invariant, drives a claim as a write-blocking guest or the copier would, and
 * offers the few set-up steps a harness needs; it never changes what the kernel decides.
 *
 * <p>Threading: each method is as thread-safe as the kernel method it calls.
 */
public final class MirrorProbe {
    private MirrorProbe() {
    }

    /** The job's dirty bitmap. */
    public static DirtyBitmap bitmap(MirrorJob job) {
        return job.bitmap();
    }

    /** A write-blocking guest's claim of chunks {@code [first, last]}: ascending, waiting for held ones. */
    public static void claim(MirrorJob job, long first, long last) {
        job.claims().claim(first, last);
    }

    /** A copier's claim of {@code chunk}: never waits. */
    public static boolean tryClaim(MirrorJob job, long chunk) {
        return job.claims().tryClaim(chunk);
    }

    /** Releases chunks {@code [first, last]}, as a guest write or a copy does when it is done. */
    public static void release(MirrorJob job, long first, long last) {
        job.claims().release(first, last);
    }

    /** Whether {@code chunk} is claimed now. */
    public static boolean isClaimed(MirrorJob job, long chunk) {
        return job.claims().isClaimed(chunk);
    }

    /** Whether the job's guest gate is closed now (a drain holds new guest operations out). */
    public static boolean gateClosed(MirrorJob job) {
        return job.gate().isClosed();
    }

    /** Whether {@code guest}'s next write would be written through to the target (write-blocking mode). */
    public static boolean writesThrough(MirrorFilter guest) {
        return guest.writesThrough();
    }

    /* ---- Blocking guests under a scheduler that runs one thread at a time (the simulator) ---- */

    /**
     * Takes the locks the job's waiters sleep under (the claims' and the gate's): until
     * {@link #releaseWakeUps}, a waiter that a release or an open signals stays queued for its lock,
     * so it runs when the scheduler says, not in the middle of the step that woke it. Reentrant;
     * the kernel's own signalling on this thread is unaffected.
     */
    public static void holdWakeUps(MirrorJob job) {
        job.claims().waitLock().lock();
        job.gate().waitLock().lock();
    }

    /** Undoes one {@link #holdWakeUps}: the waiters it deferred may now take their lock and run. */
    public static void releaseWakeUps(MirrorJob job) {
        job.gate().waitLock().unlock();
        job.claims().waitLock().unlock();
    }

    /** Where {@code thread} sleeps in the job: at the closed guest gate, waiting for a claim, or neither (null). */
    public static String sleepsIn(MirrorJob job, Thread thread) {
        if (sleepsOn(job.gate().waitLock(), job.gate().waitCondition(), thread)) {
            return "gate";
        }
        if (sleepsOn(job.claims().waitLock(), job.claims().waitCondition(), thread)) {
            return "claim";
        }
        return null;
    }

    /**
     * Whether {@code thread} is parked on {@code condition}, holding no lock and queued for none, so
     * nothing it does can change until someone signals. A snapshot; exact for a scheduler that lets
     * no other thread run while it asks.
     */
    private static boolean sleepsOn(ReentrantLock lock, Condition condition, Thread thread) {
        if (lock.isLocked() || lock.hasQueuedThread(thread)) {
            return false;
        }
        boolean parked = thread.getState() == Thread.State.WAITING && LockSupport.getBlocker(thread) == condition;
        return parked && !lock.isLocked() && !lock.hasQueuedThread(thread);
    }

    /**
     * Lets a thread sleeping in the job go, for a scheduler abandoning a run (a crash, a failed
     * check): opens the gate and releases chunks {@code [first, last]}. The job is unusable after.
     */
    public static void abandonWaiters(MirrorJob job, long first, long last) {
        job.gate().open();
        job.claims().release(first, last);
    }

    /** A wake-up: the copier looks for work, as after a guest's mark or a timer. */
    public static void pump(MirrorJob job) {
        job.pump();
    }

    /** Leaves the copier no longer idle, as a guest's wake-up CAS does (set-up only). */
    public static void copierWoken(MirrorJob job) {
        job.copier().markWoken();
    }

    /** Queues {@code event} as the job does under its lock, and delivers the queue as a command's caller does. */
    public static void emitAndDeliver(MirrorJob job, MirrorEvent event) {
        job.emitForCheck(event);
        job.deliver();
    }

    /** Events queued and not yet delivered. */
    public static int queuedEvents(MirrorJob job) {
        return job.queuedEvents();
    }

    /**
     * Writes to {@code device} inside a guest gate, as the filter does, without marking: the gate's
     * cost alone ({@link GuestGate#enter()} / {@link GuestGate#exit()}, a volatile RMW on the
     * thread's own cell and a load of the gate's flag each). For benchmarks; the caller owns the
     * device.
     */
    public static BlockDevice gatedWrites(BlockDevice device) {
        GuestGate gate = new GuestGate(() -> { });
        return new Borrowed(device) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                gate.enter();
                try {
                    device.write(offset, src);
                } finally {
                    gate.exit();
                }
            }
        };
    }

    /**
     * Writes to {@code device}, then marks the written chunks dirty, as the filter does, without a
     * gate: the mark's cost alone ({@link DirtyBitmap#markRange}). For benchmarks; the caller owns
     * the device.
     */
    public static BlockDevice markedWrites(BlockDevice device, int granularity) {
        DirtyBitmap bitmap = new DirtyBitmap(device.size(), granularity);
        return new Borrowed(device) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                long length = src.remaining();
                try {
                    device.write(offset, src);
                } finally {
                    bitmap.markRange(offset, length);
                }
            }
        };
    }

    /** Forwards everything but the write each part measures; closing it closes nothing. */
    private abstract static class Borrowed extends ForwardingBlockDevice {
        Borrowed(BlockDevice device) {
            super(device);
        }

        @Override
        public void close() {
            // the caller owns the device
        }
    }
}
