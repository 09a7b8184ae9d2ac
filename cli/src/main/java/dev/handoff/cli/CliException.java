package dev.handoff.cli;

/**
 * A failure the user can act on: one line on stderr and a documented exit code ({@link ExitCodes}).
 * Thrown before anything is changed on disk, or after what was changed has been undone, unless the
 * message says otherwise.
 */
final class CliException extends Exception {
    private static final long serialVersionUID = 1L;

    private final int exitCode;

    CliException(int exitCode, String message) {
        super(message);
        this.exitCode = exitCode;
    }

    CliException(int exitCode, String message, Throwable cause) {
        super(message, cause);
        this.exitCode = exitCode;
    }

    int exitCode() {
        return exitCode;
    }
}
