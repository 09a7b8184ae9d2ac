package dev.handoff.properties.sim;

/**
 * A property of a simulation failed. {@link #property()} names the property (the shrinker keeps
 * only reductions that fail the same one); {@link #actionIndex()} is the action being applied, or
 * -1 for a check at the end of a run.
 */
public final class PropertyViolation extends AssertionError {
    private static final long serialVersionUID = 1L;

    private final String property;
    private final int actionIndex;

    public PropertyViolation(String property, int actionIndex, String message) {
        super("[" + property + "] " + (actionIndex >= 0 ? "at action " + actionIndex + ": " : "at the end: ")
                + message);
        this.property = property;
        this.actionIndex = actionIndex;
    }

    public PropertyViolation(String property, int actionIndex, String message, Throwable cause) {
        this(property, actionIndex, message);
        initCause(cause);
    }

    public String property() {
        return property;
    }

    public int actionIndex() {
        return actionIndex;
    }
}
