package dev.handoff.testkit;

/**
 * A check of the kit failed on a device: names the check, the seed that shows it and what was
 * seen, as {@code [check] seed S: what}, and, where the runner knows it, how to replay it.
 */
public final class CheckFailure extends AssertionError {
    private static final long serialVersionUID = 1L;

    private final String check;
    private final long seed;
    private final String detail;
    private final String replay;

    CheckFailure(String check, long seed, String detail, Throwable cause) {
        this(check, seed, detail, null, cause);
    }

    private CheckFailure(String check, long seed, String detail, String replay, Throwable cause) {
        super("[" + check + "] seed " + seed + ": " + detail + (replay != null ? "\nreplay: " + replay : ""), cause);
        this.check = check;
        this.seed = seed;
        this.detail = detail;
        this.replay = replay;
    }

    /** The same failure with the command that replays it. */
    CheckFailure withReplay(String command) {
        CheckFailure f = new CheckFailure(check, seed, detail, command, getCause());
        f.setStackTrace(getStackTrace());
        for (Throwable s : getSuppressed()) {
            f.addSuppressed(s); // a timeout's other threads
        }
        return f;
    }

    /** The id of the check that failed. */
    public String check() {
        return check;
    }

    /** The seed that shows the failure (run the check with it to replay). */
    public long seed() {
        return seed;
    }

    /** What was seen, without the check and seed. */
    public String detail() {
        return detail;
    }

    /** The command that replays this failure, or null. */
    public String replay() {
        return replay;
    }
}
