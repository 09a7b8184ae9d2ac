package dev.handoff.testkit;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntFunction;

/**
 * The threads of one real-thread check: started together at a barrier, each failure kept (the
 * first one is rethrown, with the later ones as its suppressed exceptions), joined and rethrown
 * by the check's own thread. The checks' workers read {@link #failed()} to stop early once
 * another has failed.
 */
final class Crew {

    @FunctionalInterface
    interface Member {
        void run(int id) throws Exception;
    }

    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final List<Thread> threads = new ArrayList<>();
    private final CyclicBarrier start;

    private Crew(int parties) {
        this.start = new CyclicBarrier(parties);
    }

    /**
     * Starts {@code n} daemon threads, named by {@code name}, each running {@code member} with its
     * id once all of them (and, with {@code callerToo}, the caller's {@link #awaitStart}) reach the
     * start.
     */
    static Crew start(int n, boolean callerToo, IntFunction<String> name, Member member) {
        Crew crew = new Crew(callerToo ? n + 1 : n);
        for (int i = 0; i < n; i++) {
            int id = i;
            Thread t = new Thread(() -> {
                try {
                    crew.start.await();
                    member.run(id);
                } catch (Throwable e) {
                    // volatile CAS: the first failure is the one reported; later ones ride along with it
                    if (!crew.failure.compareAndSet(null, e) && crew.failure.get() != e) {
                        crew.failure.get().addSuppressed(e); // Throwable's own lock guards its list
                    }
                }
            }, name.apply(i));
            t.setDaemon(true);
            crew.threads.add(t);
            t.start();
        }
        return crew;
    }

    /** Starts {@code n} threads together and waits for them; rethrows the first failure. */
    static void run(int n, IntFunction<String> name, Member member) throws Exception {
        start(n, false, name, member).join();
    }

    /** The caller's arrival at the start, for a crew started with {@code callerToo}. */
    void awaitStart() throws Exception {
        start.await();
    }

    /** Whether a member has failed (volatile read: pairs with the failing member's CAS). */
    boolean failed() {
        return failure.get() != null;
    }

    /** Waits for every member, then rethrows the first failure. */
    void join() throws Exception {
        for (Thread t : threads) {
            t.join(); // Check.run bounds the whole check and interrupts this join on a hang
        }
        rethrow();
    }

    /** Rethrows the first failure, if any, as it was thrown. */
    void rethrow() throws Exception {
        Throwable e = failure.get();
        if (e instanceof Exception x) {
            throw x;
        }
        if (e instanceof Error x) {
            throw x;
        }
    }
}
