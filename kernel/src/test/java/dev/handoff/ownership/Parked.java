package dev.handoff.ownership;

import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * Where a test's thread waits inside {@link WriteAdmission}: parked in its {@code drain} (a
 * transition waiting for the writes in flight) or its {@code enterWrite} (a write queued behind
 * that transition). A thread parked there stays there until what it waits for happens, so what a
 * test does next happens while it waits, however slow the machine: no sleep orders the two.
 */
final class Parked {
    private static final long BOUND_NANOS = TimeUnit.SECONDS.toNanos(30);

    private Parked() {
    }

    /** Whether {@code t} is parked (WAITING) with {@code WriteAdmission.method} on its stack. */
    static boolean in(Thread t, String method) {
        return t != null && t.getState() == Thread.State.WAITING && Arrays.stream(t.getStackTrace())
                .anyMatch(f -> f.getClassName().equals(WriteAdmission.class.getName()) && f.getMethodName().equals(method));
    }

    /** Polls until {@code until} holds; fails, saying {@code what}, after 30 s. */
    static void await(BooleanSupplier until, java.util.function.Supplier<String> what) throws InterruptedException {
        long deadline = System.nanoTime() + BOUND_NANOS;
        while (!until.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("not within 30 s: " + what.get());
            }
            Thread.sleep(1);
        }
    }

    /** Polls until {@code t()} is parked in {@code WriteAdmission.method}. */
    static void awaitIn(java.util.function.Supplier<Thread> t, String method) throws InterruptedException {
        await(() -> in(t.get(), method), () -> "parked in WriteAdmission." + method + ": "
                + (t.get() == null ? "not started" : t.get().getState() + " at " + Arrays.toString(t.get().getStackTrace())));
    }
}
