package dev.handoff.ownership;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Records the spec-level steps of {@link OwnedImage} handles, in one or several processes, as the
 * lines of one log file, for {@code TraceOwnership.tla}. The published test seam for trace
 * validation of ownership: open traced handles with {@link #openFile}, or with {@link #open} on
 * another module's record store and lock (a coordination service's), build the TLA+ module from
 * the log with {@link #toTlaModule}.
 *
 * <p>Every step of every handle, in any process, holds an exclusive lock on {@code <log>.lock}
 * (an fcntl lock, plus an in-process lock for the threads of one JVM) from its {@code begin} to
 * its {@code end}, and appends its line to the log before letting go: the log's order is the
 * order in which the steps took effect. Only the outermost step of a nest is recorded. Nothing is
 * recorded until the log file exists ({@link #start}), so a handle can be set up first.
 *
 * <p>Each line is a TLA+ record: the step, the node (the handle's owner id), whether it went
 * through, its argument, and what the recorder saw right after it: the ownership record, and the
 * node's state, epoch and newest epoch seen.
 */
public final class OwnershipTraceRecorder implements OwnershipTrace {
    private final ReentrantLock inProcess = new ReentrantLock();
    private int depth;               // guarded by inProcess
    private FileChannel lockChannel; // guarded by inProcess
    private FileLock fileLock;       // guarded by inProcess

    private final Path log;
    private final Path lockFile;

    public OwnershipTraceRecorder(Path log) {
        this.log = log.toAbsolutePath();
        this.lockFile = this.log.resolveSibling(this.log.getFileName() + ".lock");
    }

    /** A handle on {@code image} whose steps this recorder records (see ImageOpener#file). */
    public OwnedImage openFile(Path image, String node, OwnedImage.State initial) throws DeviceException {
        return ImageOpener.file(image, null, node, initial, this);
    }

    /**
     * A handle whose steps this recorder records, built from its parts exactly as
     * {@link OwnedImage#open} builds it (same arguments, same tuning): the seam through which another
     * module's ownership parts (ZooKeeper's record store and lock) are trace-validated.
     */
    public OwnedImage open(BlockDevice device, AutoCloseable release, RecordStore records, OwnershipLock lock,
            String node, String name, OwnedImage.State initial) throws DeviceException {
        return ImageOpener.assemble(device, release, records, lock, node, name, initial, ImageTuning.DEFAULT, this);
    }

    /** From now on steps are recorded (creates the empty log). */
    public static void start(Path log) throws IOException {
        Files.deleteIfExists(log);
        Files.createFile(log);
    }

    /**
     * Runs {@code action} as one environment step of its own (a process killed: {@code CRASH}),
     * holding the trace lock, and records it with placeholders for what was seen after it (the
     * node is gone: nothing to look at).
     */
    public void environment(String step, String node, Runnable action) {
        begin();
        try {
            action.run();
            appendLine(String.format(Locale.ROOT, "[s |-> \"%s\", n |-> \"%s\", ok |-> TRUE, a |-> 0, owner |-> \"none\","
                    + " st |-> \"crashed\", epoch |-> 0, newest |-> 0, rec |-> [epoch |-> 0, owner |-> \"none\","
                    + " clean |-> FALSE]]", step, node));
        } finally {
            depth--;
            releaseLocks();
        }
    }

    /**
     * Runs {@code action} as one environment step of its own that happens to a live node (its lock
     * lost: {@code LOSE_LOCK}), holding the trace lock, and records it with what was seen right
     * after it, as for a step of the handle itself: the record, and {@code image}'s state, epoch
     * and newest epoch seen.
     */
    public void environment(String step, OwnedImage image, Runnable action) {
        begin();
        try {
            action.run();
            appendLine(line(image, step, true, 0, null));
        } finally {
            depth--;
            releaseLocks();
        }
    }

    @Override
    public void begin() {
        inProcess.lock();
        if (depth++ == 0) {
            try {
                if (lockChannel == null || !lockChannel.isOpen()) {
                    lockChannel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                }
                fileLock = lockChannel.lock();
            } catch (IOException e) {
                depth--;
                inProcess.unlock();
                throw new UncheckedIOException("trace lock " + lockFile, e);
            }
        }
    }

    @Override
    public void end(OwnedImage image, Step step, boolean ok, long a, String owner) {
        try {
            if (depth == 1 && step != Step.NONE && Files.exists(log)) {
                appendLine(line(image, step.name(), ok, a, owner));
            }
        } finally {
            depth--;
            releaseLocks();
        }
    }

    private void releaseLocks() {
        try {
            if (depth == 0 && fileLock != null) {
                fileLock.release();
                fileLock = null;
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            inProcess.unlock();
        }
    }

    private String line(OwnedImage image, String step, boolean ok, long a, String owner) {
        OwnershipRecord r;
        try {
            r = OwnedImageProbe.peekRecord(image);
        } catch (DeviceException e) {
            throw new IllegalStateException("trace: cannot read the record after " + step, e);
        }
        String st = OwnedImageProbe.isClosed(image) ? "closed" : image.state() == OwnedImage.State.ACTIVE ? "active" : "inactive";
        return String.format(Locale.ROOT, "[s |-> \"%s\", n |-> \"%s\", ok |-> %s, a |-> %d, owner |-> \"%s\","
                        + " st |-> \"%s\", epoch |-> %d, newest |-> %d, rec |-> [epoch |-> %d, owner |-> \"%s\","
                        + " clean |-> %s]]",
                step, image.ownerId(), ok ? "TRUE" : "FALSE", a, owner == null ? "none" : owner, st,
                image.epoch(), OwnedImageProbe.newestEpochSeen(image), r.epoch(), r.ownerId().isEmpty() ? "none" : r.ownerId(),
                r.clean() ? "TRUE" : "FALSE");
    }

    private void appendLine(String line) {
        try (FileChannel ch = FileChannel.open(log, StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
            ByteBuffer b = ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8));
            while (b.hasRemaining()) {
                ch.write(b);
            }
            ch.force(false);
        } catch (IOException e) {
            throw new UncheckedIOException("trace log " + log, e);
        }
    }

    /** The log as the TLA+ module {@code module}: {@code Trace == << ... >>}. */
    public static String toTlaModule(String module, List<String> lines) {
        StringBuilder b = new StringBuilder("---- MODULE ").append(module).append(" ----\n");
        b.append("\\* Generated by OwnershipTraceRecorder: the steps of every handle, in order.\n");
        b.append("Trace == <<\n");
        for (int i = 0; i < lines.size(); i++) {
            b.append("  ").append(lines.get(i)).append(i + 1 < lines.size() ? ",\n" : "\n");
        }
        return b.append(">>\n====\n").toString();
    }

    /** The lines of the log. */
    public static List<String> lines(Path log) throws IOException {
        return Files.readAllLines(log, StandardCharsets.UTF_8).stream().filter(l -> !l.isBlank()).toList();
    }
}
