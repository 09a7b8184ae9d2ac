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
        Thread runner = new Thread(task, "handoff-testkit-" + id);
        runner.setDaemon(true); // a hung device must not keep the JVM alive
        runner.start();
        try {
            task.get(limit.toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            runner.interrupt();
            CheckFailure f = new CheckFailure(id, seed, "did not finish within " + limit.toSeconds()
                    + " s: an operation of the device never returned (a lost wake-up, a deadlock, a reply that never came)",
                    null);
            f.setStackTrace(runner.getStackTrace());
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
                    + d.kind() + ": " + d.getMessage(), d);
        }
        return new CheckFailure(id, seed, "the check ended with " + t, t);
    }

    @Override
    public String toString() {
        return id;
    }
}
