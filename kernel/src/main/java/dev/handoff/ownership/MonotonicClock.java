package dev.handoff.ownership;

/**
 * Where an {@link OwnedImage} reads the time by which it measures the fencing recheck interval
 * (DESIGN §4.3): a monotonic clock in nanoseconds, with an arbitrary origin. Every handle the
 * public factories open uses {@link #SYSTEM}; a deterministic simulator gives its handles a virtual
 * clock (through the kernel test-jar's {@code UnregisteredImages}), so that it moves time across the
 * interval step by step instead of sleeping.
 *
 * <p>Threading: called from any of the handle's I/O threads at once; implementations are safe for
 * that and never go backwards.
 */
@FunctionalInterface
interface MonotonicClock {
    /** {@link System#nanoTime()}. */
    MonotonicClock SYSTEM = System::nanoTime;

    /** Now, in nanoseconds since an arbitrary origin; differences are what count. */
    long nanoTime();
}
