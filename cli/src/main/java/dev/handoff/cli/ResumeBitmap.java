package dev.handoff.cli;

import dev.handoff.mirror.BitmapHeader;
import dev.handoff.mirror.BitmapRefusedException;
import dev.handoff.mirror.BitmapStore;
import dev.handoff.mirror.FileBitmapStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The {@code --bitmap FILE} of {@code mirror} and {@code serve --mirror-to} (DESIGN §2.10): the
 * job's persistent write-intent bitmap. Absent (or with {@code --restart}), it is created for a
 * full copy; present, the job resumes from it and copies again only the regions it names. A bitmap
 * that does not belong is refused with one line and a documented exit code, and nothing is
 * changed: {@link #open} is the last step before the job starts, after the images are held, and
 * writes nothing on a refusal.
 *
 * <p>Identities: a file is named by its real path, device and inode (so a file replaced under the
 * same name is another image), a block device by its real path, an NBD export by its URI. Stamps
 * (checked after a clean stop only): a regular file's modification time; none for others.
 *
 * <p>Threading: opened by the command's main thread; {@link #finish} may be called from several
 * (the main thread, an interrupt hook, a job's last event), and takes effect once.
 */
final class ResumeBitmap implements AutoCloseable {
    /** Bytes of the source one bit stands for, unless the granularity is larger. */
    static final int DEFAULT_REGION = 1 << 20;

    private final Path file;
    private final FileBitmapStore store;
    private final boolean resumed;
    private final long copyAgain;
    private final Path sourceFile;
    private final Path targetFile;
    private boolean finished;

    private ResumeBitmap(Path file, FileBitmapStore store, boolean resumed, long copyAgain, Path sourceFile,
            Path targetFile) {
        this.file = file;
        this.store = store;
        this.resumed = resumed;
        this.copyAgain = copyAgain;
        this.sourceFile = sourceFile;
        this.targetFile = targetFile;
    }

    /**
     * Opens the bitmap at {@code file} for the job from {@code source} to {@code target} (a target
     * path, or null with {@code targetUri} for an NBD export), or creates it when absent or when
     * {@code restart}: with every region set if {@code fullCopy}.
     *
     * @throws CliException BAD_IMAGE for a bitmap that is damaged, of a newer version, of other
     *         images, or stale; BUSY if a live process holds it; USAGE if the job's granularity does
     *         not divide its regions
     */
    static ResumeBitmap open(Path file, boolean restart, Path source, long sourceSize, Path target, String targetUri,
            long targetSize, int granularity, boolean fullCopy) throws CliException {
        BitmapHeader wanted;
        try {
            wanted = BitmapHeader.create(sourceSize, targetSize, Math.max(DEFAULT_REGION, granularity),
                    identity(source), target != null ? identity(target) : "nbd " + targetUri);
        } catch (IOException e) {
            throw new CliException(ExitCodes.BAD_IMAGE, "--bitmap " + file + ": cannot identify the images: "
                    + e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "--bitmap " + file + ": " + e.getMessage());
        }
        try {
            if (restart || !Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
                FileBitmapStore store = FileBitmapStore.create(file, wanted, fullCopy);
                return new ResumeBitmap(file, store, false, 0, source, target);
            }
            FileBitmapStore store = FileBitmapStore.open(file, wanted, stamp(source), target != null ? stamp(target) : 0);
            BitmapHeader found = store.header();
            if (found.regionSize() % granularity != 0) {
                store.close();
                throw new CliException(ExitCodes.USAGE, "--bitmap " + file + " has regions of "
                        + Sizes.format(found.regionSize()) + ", which --granularity " + Sizes.format(granularity)
                        + " does not divide: resume with the first run's granularity, or --restart");
            }
            return new ResumeBitmap(file, store, true, bytes(store.load(), found), source, target);
        } catch (BitmapRefusedException e) {
            int exit = e.reason() == BitmapRefusedException.Reason.LOCKED ? ExitCodes.BUSY : ExitCodes.BAD_IMAGE;
            throw new CliException(exit, "--bitmap " + e.getMessage() + "; --restart discards it and copies everything"
                    + " again");
        } catch (IOException e) { // the store's DeviceException, or an image's stamp unreadable
            throw new CliException(ExitCodes.BAD_IMAGE, "--bitmap " + file + ": " + e.getMessage());
        }
    }

    /** The store the job keeps its bits in. */
    BitmapStore store() {
        return store;
    }

    Path file() {
        return file;
    }

    /** Whether the job resumes from a bitmap a previous run left. */
    boolean resumed() {
        return resumed;
    }

    /** Bytes a resumed job copies again (the regions set when it was opened); 0 for a new bitmap. */
    long copyAgain() {
        return copyAgain;
    }

    /** The line that says what the job starts from. */
    String describe(long size) {
        BitmapHeader h = store.header();
        if (!resumed) {
            return "bitmap " + file + ": new, regions of " + Sizes.format(h.regionSize());
        }
        return "bitmap " + file + ": resuming (generation " + h.generation() + ", " + (store.found().state()
                == BitmapHeader.State.ACTIVE ? "after a crash" : "after a clean stop") + "): " + Sizes.format(copyAgain)
                + " of " + Sizes.format(size) + " to copy again";
    }

    /**
     * Ends the command's use of the bitmap: after a job that left the target consistent and
     * complete, the file is removed (nothing is left to resume); otherwise its header records a
     * clean stop, so the same command resumes. Returns the line to print. Idempotent.
     */
    synchronized String finish(boolean complete) {
        if (finished) {
            return null;
        }
        finished = true;
        try {
            if (complete) {
                store.close();
                Files.deleteIfExists(file);
                return "bitmap " + file + " removed: the copy is complete";
            }
            store.stop(stampQuietly(sourceFile), targetFile != null ? stampQuietly(targetFile) : 0);
            store.close();
            return "bitmap " + file + " kept: the same command resumes the copy";
        } catch (IOException e) { // a DeviceException from the store, or the file's removal
            store.close();
            return "bitmap " + file + " left as it was (" + e.getMessage() + "): the same command resumes from it";
        }
    }

    @Override
    public void close() {
        store.close();
    }

    /* ---- Identities and stamps ---- */

    static String identity(Path p) throws IOException {
        Path real = p.toRealPath();
        if (Files.isRegularFile(real)) {
            return "file " + real + " dev " + Files.getAttribute(real, "unix:dev") + " ino "
                    + Files.getAttribute(real, "unix:ino");
        }
        return "device " + real;
    }

    static long stamp(Path p) throws IOException {
        Path real = p.toRealPath();
        return Files.isRegularFile(real) ? Files.getLastModifiedTime(real).to(TimeUnit.NANOSECONDS) : 0;
    }

    private static long stampQuietly(Path p) {
        try {
            return stamp(p);
        } catch (IOException e) {
            return 0; // unknown: the next open does not compare it
        }
    }

    private static long bytes(long[] words, BitmapHeader h) {
        long bytes = 0;
        for (long r = 0; r < h.regionCount(); r++) {
            if ((words[(int) (r >>> 6)] & (1L << r)) != 0) {
                bytes += Math.min(h.sourceSize(), (r + 1) * h.regionSize()) - r * h.regionSize();
            }
        }
        return bytes;
    }
}
