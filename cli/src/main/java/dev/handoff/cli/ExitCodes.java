package dev.handoff.cli;

/**
 * The exit codes of every {@code handoff} command. Scripts rely on them: each code has one meaning
 * across commands, and {@code handoff --help} lists them (the list in {@link HandoffCli}).
 */
final class ExitCodes {
    /** Done: the mirror reached a consistent target, the demo's checks passed, the owner command did what it said. */
    static final int OK = 0;
    /** The job failed (an I/O error under the {@code report} policy), a demo check failed, or an internal error. */
    static final int FAILED = 1;
    /** Usage: unknown command or option, missing or invalid argument (granularity, size, speed, mode, policy). */
    static final int USAGE = 2;
    /**
     * Bad image: missing or unreadable source, not a raw image, target of another size, target =
     * source, target not writable; or a socket path in a directory that does not exist.
     */
    static final int BAD_IMAGE = 3;
    /** Busy: the image is locked by another process (QEMU or Handoff), or another owner holds it; an address in use. */
    static final int BUSY = 4;
    /** Cancelled: the job was cancelled before the target was consistent (block-job-cancel). */
    static final int CANCELLED = 5;
    /** Fenced: the ownership record shows a newer owner than the token or handle (a stale handoff). */
    static final int FENCED = 6;
    /** Interrupted (Ctrl-C, SIGINT; SIGTERM gives 143): stopped cleanly, see the message for the target's state. */
    static final int INTERRUPTED = 130;

    private ExitCodes() {
    }
}
