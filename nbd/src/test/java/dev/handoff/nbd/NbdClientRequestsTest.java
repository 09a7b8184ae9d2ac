package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/**
 * How the client cuts each call into NBD requests (one loop serves every command): pieces the
 * protocol and the server allow, covering the call's range exactly once, and a flush as one
 * request without a range.
 */
class NbdClientRequestsTest {
    private static final long SIZE = 4L << 30;

    /** A server announcing {@code flags} that answers the first {@code count} requests with success and logs them. */
    private static List<String> served(int flags, int count, Call call) throws Exception {
        List<String> requests = new CopyOnWriteArrayList<>();
        try (FakeServer fake = new FakeServer(side -> {
            side.acceptGo(SIZE, flags);
            for (int i = 0; i < count; i++) {
                Request r = side.request();
                requests.add(r.type() + " " + r.offset() + "+" + r.length());
                side.reply(0, r.handle());
            }
        })) {
            try (NbdDevice client = NbdDevice.open(fake.uri())) {
                call.run(client);
            }
            fake.result();
        }
        return requests;
    }

    private interface Call {
        void run(NbdDevice client) throws Exception;
    }

    @Test
    void writeZeroesToAServerWithoutItIsWrittenAsZeroesInPiecesOfAtMostOneMebibyte() throws Exception {
        long mib = 1 << 20;
        List<String> requests = served(TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH, 3,
                client -> client.writeZeroes(5, 2 * mib + 7));
        assertThat(requests).containsExactly(CMD_WRITE + " 5+" + mib, CMD_WRITE + " " + (5 + mib) + "+" + mib,
                CMD_WRITE + " " + (5 + 2 * mib) + "+7");
    }

    @Test
    void aTrimLongerThanOneGibibyteGoesOutInPiecesThatCoverItOnce() throws Exception {
        long gib = 1L << 30;
        List<String> requests = served(TFLAG_HAS_FLAGS | TFLAG_SEND_TRIM, 3, client -> client.discard(512, 2 * gib + 512));
        assertThat(requests).containsExactly(CMD_TRIM + " 512+" + gib, CMD_TRIM + " " + (512 + gib) + "+" + gib,
                CMD_TRIM + " " + (512 + 2 * gib) + "+512");
    }

    @Test
    void aFlushIsOneRequestWithoutARangeAndAnEmptyWriteNone() throws Exception {
        List<String> requests = served(TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH, 1, client -> {
            client.write(0, ByteBuffer.allocate(0));
            client.flush();
        });
        assertThat(requests).containsExactly(CMD_FLUSH + " 0+0");
    }
}
