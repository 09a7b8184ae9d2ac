package dev.handoff.stress;

import org.jetbrains.lincheck.Lincheck;

/**
 * {@code Lincheck.runConcurrentTest} with Lincheck's class instrumentation paid for before the
 * checked run.
 *
 * <p>Lincheck instruments classes lazily: the first invocation that touches a class retransforms
 * it (and its hierarchy: the kernel's mirror classes, the JDK's locks, queues and latches) on the
 * test's own thread. That time counts against the invocation's wall-clock limit, 30 s in Lincheck
 * 3.7, which {@code runConcurrentTest} cannot change. The first invocation in a test JVM took 12 to
 * 27 s (median 20 s, 8 runs) on 2 cores at load 7 to 9, the later ones about 0.3 s; at such a load
 * the first invocation can pass the limit, and Lincheck then reports
 * {@code = Concurrent test has hung =} with no interleaving (a hang it finds itself, every thread
 * blocked, comes with one).
 *
 * <p>So {@link #run} first runs the block for one invocation, which instruments what the block
 * uses (Lincheck keeps the transformed classes for later runs in the JVM). Of that warm-up's
 * failures exactly one is let through: the hang report with nothing after its title. Every other
 * warm-up failure fails the test, and so does every failure of the run that follows, for the
 * asked number of invocations, a hang included: what the warm-up can hide is a hang of its own
 * single invocation, never a failed assertion.
 */
final class WarmedConcurrentRun {
    /** Lincheck's whole message when an invocation passed its wall-clock limit. */
    static final String HANG_WITHOUT_TRACE = "= Concurrent test has hung =";

    private WarmedConcurrentRun() {
    }

    /** One warm-up invocation (a hang without a trace ignored), then {@code invocations} checked ones. */
    static void run(int invocations, Runnable block) {
        try {
            Lincheck.runConcurrentTest(1, block);
        } catch (AssertionError e) {
            if (!isHangWithoutTrace(e)) {
                throw e;
            }
            System.err.println("Lincheck warm-up invocation passed the wall-clock limit while instrumenting"
                    + " classes; the checked run follows");
        }
        Lincheck.runConcurrentTest(invocations, block);
    }

    /** Whether {@code e} is Lincheck's report of an invocation past its limit: the title and nothing else. */
    static boolean isHangWithoutTrace(Throwable e) {
        return e.getMessage() != null && e.getMessage().strip().equals(HANG_WITHOUT_TRACE);
    }
}
