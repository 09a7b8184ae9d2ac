package dev.handoff.testkit;

import dev.handoff.device.DeviceException;
import org.opentest4j.TestAbortedException;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One check of the kit: an id (what a failure and the verdict table name), the group it belongs
 * to, the clause of the contract it checks, and how many seeds a run takes by default.
 *
 * <p>{@link #run} runs one seed on a thread of its own and fails it after the check's time limit:
 * a device that hangs fails the check, it does not hang the build. Thread-safe: a check holds no
 * state between runs.
 */
public final class Check {

    /** The parts of the contract, then the two protocols the kernel exists for, on the user's devices. */
    public enum Group {
        /** One caller at a time: the bytes, the ranges, the buffers, the allocation map. */
        SEQUENTIAL("sequential contract"),
        /** Many threads at once: checksummed writes, read-your-writes, flush durability. */
        CONCURRENT("concurrent contract"),
        /** What fails, and how: DeviceException kinds, closed devices, faults of a backing device. */
        FAULTS("fault behaviour"),
        /** A mirror job copies one of the user's devices to another under guest writes. */
        MIRROR("mirror job"),
        /** Two ownership handles hand the user's device back and forth as an image. */
        OWNERSHIP("ownership handoff");

        private final String title;

        Group(String title) {
            this.title = title;
        }

        /** How reports name the group. */
        public String title() {
            return title;
        }
    }

    @FunctionalInterface
    interface Body {
        void run(DeviceFactory factory, long seed) throws Exception;
    }

    private final String id;
    private final Group group;
    private final String clause;
    private final int defaultSeeds;
    private final Body body;

    Check(String id, Group group, String clause, int defaultSeeds, Body body) {
        this.id = Objects.requireNonNull(id, "id");
        this.group = Objects.requireNonNull(group, "group");
        this.clause = Objects.requireNonNull(clause, "clause");
        this.defaultSeeds = defaultSeeds;
        this.body = Objects.requireNonNull(body, "body");
    }

    /** The kebab-case name a failure and the verdict table use. */
    public String id() {
        return id;
    }

    public Group group() {
        return group;
    }

    /** The clause of the contract this check holds the device to. */
    public String clause() {
        return clause;
    }

    /** Seeds a run takes unless told otherwise (1 for a check that draws nothing at random). */
    public int defaultSeeds() {
        return defaultSeeds;
    }

    /**
     * Runs the check once, with {@code seed}, on devices from {@code factory}.
     *
     * @throws CheckFailure where the device broke the contract (or threw what it must not, or took
     *     longer than {@code limit})
     * @throws TestAbortedException where the factory lacks a capability the check needs
     */
    public void run(DeviceFactory factory, long seed, Duration limit) {
        FutureTask<Void> task = new FutureTask<>(() -> {
            body.run(factory, seed);
            return null;
        });
        // Every thread the check starts (its crew, a job's copiers, a device's own) joins this group
        // by default: a check that hangs reports where each of them is, not only where it waits.
        ThreadGroup threads = new ThreadGroup("handoff-testkit-" + id + "-seed-" + seed);
        Thread runner = new Thread(threads, task, "handoff-testkit-" + id);
        runner.setDaemon(true); // a hung device must not keep the JVM alive
        runner.start();
        try {
            task.get(limit.toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            CheckFailure f = new CheckFailure(id, seed, "did not finish within " + limit.toSeconds()
                    + " s: an operation of the device never returned (a lost wake-up, a deadlock, a reply that never came);"
                    + " the stack is the check's, each of its other threads' follows as suppressed", null);
            f.setStackTrace(runner.getStackTrace());
            Thread.getAllStackTraces().forEach((t, stack) -> {
                if (t != runner && t.getThreadGroup() == threads) { // null once the thread ended
                    f.addSuppressed(new ThreadStack(t, stack));
                }
            });
            runner.interrupt();
            throw f;
        } catch (InterruptedException e) {
            runner.interrupt();
            Thread.currentThread().interrupt();
            throw new CheckFailure(id, seed, "interrupted", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof TestAbortedException a) {
                throw a;
            }
            throw failure(e.getCause(), seed);
        }
    }

    private CheckFailure failure(Throwable t, long seed) {
        if (t instanceof Violation v) {
            return new CheckFailure(id, seed, v.getMessage(), null);
        }
        if (t instanceof DeviceException d) {
            return new CheckFailure(id, seed, "an operation the contract allows failed: DeviceException "
                    + d.kind() + ": " + d.getMessage() + where(d), d);
        }
        return new CheckFailure(id, seed, "the check ended with " + t + where(t), t);
    }

    /**
     * The top frames of {@code t} and of its causes, for the failure's message: a report that
     * keeps only messages (a build summary, {@code handoff verify}'s table) still says where.
     */
    static String where(Throwable t) {
        StringBuilder b = new StringBuilder();
        Throwable c = t;
        for (int depth = 0; c != null && depth < 4; depth++, c = c.getCause()) {
            if (depth > 0) {
                b.append("\n  caused by ").append(c);
            }
            StackTraceElement[] stack = c.getStackTrace();
            if (stack.length == 0) {
                b.append("\n    (no frames: the JVM dropped them, as it does for an exception thrown often from"
                        + " compiled code unless run with -XX:-OmitStackTraceInFastThrow)");
            }
            int shown = Math.min(stack.length, depth == 0 ? 10 : 5);
            for (int i = 0; i < shown; i++) {
                b.append("\n    at ").append(stack[i]);
            }
            if (shown < stack.length) {
                b.append("\n    ... ").append(stack.length - shown).append(" more");
            }
        }
        return b.toString();
    }

    /** Where another thread of a check that timed out was, as a suppressed exception of its failure. */
    static final class ThreadStack extends Throwable {
        private static final long serialVersionUID = 1L;

        ThreadStack(Thread t, StackTraceElement[] stack) {
            super("thread '" + t.getName() + "' (" + t.getState() + ") was at", null, false, true);
            setStackTrace(stack);
        }
    }

    @Override
    public String toString() {
        return id;
    }
}
