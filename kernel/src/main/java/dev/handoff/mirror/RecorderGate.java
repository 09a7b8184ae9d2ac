package dev.handoff.mirror;

import jdk.jfr.FlightRecorder;

/**
 * Whether the JFR event classes ({@link CopyEvent}, {@link WriteBlockingEvent},
 * {@link JobStateEvent}) may be touched: only once the flight recorder is initialized, which every
 * recording does first ({@code -XX:StartFlightRecording}, {@code jcmd JFR.start},
 * {@code new Recording()}, the command line's {@code --jfr}).
 *
 * <p>Why: on JDK 17, loading a subclass of {@link jdk.jfr.Event} instruments it at once, recording
 * or not, and the first one starts JFR's Java side (its metadata repository, type library and an
 * event handler class per event type): about 100 classes and 60-80 ms of a short command's
 * start-up. Until a recording exists no event would be written, so the classes are left unloaded;
 * a recording started later loads them on their next use and takes them from there. The check is a
 * read of one static boolean.
 *
 * <p>Memory ordering: none is needed here. The read publishes nothing and nothing depends on what
 * it returns beyond the event itself: a thread that has not yet seen a recording started on another
 * thread skips an event, as a copy that began before the recording would anyway; the event
 * classes' own {@code isEnabled}/{@code shouldCommit} decide once they are loaded.
 */
final class RecorderGate {
    private RecorderGate() {
    }

    /** True once the flight recorder is initialized (a recording was created in this JVM). */
    static boolean recorderUp() {
        return FlightRecorder.isInitialized();
    }
}
