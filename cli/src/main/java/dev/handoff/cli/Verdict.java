package dev.handoff.cli;

import dev.handoff.testkit.Check;
import dev.handoff.testkit.CheckFailure;
import java.time.Duration;

/**
 * What {@code handoff verify} found for one check: passed (every seed run), failed (at its first,
 * so smallest, failing seed), skipped (the target lacks what the check needs), or not run (the
 * budget ran out first).
 */
record Verdict(Check check, Status status, int seeds, Duration time, CheckFailure failure, String reason) {

    enum Status {
        PASSED("passed"), FAILED("FAILED"), SKIPPED("skipped"), NOT_RUN("not run");

        final String word;

        Status(String word) {
            this.word = word;
        }
    }
}
