package dev.handoff.mirror;

/**
 * The mirror's guest gate ({@link GuestGate}) on its own, outside a filter, published in the
 * kernel's test-jar for checks that race it directly (the Lincheck wake-up tests of
 * {@code stress/}) and for benchmarks that measure it. Each method is the kernel method of the same
 * name, unchanged.
 *
 * <p>Threading: as {@link GuestGate}: every method from any thread, but {@link #exit} on the thread
 * whose {@link #enter} it ends; {@code onDrained} runs on a thread whose exit finds a closed gate
 * empty.
 */
public final class StandaloneGate {
    private final GuestGate gate;

    /** An open, empty gate; {@code onDrained} must not block and may run more than once per close. */
    public StandaloneGate(Runnable onDrained) {
        this.gate = new GuestGate(onDrained);
    }

    /** Enters, waiting while the gate is closed. */
    public void enter() {
        gate.enter();
    }

    /** Enters if the gate is open; otherwise backs out (which may run the drained callback) and returns false. */
    public boolean tryEnter() {
        return gate.tryEnter();
    }

    /** Leaves, on the thread that entered; an exit that finds a closed gate empty runs the drained callback. */
    public void exit() {
        gate.exit();
    }

    /** Holds new entries out; true if nothing was inside (drained now). */
    public boolean close() {
        return gate.close();
    }

    /** Lets entries in again and wakes those waiting. */
    public void open() {
        gate.open();
    }

    /** Whether the gate is closed now. */
    public boolean isClosed() {
        return gate.isClosed();
    }

    /** Whether the gate is closed and empty now. */
    public boolean isDrained() {
        return gate.isDrained();
    }

    /** Operations inside now. */
    public long inside() {
        return gate.inside();
    }
}
