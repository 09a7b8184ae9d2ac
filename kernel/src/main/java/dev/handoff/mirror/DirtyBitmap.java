package dev.handoff.mirror;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * One dirty bit per chunk of a device, lock-free, with a summary level for fast scans.
 *
 * <h2>Protocol overview</h2>
 * Guest writers {@link #markRange mark} the chunks they wrote, after writing the source; the
 * copier {@link #nextDirty finds} dirty chunks and {@link #testAndClear clears} each one before
 * it reads the source (DESIGN §3.1 and §3.2). Marks race with clears and scans; the
 * invariants kept are:
 * <ol>
 *   <li><b>No lost mark.</b> Every bit update is one atomic read-modify-write on its word, so a
 *       mark and a clear of different chunks in the same word never overwrite each other.</li>
 *   <li><b>A mark is never read past.</b> When a mark finds the chunk already dirty it writes
 *       nothing (the word is shared and hot); but then the caller's preceding source write must
 *       still be seen by the copy that clears the bit. The caller wrote the data and then read
 *       the word; the copier clears the word and then reads the data: a store-load pattern on
 *       both sides. {@link #markRange} therefore issues a {@link VarHandle#fullFence()} before its
 *       first read, pairing with the fence the copier issues after its clear
 *       ({@code CopyOperation}). Either the copier's read sees the guest's data, or the guest's
 *       read sees the cleared bit and sets it again.</li>
 *   <li><b>A completed mark is visible to a later scan.</b> A summary bit per word says "this word
 *       may be non-zero". Markers set the word bit, then make sure the summary bit is set.
 *       Only {@link #nextDirty} clears summary bits, lazily, when it finds the word empty: it
 *       clears the summary bit and then re-reads the word, restoring the bit if a marker got in
 *       between. Summary bits are never cleared by {@link #testAndClear}, which keeps the clear
 *       path to one atomic operation.</li>
 * </ol>
 * The third guarantee holds for one scanning thread at a time, which is how the copier uses the
 * bitmap (its scans are serialized under the job's lock). Concurrent scans are memory-safe and
 * never lose a bit, but one scan may transiently miss a chunk while another repairs its summary
 * bit.
 *
 * <h2>Layout</h2>
 * <pre>
 *   words[w]   bit b  = chunk 64*w + b is dirty          (chunkCount bits, rounded up to 64)
 *   summary[s] bit b  = words[64*s + b] may be non-zero  (one bit per word)
 *
 *   chunk c:  word w = c >>> 6, bit c & 63;   summary s = c >>> 12, bit (c >>> 6) & 63
 * </pre>
 * Memory: one bit per chunk plus one bit per 64 chunks. 16 M chunks (1 TiB at 64 KiB) take
 * 2 MiB of words and 32 KiB of summary; a scan of the empty bitmap reads only the summary.
 *
 * <p>{@link #count()} and {@link #dirtyBytes()} are exact when no mark or clear runs
 * concurrently, and otherwise a value the bitmap held at some point during the call, per word.
 *
 * <h2>Access modes</h2>
 * Every access to {@code words} and {@code summary} goes through an accessor named by its mode
 * (CONTRIBUTING, "One accessor convention"): {@code lv} volatile load; {@code getAndOr} and
 * {@code getAndAnd} volatile read-modify-writes ({@code VarHandle.getAndBitwiseOr/And}).
 * <ul>
 *   <li>{@code words}: {@link #lvWord} everywhere it is read; {@link #getAndOrWord} by marks,
 *       publishing the marker's data writes to whoever clears the bit later (with the fence of
 *       point 2); {@link #getAndAndWord} by clears, pairing with it. Stronger than needed in
 *       {@link #count()} and {@link #anyDirty}: an opaque load would give the per-word snapshot
 *       they promise, and one volatile accessor serves every reader (on x86-64 the two are one
 *       plain load).</li>
 *   <li>{@code summary}: {@link #lvSummary} by scans, pairing with the marker's
 *       {@link #getAndOrSummary}; {@link #getAndAndSummary} only by the scan's lazy repair,
 *       followed by a volatile re-read of the word (point 3).</li>
 * </ul>
 */
public final class DirtyBitmap {
    private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);

    private final long deviceSize;
    private final int granularityShift;
    private final long chunkCount;
    private final long[] words;
    private final long[] summary;

    /**
     * A clean bitmap over a device of {@code deviceSize} bytes split into chunks of
     * {@code granularity} bytes (a power of two); the last chunk may be partial.
     */
    public DirtyBitmap(long deviceSize, int granularity) {
        if (deviceSize < 0) {
            throw new IllegalArgumentException("device size must be >= 0, got " + deviceSize);
        }
        if (granularity <= 0 || Integer.bitCount(granularity) != 1) {
            throw new IllegalArgumentException("granularity must be a power of two, got " + granularity);
        }
        this.deviceSize = deviceSize;
        this.granularityShift = Integer.numberOfTrailingZeros(granularity);
        this.chunkCount = (deviceSize + granularity - 1) >>> granularityShift;
        long wordCount = (chunkCount + 63) >>> 6;
        if (wordCount > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("too many chunks: " + chunkCount);
        }
        this.words = new long[(int) wordCount];
        this.summary = new long[(int) ((wordCount + 63) >>> 6)];
    }

    /** Number of chunks. */
    public long chunkCount() {
        return chunkCount;
    }

    /** Bytes per chunk. */
    public int granularity() {
        return 1 << granularityShift;
    }

    /** Size of the device this bitmap covers. */
    public long deviceSize() {
        return deviceSize;
    }

    /** The chunk that holds byte {@code offset}. */
    public long chunkOf(long offset) {
        return offset >>> granularityShift;
    }

    /** First byte of {@code chunk}. */
    public long offsetOf(long chunk) {
        return chunk << granularityShift;
    }

    /** Length in bytes of the run of {@code count} chunks starting at {@code chunk} (the last may be partial). */
    public long lengthOf(long chunk, long count) {
        return Math.min(deviceSize, offsetOf(chunk + count)) - offsetOf(chunk);
    }

    /**
     * Marks every chunk that {@code [offset, offset + length)} touches, unaligned ends included.
     * Call it after the data write it records has returned. A zero length marks nothing.
     *
     * @return true if at least one chunk went from clean to dirty (the copier may need waking)
     */
    public boolean markRange(long offset, long length) {
        checkRange(offset, length);
        if (length == 0) {
            return false;
        }
        long first = offset >>> granularityShift;
        long last = (offset + length - 1) >>> granularityShift;
        // Store-load barrier: the caller's data writes are ordered before our reads of the words
        // below. Pairs with the copier's fullFence after testAndClear (class comment, point 2).
        VarHandle.fullFence();
        boolean newlyDirty = false;
        for (int w = (int) (first >>> 6), lastWord = (int) (last >>> 6); w <= lastWord; w++) {
            long mask = wordMask(w, first, last);
            newlyDirty |= setBits(w, mask);
        }
        return newlyDirty;
    }

    /**
     * Clears the chunks that {@code [offset, offset + length)} covers <em>completely</em>: a chunk
     * the range covers only in part keeps its bit, since the part the range does not cover may
     * still differ on the target. The device's last chunk, when it is shorter than the
     * granularity, is covered completely by a range that reaches the device's end.
     *
     * <p>Used by a write-blocking guest write that holds the claim of every chunk it touches, just
     * before its source write (DESIGN §3.4). One volatile read-modify-write per word it changes,
     * then a {@link VarHandle#fullFence()} so that the caller's source write cannot become visible
     * before the clear. That pairs with the fence in {@link #markRange}, as the copier's clear
     * does: a background writer racing on the same chunk (a discard, or a write that entered before
     * the switch to write-blocking) either reads the bit cleared and sets it again, or read it
     * before our clear, and then its data landed before ours and ours overwrote it.
     *
     * @return true if at least one of those chunks was dirty
     */
    public boolean clearCovered(long offset, long length) {
        checkRange(offset, length);
        long end = offset + length;
        long first = (offset + granularity() - 1) >>> granularityShift; // round up to a chunk start
        long stop = end == deviceSize ? chunkCount : end >>> granularityShift; // first chunk not covered
        if (first >= stop) {
            return false;
        }
        long last = stop - 1;
        boolean cleared = false;
        for (int w = (int) (first >>> 6), lastWord = (int) (last >>> 6); w <= lastWord; w++) {
            long mask = wordMask(w, first, last);
            // Volatile read first: a write-blocking guest that rewrites clean chunks (the steady
            // state after READY) leaves the shared word alone.
            if ((lvWord(w) & mask) != 0) {
                long old = getAndAndWord(w, ~mask); // cannot lose a concurrent mark of another bit in the word
                cleared |= (old & mask) != 0;
            }
        }
        // Store-load (and store-store) barrier: the clear before the caller's source write and
        // before its later reads. Pairs with the fence in markRange.
        VarHandle.fullFence();
        return cleared;
    }

    /** Marks one chunk; same ordering as {@link #markRange}. Returns true if it was clean. */
    public boolean mark(long chunk) {
        checkChunk(chunk);
        VarHandle.fullFence(); // see markRange
        return setBits((int) (chunk >>> 6), 1L << chunk);
    }

    /**
     * Clears {@code chunk} and returns whether it was dirty. One atomic read-modify-write
     * (volatile), which publishes the clear before the caller's subsequent fence and source
     * read.
     */
    public boolean testAndClear(long chunk) {
        checkChunk(chunk);
        long bit = 1L << chunk;
        int w = (int) (chunk >>> 6);
        long old = getAndAndWord(w, ~bit); // cannot lose a concurrent mark of another bit in the word
        return (old & bit) != 0;
    }

    /** Whether {@code chunk} is dirty (a volatile read of its word). */
    public boolean isDirty(long chunk) {
        checkChunk(chunk);
        return (lvWord((int) (chunk >>> 6)) & (1L << chunk)) != 0;
    }

    /** Whether any chunk that {@code [offset, offset + length)} touches is dirty. */
    public boolean anyDirty(long offset, long length) {
        checkRange(offset, length);
        if (length == 0) {
            return false;
        }
        long first = offset >>> granularityShift;
        long last = (offset + length - 1) >>> granularityShift;
        for (int w = (int) (first >>> 6), lastWord = (int) (last >>> 6); w <= lastWord; w++) {
            if ((lvWord(w) & wordMask(w, first, last)) != 0) {
                return true;
            }
        }
        return false;
    }

    /**
     * The first dirty chunk at or after {@code from}, or -1 if there is none. Skips empty regions
     * through the summary; see the class comment for the single-scanner guarantee.
     */
    public long nextDirty(long from) {
        if (from < 0) {
            throw new IllegalArgumentException("negative chunk " + from);
        }
        if (from >= chunkCount) {
            return -1;
        }
        int w = (int) (from >>> 6);
        long word = lvWord(w) & (-1L << from);
        if (word != 0) {
            return ((long) w << 6) + Long.numberOfTrailingZeros(word);
        }
        int nextWord = w + 1;
        if (nextWord >= words.length) {
            return -1;
        }
        int s = nextWord >>> 6;
        long pending = lvSummary(s) & (-1L << nextWord);
        while (true) {
            while (pending != 0) {
                int candidate = (s << 6) + Long.numberOfTrailingZeros(pending);
                pending &= pending - 1;
                long found = scanWord(candidate);
                if (found >= 0) {
                    return found;
                }
            }
            if (++s >= summary.length) {
                return -1;
            }
            pending = lvSummary(s);
        }
    }

    /** Exact number of dirty chunks when quiescent (see class comment). */
    public long count() {
        long total = 0;
        for (int w = 0; w < words.length; w++) {
            total += Long.bitCount(lvWord(w));
        }
        return total;
    }

    /** Bytes covered by dirty chunks, counting a dirty partial last chunk by its real length. */
    public long dirtyBytes() {
        long n = count();
        if (n == 0) {
            return 0;
        }
        long bytes = n << granularityShift;
        long lastChunk = chunkCount - 1;
        if (isDirty(lastChunk)) {
            bytes -= offsetOf(chunkCount) - deviceSize;
        }
        return bytes;
    }

    /** Marks every chunk. */
    public void markAll() {
        for (int w = 0; w < words.length; w++) {
            long mask = w == words.length - 1 ? lastWordMask() : -1L;
            setBits(w, mask);
        }
    }

    /**
     * Clears every chunk. Racing marks either survive or are cleared, chunk by chunk; summary
     * bits are left for {@link #nextDirty} to repair.
     */
    public void clearAll() {
        for (int w = 0; w < words.length; w++) {
            if (lvWord(w) != 0) {
                getAndAndWord(w, 0L); // an RMW rather than a store: a racing mark keeps a well-defined order
            }
        }
    }

    /** Memory held by the bit arrays, in bytes. */
    public long memoryBytes() {
        return 8L * (words.length + summary.length);
    }

    /* ---- Word access ---- */

    /**
     * Sets {@code mask} in word {@code w} and makes sure its summary bit is set. Reads before it
     * writes, so re-marking a dirty chunk leaves the shared cache line alone.
     */
    private boolean setBits(int w, long mask) {
        long word = lvWord(w);
        boolean newlyDirty = false;
        if ((word & mask) != mask) {
            long old = getAndOrWord(w, mask);
            newlyDirty = (old & mask) != mask;
        }
        // Whether we set the bits or found them set, the summary must now cover this word: a
        // scanner may have cleared it after seeing the word empty (before our RMW). The scanner
        // re-reads the word after clearing (scanWord), so one of the two always restores it.
        int s = w >>> 6;
        long bit = 1L << w;
        if ((lvSummary(s) & bit) == 0) {
            getAndOrSummary(s, bit);
        }
        return newlyDirty;
    }

    /** First dirty chunk of word {@code w}, repairing a stale summary bit; -1 if the word is empty. */
    private long scanWord(int w) {
        long word = lvWord(w);
        if (word == 0) {
            int s = w >>> 6;
            long bit = 1L << w;
            // Clear, then re-read the word: a marker that set the word before our clear but read
            // the summary as still set is seen by this re-read (a store-load pair with the marker).
            getAndAndSummary(s, ~bit);
            word = lvWord(w);
            if (word == 0) {
                return -1;
            }
            getAndOrSummary(s, bit);
        }
        return ((long) w << 6) + Long.numberOfTrailingZeros(word);
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private long lvWord(int w) {
        return (long) LONGS.getVolatile(words, w); // pairs with getAndOrWord and getAndAndWord
    }

    /** Volatile RMW: publishes the marker's data writes (after its fence) to whoever clears the bit. */
    private long getAndOrWord(int w, long bits) {
        return (long) LONGS.getAndBitwiseOr(words, w, bits);
    }

    /** Volatile RMW: the clear is ordered before the caller's fence and its later reads. */
    private long getAndAndWord(int w, long bits) {
        return (long) LONGS.getAndBitwiseAnd(words, w, bits);
    }

    private long lvSummary(int s) {
        return (long) LONGS.getVolatile(summary, s); // pairs with getAndOrSummary
    }

    /** Volatile RMW: a marker's summary bit, after its word RMW. */
    private long getAndOrSummary(int s, long bits) {
        return (long) LONGS.getAndBitwiseOr(summary, s, bits);
    }

    /** Volatile RMW: the scan's lazy clear of a summary bit, before its re-read of the word. */
    private long getAndAndSummary(int s, long bits) {
        return (long) LONGS.getAndBitwiseAnd(summary, s, bits);
    }

    private long wordMask(int w, long first, long last) {
        long wordFirst = (long) w << 6;
        long lo = Math.max(first, wordFirst) - wordFirst;
        long hi = Math.min(last, wordFirst + 63) - wordFirst;
        long upper = hi == 63 ? -1L : (1L << (hi + 1)) - 1;
        return upper & (-1L << lo);
    }

    private long lastWordMask() {
        int tail = (int) (chunkCount & 63);
        return tail == 0 ? -1L : (1L << tail) - 1;
    }

    private void checkChunk(long chunk) {
        if (chunk < 0 || chunk >= chunkCount) {
            throw new IndexOutOfBoundsException("chunk " + chunk + " outside [0, " + chunkCount + ")");
        }
    }

    private void checkRange(long offset, long length) {
        if (offset < 0 || length < 0 || offset > deviceSize || length > deviceSize - offset) {
            throw new IndexOutOfBoundsException("range " + offset + "+" + length + " outside the device of "
                    + deviceSize + " bytes");
        }
    }
}
