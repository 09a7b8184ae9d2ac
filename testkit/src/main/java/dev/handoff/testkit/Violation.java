package dev.handoff.testkit;

/** Thrown by a check's body where the device broke its contract; {@link Check} adds the check and the seed. */
final class Violation extends RuntimeException {
    private static final long serialVersionUID = 1L;

    Violation(String message) {
        super(message, null, false, false);
    }

    static Violation of(String format, Object... args) {
        return new Violation(String.format(java.util.Locale.ROOT, format, args));
    }
}
