package dev.handoff.mirror;

import dev.handoff.device.DeviceException;

/**
 * Where a persistent write-intent bitmap keeps its bits (DESIGN §2.10): one bit per region of the
 * source, and a {@link BitmapHeader}. The kernel decides which bits to set and clear, and when to
 * make them durable ({@code WriteIntents}); a store only keeps them. {@link FileBitmapStore} keeps
 * them in a file; tests and the simulator bring stores that lose what was not synced.
 *
 * <p>Word {@code w} bit {@code b} is region {@code 64 w + b}. A store holds {@code
 * ceil(regionCount / 64)} words.
 *
 * <p>Threading: the kernel calls {@link #write}, {@link #sync} and {@link #stop} from one thread at
 * a time (it serializes its own I/O to the store); {@link #header()} from any thread.
 */
public interface BitmapStore extends AutoCloseable {

    /** The header in force since this store was opened (generation and state of this run). */
    BitmapHeader header();

    /** The bits as they were persisted when the store was opened (read then): a new array of its words. */
    long[] load();

    /** Writes words {@code [from, to)} of {@code words} at their place; durable only after {@link #sync}. */
    void write(long[] words, int from, int to) throws DeviceException;

    /** Makes every write so far durable. */
    void sync() throws DeviceException;

    /**
     * Records a clean stop: every bit written so far is durable, and the header says STOPPED with
     * these stamps of the images (durable when this returns).
     */
    void stop(long sourceStamp, long targetStamp) throws DeviceException;

    /** Releases the store (its lock, its file); writes nothing. */
    @Override
    void close();
}
