package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import picocli.CommandLine;

/** How {@code handoff serve} reads its options, without serving anything. */
@Timeout(30)
class ServeOptionsTest {

    private static ServeCommand parse(String... args) {
        ServeCommand serve = new ServeCommand();
        new CommandLine(serve).parseArgs(args);
        return serve;
    }

    @Test
    void inlineRequestsAreOnByDefaultAndTheNegatedFormTurnsThemOff() {
        assertThat(parse("disk.img", "--nbd", "unix:disk.sock").inlineRequests).isTrue();
        assertThat(parse("disk.img", "--nbd", "unix:disk.sock", "--inline-requests").inlineRequests).isTrue();
        assertThat(parse("disk.img", "--nbd", "unix:disk.sock", "--no-inline-requests").inlineRequests).isFalse();
    }
}
