package dev.handoff.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Seeded fuzzing of the TLS handshake path, both sides ({@link TlsSessions}): generated hostile
 * clients against a server that requires TLS, checked reply by reply against the replies FORCEDTLS
 * allows; and hostile servers against a client that requires TLS. The coverage-guided targets over
 * the same harnesses are {@code NbdTlsCoverageFuzzTest}'s.
 *
 * <p>Replay one seed: {@code -Dnbd.fuzz.seed=N}; more: {@code -Dnbd.fuzz.tls.sessions=N}.
 */
class NbdTlsFuzzTest {
    private static final int SESSIONS = Integer.getInteger("nbd.fuzz.tls.sessions", 300);
    private static final Long ONLY_SEED = Long.getLong("nbd.fuzz.seed");

    @Test
    @Timeout(120)
    void seededClientsRevealNothingAndReachNothingBeforeTheUpgrade() {
        for (long seed = ONLY_SEED != null ? ONLY_SEED : 0; seed < (ONLY_SEED != null ? ONLY_SEED + 1 : SESSIONS); seed++) {
            TlsSessions.Generated session = TlsSessions.generate(seed);
            List<String> failures = TlsSessions.runServer(session.input(), session.expected());
            assertThat(failures).as("TLS server session seed %d (replay with -Dnbd.fuzz.seed=%d)", seed, seed).isEmpty();
        }
    }

    @Test
    @Timeout(120)
    void seededServersGetNothingButStartTlsInPlainTextFromATlsClient() {
        int sessions = SESSIONS / 2;
        for (long seed = ONLY_SEED != null ? ONLY_SEED : 0; seed < (ONLY_SEED != null ? ONLY_SEED + 1 : sessions); seed++) {
            List<String> failures = TlsSessions.runClient(TlsSessions.clientSegments(seed));
            assertThat(failures).as("TLS client stream seed %d (replay with -Dnbd.fuzz.seed=%d)", seed, seed).isEmpty();
        }
    }
}
