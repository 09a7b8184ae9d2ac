package dev.handoff.mirror;

import java.util.ArrayList;
import java.util.List;

/**
 * The thread factory of {@link JobRuntime#threadPool}: makes its daemon threads
 * {@code handoff-copier-N} and keeps them, so that {@link #lower} can give every one of them,
 * and every one made after it, {@link Thread#MIN_PRIORITY} (why: {@link JobRuntime#threadPool}).
 *
 * <p>Threading: the pool calls {@link #newThread} from whichever thread submits a task while the
 * pool is short of threads, the job calls {@link #lower} from the thread that delivers its Ready
 * event; both hold this object's monitor, so a thread made concurrently with {@link #lower} is
 * either in the list it walks or made after it at the low priority. A thread not yet started takes
 * the priority it was given when it starts.
 */
final class CopierThreads {
    private final List<Thread> threads = new ArrayList<>();
    private int made;
    private boolean lowered;

    synchronized Thread newThread(Runnable r) {
        Thread t = new Thread(r, "handoff-copier-" + ++made);
        t.setDaemon(true);
        if (lowered) {
            t.setPriority(Thread.MIN_PRIORITY);
        }
        threads.removeIf(old -> old.getState() == Thread.State.TERMINATED); // a pool replaces a thread that died
        threads.add(t);
        return t;
    }

    /** From now on every thread of the pool runs at {@link Thread#MIN_PRIORITY}. */
    synchronized void lower() {
        lowered = true;
        for (Thread t : threads) {
            t.setPriority(Thread.MIN_PRIORITY); // a no-op on a thread that has ended
        }
    }

    /** The threads made so far that have not ended (for tests). */
    synchronized List<Thread> live() {
        List<Thread> out = new ArrayList<>();
        for (Thread t : threads) {
            if (t.getState() != Thread.State.TERMINATED) {
                out.add(t);
            }
        }
        return out;
    }
}
