package dev.handoff.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Fuzzing of the frame parsers, both sides.
 *
 * <p>Seeded (every {@code mvn verify}): generated server sessions, valid and malformed frames
 * mixed, checked reply by reply against {@link ServerSessionModel}; and hostile server streams
 * (valid exchanges with bits flipped, lengths corrupted, frames cut, dropped or repeated) against
 * the client, checked by {@link ClientSession}. Each harness is shown to catch the server or client
 * bug it exists for by the broken variants of the mutant catalog ({@code mutants/catalog.json}).
 *
 * <p>The coverage-guided targets over the same harnesses are in {@link NbdCoverageFuzzTest}.
 *
 * <p>Replay one seeded case: {@code -Dnbd.fuzz.seed=N}; more cases: {@code -Dnbd.fuzz.sessions=N}.
 */
class NbdFuzzTest {
    private static final int SESSIONS = Integer.getInteger("nbd.fuzz.sessions", 400);
    private static final Long ONLY_SEED = Long.getLong("nbd.fuzz.seed");

    /* ---------------- seeded: server ---------------- */

    @Test
    @Timeout(120)
    void seededServerSessionsMatchTheModel() {
        for (long seed : seeds()) {
            List<String> failures = serverFailures(seed);
            assertThat(failures).as("server session seed %d (replay with -Dnbd.fuzz.seed=%d)", seed, seed).isEmpty();
        }
    }

    private static List<String> serverFailures(long seed) {
        boolean readOnly = seed % 5 == 0;
        ServerSessionModel model = ServerSessionModel.generate(seed, readOnly);
        ServerSession session = new ServerSession(readOnly);
        List<String> failures = new ArrayList<>(session.run(model.input()));
        failures.addAll(model.check(session));
        return failures;
    }

    private static long[] seeds() {
        if (ONLY_SEED != null) {
            return new long[] {ONLY_SEED};
        }
        long[] seeds = new long[SESSIONS];
        for (int i = 0; i < SESSIONS; i++) {
            seeds[i] = i;
        }
        return seeds;
    }

    /* ---------------- seeded: client ---------------- */

    @Test
    @Timeout(120)
    void seededHostileServerStreamsEndInDeviceExceptions() {
        for (long seed : seeds()) {
            if (seed >= SESSIONS / 2 && ONLY_SEED == null) {
                break; // the client runs are slower (timeouts on stalled streams): half as many
            }
            boolean structured = seed % 2 == 1;
            List<String> failures = ClientSession.run(structured ? structuredClientSegments(seed) : clientSegments(seed),
                    structured);
            assertThat(failures).as("client stream seed %d (replay with -Dnbd.fuzz.seed=%d)", seed, seed).isEmpty();
        }
    }

    /** A hostile stream for a client that asked for structured replies and the allocation map. */
    static List<byte[]> structuredClientSegments(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        List<byte[]> valid = ClientSession.validStructuredSegments(random);
        return seed % 4 == 1 ? valid : ClientSession.mutate(valid, random);
    }

    static List<byte[]> clientSegments(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        List<byte[]> valid = ClientSession.validSegments(random);
        return seed % 4 == 0 ? valid : ClientSession.mutate(valid, random);
    }
}
