package dev.handoff.mirror;

/**
 * The mirror's guest gate ({@link GuestGate}) on its own, outside a filter, published in the
 * kernel's test-jar for checks that race it directly (the Lincheck wake-up tests of
 * {@code stress/}) and for benchmarks that measure it. Each method is the kernel method of the same
 * name, unchanged.
 *
 * <p>Threading: as {@link GuestGate}: every method from any thread; {@code onDrained} runs on the
 * thread whose exit empties a closed gate.
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

    /** Leaves; the last exit from a closed gate runs the drained callback. */
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

    /** Operations inside now. */
    public long inside() {
        return gate.inside();
    }
}
