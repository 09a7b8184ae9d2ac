package dev.handoff.ownership;

/**
 * The assertions of the trace scenarios that a handle refused an operation, shared by the
 * kernel's {@code OwnershipTraceScenarios} and the coordination module's
 * {@code ZkOwnershipTraceScenarios} (both run by the specs' trace tests). A failure is an
 * {@link IllegalStateException}, as are the scenarios' other checks. Stateless.
 */
public final class Refusals {
    private Refusals() {
    }

    /** An operation under test. */
    public interface Call {
        void run() throws Exception;
    }

    /** {@code call} is refused by the handle's state or epoch; any other outcome fails. */
    public static void refused(Call call) throws Exception {
        try {
            call.run();
        } catch (ImageInactiveException | ImageFencedException expected) {
            return;
        }
        throw new IllegalStateException("expected a refusal");
    }

    /** {@code call} is refused by the epoch: the handle re-read the record and saw a newer one. */
    public static void fenced(Call call) throws Exception {
        try {
            call.run();
        } catch (ImageFencedException expected) {
            return;
        }
        throw new IllegalStateException("expected a refusal as fenced");
    }
}
