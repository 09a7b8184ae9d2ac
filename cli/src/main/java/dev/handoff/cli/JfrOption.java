package dev.handoff.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.ParseException;
import java.time.Duration;
import java.util.List;
import jdk.jfr.Configuration;
import jdk.jfr.Recording;
import picocli.CommandLine.Option;

/**
 * {@code --jfr FILE}: record the command's run with Java Flight Recorder: the JDK's {@code default}
 * settings (CPU samples, GC, locks; about 1 % overhead) plus every Handoff event with no
 * threshold: {@code dev.handoff.Copy} (each copy: offset, length, read and write time),
 * {@code dev.handoff.WriteBlockingWrite} (each write-blocking guest write: claim wait, source and
 * target time), {@code dev.handoff.JobState} (each state change) and {@code dev.handoff.NbdRequest}
 * (each NBD request served: receive, queue, device and reply time). The file is written when the
 * command ends, also on Ctrl-C or SIGTERM (JFR's dump on exit). Shared by {@code mirror} and
 * {@code serve}; {@code jfr print} and JDK Mission Control read it.
 *
 * <p>Not thread-safe: the command's main thread starts and finishes it.
 */
final class JfrOption {
    /** The Handoff event types, recorded without a threshold. */
    static final List<String> EVENTS = List.of("dev.handoff.Copy", "dev.handoff.WriteBlockingWrite",
            "dev.handoff.JobState", "dev.handoff.NbdRequest");

    @Option(names = "--jfr", paramLabel = "FILE", description = "Record a JFR file of the run: the JDK's default"
            + " profile plus Handoff's events (each copy, write-blocking guest write, job state change and NBD"
            + " request, with where its time went), written when the command ends. Read it with `jfr print --events"
            + " dev.handoff.Copy FILE` or JDK Mission Control.")
    Path file;

    private Recording recording;

    /** Starts the recording if --jfr was given; a file that cannot be written is a usage error, before any work. */
    void start() throws CliException {
        if (file == null) {
            return;
        }
        Path parent = file.toAbsolutePath().getParent();
        if (parent == null || !Files.isDirectory(parent)) {
            throw new CliException(ExitCodes.USAGE, "--jfr " + file + ": no such directory " + parent);
        }
        if (Files.isDirectory(file)) {
            throw new CliException(ExitCodes.USAGE, "--jfr " + file + ": is a directory");
        }
        Recording r;
        try {
            r = new Recording(Configuration.getConfiguration("default"));
        } catch (IOException | ParseException e) {
            throw new CliException(ExitCodes.FAILED, "--jfr: cannot read the JDK's default JFR settings: " + e.getMessage());
        }
        for (String name : EVENTS) {
            r.enable(name).withThreshold(Duration.ZERO);
        }
        r.setName("handoff");
        r.setToDisk(true);
        r.setDumpOnExit(true);
        try {
            r.setDestination(file);
        } catch (IOException e) {
            r.close();
            throw new CliException(ExitCodes.USAGE, "--jfr " + file + ": cannot write it: " + e.getMessage());
        }
        r.start();
        recording = r;
    }

    /** Stops the recording, which writes the file; a failure is reported on stderr, not thrown. */
    void finish() {
        Recording r = recording;
        recording = null;
        if (r == null) {
            return;
        }
        try {
            r.stop();
        } catch (IllegalStateException alreadyStopped) {
            // JFR's own exit hook stopped and wrote it
        } finally {
            r.close();
        }
    }
}
