package dev.handoff.mirror;

import dev.handoff.device.DeviceException;

import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A {@link BitmapStore} in a file (DESIGN §2.10), held with an exclusive lock for as long as it is
 * open, so that two jobs never use one bitmap.
 *
 * <pre>
 *   offset 0      header slot 0 (2 KiB)   the slot of the even generations
 *   offset 2048   header slot 1 (2 KiB)   the slot of the odd generations
 *   offset 4096   the bits: ceil(regionCount / 64) little-endian 64-bit words
 * </pre>
 * A header is rewritten into the slot that is not in force, then synced: a crash part way leaves
 * the old header valid (each slot has a CRC-32C). The file is created whole under a temporary name,
 * synced and renamed into place, then its directory synced: after a crash it is either absent or
 * complete. Opening refuses, with a {@link BitmapRefusedException} and without changing anything,
 * a file that is damaged, of a newer version, for other images, stale, or locked.
 *
 * <p>Threading: as {@link BitmapStore} says, one writer at a time; the channel's positional writes
 * need no other lock.
 */
public final class FileBitmapStore implements BitmapStore {
    static final int BITS_OFFSET = 2 * BitmapHeader.SLOT_BYTES;
    private static final AtomicLong TEMP_COUNTER = new AtomicLong(); // uniqueness only; orders nothing
    private static final long PID = ProcessHandle.current().pid();
    private static final VarHandle HEADER;

    static {
        try {
            HEADER = MethodHandles.lookup().findVarHandle(FileBitmapStore.class, "header", BitmapHeader.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final Path file;
    private final FileChannel channel;
    private final FileLock lock;
    private final int wordCount;
    private final long[] loaded;
    private final BitmapHeader found;
    /**
     * The header in force. One writer ({@link #stop}: {@link #svHeader}); any thread reads it with
     * {@link #lvHeader}, pairing with that store (the accessor convention of CONTRIBUTING). A
     * release store and an acquire load would do: the header is immutable, and nothing else is
     * published through it.
     */
    @SuppressWarnings("unused") // through HEADER
    private BitmapHeader header;

    private FileBitmapStore(Path file, FileChannel channel, FileLock lock, BitmapHeader found, BitmapHeader header,
            long[] loaded) {
        this.file = file;
        this.found = found;
        this.channel = channel;
        this.lock = lock;
        svHeader(header);
        this.wordCount = wordCount(header);
        this.loaded = loaded;
    }

    static int wordCount(BitmapHeader h) {
        long words = (h.regionCount() + 63) >>> 6;
        if (words > Integer.MAX_VALUE / 8) {
            throw new IllegalArgumentException("too many regions: " + h.regionCount());
        }
        return (int) words;
    }

    /**
     * Creates the bitmap file for {@code header} (its generation 1), replacing any file there that
     * no one holds: every bit set if {@code allDirty} (a new job that copies everything: the bits
     * are the bulk pass's progress), else none. Durable when it returns, and held until
     * {@link #close()}.
     *
     * @throws BitmapRefusedException LOCKED if another process or handle holds the file there
     */
    public static FileBitmapStore create(Path file, BitmapHeader header, boolean allDirty)
            throws DeviceException, BitmapRefusedException {
        Path target = file.toAbsolutePath().normalize();
        Path dir = target.getParent();
        Path temp = dir.resolve("." + target.getFileName() + "." + PID + "." + TEMP_COUNTER.incrementAndGet() + ".tmp");
        FileChannel old = null;
        FileLock oldLock = null;
        FileChannel ch = null;
        FileLock lock = null;
        boolean done = false;
        try {
            if (Files.exists(target)) {
                old = FileChannel.open(target, StandardOpenOption.READ, StandardOpenOption.WRITE);
                oldLock = tryLock(old, target);
            }
            ch = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
            lock = tryLock(ch, temp);
            int words = wordCount(header);
            long[] bits = new long[words];
            if (allDirty) {
                java.util.Arrays.fill(bits, -1L);
                long tail = header.regionCount() & 63;
                if (words > 0 && tail != 0) {
                    bits[words - 1] = (1L << tail) - 1;
                }
            }
            writeFully(ch, ByteBuffer.wrap(new byte[BITS_OFFSET]), 0);
            writeFully(ch, ByteBuffer.wrap(header.encode()), slotOffset(header.generation()));
            writeFully(ch, encode(bits, 0, words), BITS_OFFSET);
            ch.force(true);
            try {
                Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                throw new IOException("the file system cannot rename atomically", e);
            }
            forceDirectory(dir);
            done = true;
            return new FileBitmapStore(target, ch, lock, null, header, bits);
        } catch (IOException e) {
            throw ioError("cannot create write-intent bitmap " + target, e);
        } finally {
            if (!done) {
                release(lock, ch);
                try {
                    Files.deleteIfExists(temp);
                } catch (IOException ignored) {
                    // a stray temporary file: harmless, named as such
                }
            }
            release(oldLock, old);
        }
    }

    /**
     * Opens the bitmap file for a job on the images {@code expected} names (its sizes and
     * identities; its generation, state and region size are not compared), whose current stamps are
     * {@code sourceStamp} and {@code targetStamp} (0: unknown, not compared). On success the header
     * is rewritten, ACTIVE, at the next generation, and synced; the file is held until
     * {@link #close()}. On a refusal nothing is written.
     *
     * @throws BitmapRefusedException LOCKED, CORRUPT, UNSUPPORTED_VERSION, FOREIGN or STALE
     * @throws DeviceException if the file cannot be read or the new header cannot be written
     */
    public static FileBitmapStore open(Path file, BitmapHeader expected, long sourceStamp, long targetStamp)
            throws DeviceException, BitmapRefusedException {
        Path target = file.toAbsolutePath().normalize();
        FileChannel ch = null;
        FileLock lock = null;
        boolean done = false;
        try {
            ch = FileChannel.open(target, StandardOpenOption.READ, StandardOpenOption.WRITE);
            lock = tryLock(ch, target);
            BitmapHeader found = readHeader(ch, target);
            check(found, expected, sourceStamp, targetStamp, target);
            int words = wordCount(found);
            long[] bits = new long[words];
            ByteBuffer b = ByteBuffer.allocate(words * 8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, b, BITS_OFFSET);
            b.flip();
            b.asLongBuffer().get(bits);
            long tail = found.regionCount() & 63;
            if (words > 0 && tail != 0 && (bits[words - 1] & -(1L << tail)) != 0) {
                throw new BitmapRefusedException(BitmapRefusedException.Reason.CORRUPT,
                        target + " is damaged: bits set past the last region");
            }
            BitmapHeader next = found.nextGeneration();
            writeFully(ch, ByteBuffer.wrap(next.encode()), slotOffset(next.generation()));
            ch.force(true);
            done = true;
            return new FileBitmapStore(target, ch, lock, found, next, bits);
        } catch (NoSuchFileException e) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR, "no write-intent bitmap at " + target, e);
        } catch (IOException e) {
            throw ioError("cannot open write-intent bitmap " + target, e);
        } finally {
            if (!done) {
                release(lock, ch);
            }
        }
    }

    /**
     * The header of the bitmap file, read without taking its lock or writing anything (for status
     * displays; it may be changing under a live job).
     *
     * @throws BitmapRefusedException CORRUPT or UNSUPPORTED_VERSION
     */
    public static BitmapHeader inspect(Path file) throws DeviceException, BitmapRefusedException {
        Path target = file.toAbsolutePath().normalize();
        try (FileChannel ch = FileChannel.open(target, StandardOpenOption.READ)) {
            return readHeader(ch, target);
        } catch (NoSuchFileException e) {
            throw new DeviceException(DeviceException.Kind.IO_ERROR, "no write-intent bitmap at " + target, e);
        } catch (IOException e) {
            throw ioError("cannot read write-intent bitmap " + target, e);
        }
    }

    private static void check(BitmapHeader found, BitmapHeader expected, long sourceStamp, long targetStamp,
            Path file) throws BitmapRefusedException {
        if (!found.sourceId().equals(expected.sourceId()) || found.sourceSize() != expected.sourceSize()) {
            throw new BitmapRefusedException(BitmapRefusedException.Reason.FOREIGN, file + " belongs to another source ("
                    + found.sourceId() + ", " + found.sourceSize() + " bytes), not " + expected.sourceId() + " ("
                    + expected.sourceSize() + " bytes)");
        }
        if (!found.targetId().equals(expected.targetId()) || found.targetSize() != expected.targetSize()) {
            throw new BitmapRefusedException(BitmapRefusedException.Reason.FOREIGN, file + " belongs to another target ("
                    + found.targetId() + ", " + found.targetSize() + " bytes), not " + expected.targetId() + " ("
                    + expected.targetSize() + " bytes)");
        }
        if (found.state() == BitmapHeader.State.STOPPED) {
            if (sourceStamp != 0 && found.sourceStamp() != 0 && sourceStamp != found.sourceStamp()) {
                throw new BitmapRefusedException(BitmapRefusedException.Reason.STALE, file
                        + " is stale: the source changed after its job stopped, so it no longer says what differs");
            }
            if (targetStamp != 0 && found.targetStamp() != 0 && targetStamp != found.targetStamp()) {
                throw new BitmapRefusedException(BitmapRefusedException.Reason.STALE, file
                        + " is stale: the target changed after its job stopped, so it no longer says what differs");
            }
        }
    }

    private static BitmapHeader readHeader(FileChannel ch, Path file) throws IOException, BitmapRefusedException {
        long size = ch.size();
        if (size < BITS_OFFSET) {
            throw new BitmapRefusedException(BitmapRefusedException.Reason.CORRUPT, file
                    + " is not a write-intent bitmap (" + size + " bytes, shorter than its header)");
        }
        byte[] slots = new byte[BITS_OFFSET];
        readFully(ch, ByteBuffer.wrap(slots), 0);
        BitmapHeader best = null;
        int newer = 0;
        for (int i = 0; i < 2; i++) {
            byte[] slot = java.util.Arrays.copyOfRange(slots, i * BitmapHeader.SLOT_BYTES,
                    (i + 1) * BitmapHeader.SLOT_BYTES);
            BitmapHeader.Slot s = BitmapHeader.decode(slot);
            if (s.kind() == BitmapHeader.SlotKind.NEWER_VERSION) {
                newer = s.version();
            } else if (s.kind() == BitmapHeader.SlotKind.VALID && slotOffset(s.header().generation()) == i * (long) BitmapHeader.SLOT_BYTES
                    && (best == null || s.header().generation() > best.generation())) {
                best = s.header();
            }
        }
        if (newer != 0) {
            throw new BitmapRefusedException(BitmapRefusedException.Reason.UNSUPPORTED_VERSION, file
                    + " was written by a newer Handoff (bitmap format version " + newer + "; this one reads version "
                    + BitmapHeader.VERSION + ")");
        }
        if (best == null) {
            throw new BitmapRefusedException(BitmapRefusedException.Reason.CORRUPT, file
                    + " is not a write-intent bitmap, or its header is damaged");
        }
        long expectedSize = BITS_OFFSET + 8L * wordCount(best);
        if (size != expectedSize) {
            throw new BitmapRefusedException(BitmapRefusedException.Reason.CORRUPT, file + " is damaged: " + size
                    + " bytes where its header says " + expectedSize);
        }
        return best;
    }

    @Override
    public BitmapHeader header() {
        return lvHeader();
    }

    /**
     * The header {@link #open} found (its state says whether the last job crashed or stopped
     * cleanly), or null for a store {@link #create}d new.
     */
    public BitmapHeader found() {
        return found;
    }

    /** The file this store keeps its bits in. */
    public Path path() {
        return file;
    }

    @Override
    public long[] load() {
        return loaded.clone();
    }

    @Override
    public void write(long[] words, int from, int to) throws DeviceException {
        if (from < 0 || to > wordCount || from > to || words.length < to) {
            throw new IllegalArgumentException("words [" + from + ", " + to + ") of a bitmap of " + wordCount + " words");
        }
        try {
            writeFully(channel, encode(words, from, to), BITS_OFFSET + 8L * from);
        } catch (IOException e) {
            throw ioError("cannot write write-intent bitmap " + file, e);
        }
    }

    @Override
    public void sync() throws DeviceException {
        try {
            channel.force(false);
        } catch (IOException e) {
            throw ioError("cannot sync write-intent bitmap " + file, e);
        }
    }

    @Override
    public void stop(long sourceStamp, long targetStamp) throws DeviceException {
        BitmapHeader next = lvHeader().stopped(sourceStamp, targetStamp);
        try {
            channel.force(false); // the bits first: a STOPPED header vouches for them
            writeFully(channel, ByteBuffer.wrap(next.encode()), slotOffset(next.generation()));
            channel.force(false);
        } catch (IOException e) {
            throw ioError("cannot write write-intent bitmap " + file, e);
        }
        svHeader(next);
    }

    @Override
    public void close() {
        release(lock, channel);
    }

    @Override
    public String toString() {
        return "FileBitmapStore[" + file + ", " + lvHeader() + "]";
    }

    /* ---- Helpers ---- */

    private static long slotOffset(long generation) {
        return (generation & 1) * BitmapHeader.SLOT_BYTES;
    }

    private static FileLock tryLock(FileChannel ch, Path file) throws IOException, BitmapRefusedException {
        FileLock l;
        try {
            l = ch.tryLock();
        } catch (OverlappingFileLockException e) {
            l = null; // held by this process
        }
        if (l == null) {
            ch.close();
            throw new BitmapRefusedException(BitmapRefusedException.Reason.LOCKED, file
                    + " is in use by another job (locked by a live process)");
        }
        return l;
    }

    private static void release(FileLock lock, FileChannel ch) {
        try {
            if (lock != null && lock.isValid()) {
                lock.release();
            }
        } catch (IOException ignored) {
            // closing the channel releases it anyway
        }
        try {
            if (ch != null) {
                ch.close();
            }
        } catch (IOException ignored) {
            // nothing was pending: every write was either synced or is not needed
        }
    }

    private static ByteBuffer encode(long[] words, int from, int to) {
        ByteBuffer b = ByteBuffer.allocate((to - from) * 8).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = from; i < to; i++) {
            b.putLong(words[i]);
        }
        return b.flip();
    }

    private static void writeFully(FileChannel ch, ByteBuffer b, long at) throws IOException {
        long pos = at;
        while (b.hasRemaining()) {
            pos += ch.write(b, pos);
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long at) throws IOException {
        long pos = at;
        while (b.hasRemaining()) {
            int n = ch.read(b, pos);
            if (n < 0) {
                throw new IOException("unexpected end of file at " + pos);
            }
            pos += n;
        }
    }

    private static void forceDirectory(Path dir) throws IOException {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        }
    }

    private static DeviceException ioError(String what, IOException e) {
        String message = String.valueOf(e.getMessage());
        return new DeviceException(message.contains("No space left") ? DeviceException.Kind.NO_SPACE
                : DeviceException.Kind.IO_ERROR, what + ": " + message, e);
    }

    private BitmapHeader lvHeader() {
        return (BitmapHeader) HEADER.getVolatile(this); // pairs with svHeader
    }

    private void svHeader(BitmapHeader h) {
        HEADER.setVolatile(this, h); // the one writer (and the constructor); stronger than needed
    }
}
