package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.handoff.device.MemoryDevice;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The server's structured replies, the base:allocation meta context and NBD_CMD_BLOCK_STATUS,
 * NBD_CMD_CACHE, fast zeroes and the default export, against a raw peer. The device is a
 * {@link MemoryDevice}, whose unwritten 1 MiB segments are holes.
 */
@Timeout(60)
class NbdStructuredReplyTest {
    private static final long SIZE = 8 << 20;
    private static final int MIB = 1 << 20;
    private static final int HOLE_ZERO = STATE_HOLE | STATE_ZERO;
    private TestServer server;

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
            assertThat(server.device.violations()).as("requests the server should never have made").isEmpty();
        }
    }

    /** An extent of a BLOCK_STATUS reply. */
    record Extent(long length, int status) {
    }

    /* ---------------- negotiation ---------------- */

    @Test
    void structuredRepliesAreAcknowledgedOnceAndASecondRequestIsInvalid() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().hello()) {
            peer.option(OPT_STRUCTURED_REPLY, new byte[] {1});
            assertThat(peer.optionAnswer().type()).as("with data").isEqualTo(REP_ERR_INVALID);
            peer.structuredReplies();
            peer.option(OPT_STRUCTURED_REPLY, new byte[0]);
            RawPeer.OptionAnswer again = peer.optionAnswer();
            assertThat(again.type()).isEqualTo(REP_ERR_INVALID);
            assertThat(again.text()).contains("already negotiated");
            long[] go = peer.go("disk");
            assertThat(go[1] & TFLAG_SEND_DF).as("DF once structured replies are on").isNotZero();
            assertThat(go[1] & (TFLAG_SEND_CACHE | TFLAG_SEND_FAST_ZERO)).isEqualTo(TFLAG_SEND_CACHE | TFLAG_SEND_FAST_ZERO);
            peer.request(0, CMD_FLUSH, 7, 0, 0);
            RawPeer.Chunk done = peer.chunk();
            assertThat(done.type()).isEqualTo(REPLY_TYPE_NONE);
            assertThat(done.flags()).isEqualTo(REPLY_FLAG_DONE);
            assertThat(done.handle()).isEqualTo(7);
        }
    }

    @Test
    void metaContextsNeedStructuredRepliesFirst() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().hello()) {
            for (int option : new int[] {OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT}) {
                peer.option(option, RawPeer.metaContextRequest("disk", BASE_ALLOCATION));
                RawPeer.OptionAnswer a = peer.optionAnswer();
                assertThat(a.type()).isEqualTo(REP_ERR_INVALID);
                assertThat(a.text()).contains("needs NBD_OPT_STRUCTURED_REPLY first");
            }
            assertThat(peer.go("disk")[1] & TFLAG_SEND_DF).as("no DF with simple replies").isZero();
        }
    }

    @Test
    void listNamesBaseAllocationForNoQueryItsNamespaceOrItsNameAndNothingElse() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().hello().structuredReplies()) {
            assertThat(peer.metaContexts(OPT_LIST_META_CONTEXT, "disk")).containsExactly(Map.entry(0, BASE_ALLOCATION));
            assertThat(peer.metaContexts(OPT_LIST_META_CONTEXT, "disk", "base:")).containsOnlyKeys(0);
            assertThat(peer.metaContexts(OPT_LIST_META_CONTEXT, "disk", BASE_ALLOCATION)).containsOnlyKeys(0);
            assertThat(peer.metaContexts(OPT_LIST_META_CONTEXT, "disk", "qemu:dirty-bitmap:b", "x-y:z")).isEmpty();
            // SET selects by name only; the namespace alone selects nothing.
            assertThat(peer.metaContexts(OPT_SET_META_CONTEXT, "disk", "base:")).isEmpty();
            assertThat(peer.metaContexts(OPT_SET_META_CONTEXT, "disk", "qemu:allocation-depth", BASE_ALLOCATION,
                    BASE_ALLOCATION)).containsExactly(Map.entry(ServerConnection.BASE_ALLOCATION_ID, BASE_ALLOCATION));
        }
    }

    @Test
    void malformedMetaContextQueriesAreInvalidAndNegotiationGoesOn() throws Exception {
        server = TestServer.start(SIZE);
        List<byte[]> malformed = List.of(
                new byte[] {0, 0, 0},                                                        // too short
                ByteBuffer.allocate(8).putInt(100).putInt(0).array(),                        // name past the data
                ByteBuffer.allocate(12).putInt(0).putInt(2).putInt(0).array(),               // 2 queries, room for 1
                ByteBuffer.allocate(12).putInt(0).putInt(1).putInt(9).array(),               // query past the data
                ByteBuffer.allocate(14).putInt(0).putInt(1).putInt(2).put(new byte[] {(byte) 0xC3, 0x28}).array(),
                ByteBuffer.allocate(13).putInt(0).putInt(1).putInt(1).put((byte) 0).array(), // NUL
                ByteBuffer.allocate(13).putInt(0).putInt(0).put(new byte[] {1, 2, 3, 4, 5}).array(), // trailing
                ByteBuffer.allocate(12).putInt(0).putInt(-1).putInt(0).array());             // 2^32 - 1 queries
        try (RawPeer peer = server.peer().hello().structuredReplies()) {
            for (int option : new int[] {OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT}) {
                for (byte[] data : malformed) {
                    peer.option(option, data);
                    assertThat(peer.optionAnswer().type()).isEqualTo(REP_ERR_INVALID);
                }
                peer.option(option, RawPeer.metaContextRequest("nope", BASE_ALLOCATION));
                RawPeer.OptionAnswer unknown = peer.optionAnswer();
                assertThat(unknown.type()).isEqualTo(REP_ERR_UNKNOWN);
                assertThat(unknown.text()).contains("nope");
            }
            peer.go("disk");
            peer.request(0, CMD_BLOCK_STATUS, 1, 0, 512);
            assertThat(peer.chunk().error()).as("no context selected by a failed SET").isEqualTo(EINVAL);
        }
    }

    @Test
    void aContextSelectedForAnotherExportOrReplacedBySetHoldsNothing() throws Exception {
        server = TestServer.start(SIZE);
        server.server.addExport(NbdExport.of("other", new MemoryDevice(MIB)));
        try (RawPeer peer = server.peer().hello().structuredReplies()) {
            peer.metaContexts(OPT_SET_META_CONTEXT, "other", BASE_ALLOCATION);
            peer.go("disk");
            peer.request(0, CMD_BLOCK_STATUS, 1, 0, 512);
            assertThat(peer.chunk().error()).isEqualTo(EINVAL);
        }
        try (RawPeer peer = server.peer().hello().structuredReplies()) {
            peer.metaContexts(OPT_SET_META_CONTEXT, "disk", BASE_ALLOCATION);
            peer.metaContexts(OPT_SET_META_CONTEXT, "disk");
            peer.go("disk");
            peer.request(0, CMD_BLOCK_STATUS, 1, 0, 512);
            assertThat(peer.chunk().error()).isEqualTo(EINVAL);
        }
    }

    /* ---------------- transmission ---------------- */

    @Test
    void readsAreOneOffsetDataChunkAndErrorsAnErrorChunk() throws Exception {
        server = TestServer.start(SIZE);
        server.memory.write(3 * MIB, ByteBuffer.wrap(new byte[] {1, 2, 3, 4}));
        try (RawPeer peer = allocationPeer()) {
            peer.request(CMD_FLAG_DF, CMD_READ, 5, 3 * MIB + 1, 2);
            RawPeer.Chunk read = peer.chunk();
            assertThat(read.type()).isEqualTo(REPLY_TYPE_OFFSET_DATA);
            assertThat(read.flags()).isEqualTo(REPLY_FLAG_DONE);
            assertThat(read.handle()).isEqualTo(5);
            assertThat(read.data().getLong()).isEqualTo(3 * MIB + 1);
            assertThat(read.payload()).endsWith(2, 3).hasSize(10);

            peer.request(0, CMD_READ, 6, SIZE, 1);
            RawPeer.Chunk error = peer.chunk();
            assertThat(error.type()).isEqualTo(REPLY_TYPE_ERROR);
            assertThat(error.flags()).isEqualTo(REPLY_FLAG_DONE);
            assertThat(error.error()).isEqualTo(EINVAL);
            assertThat(error.payload()).hasSize(6);

            peer.request(0, CMD_READ, 8, 0, 0);
            assertThat(peer.chunk().type()).as("a READ of nothing").isEqualTo(REPLY_TYPE_NONE);
            peer.write(9, 0, new byte[] {7});
            RawPeer.Chunk written = peer.chunk();
            assertThat(written.type()).isEqualTo(REPLY_TYPE_NONE);
            assertThat(written.payload()).isEmpty();
        }
    }

    @Test
    void blockStatusReportsHolesAsHoleAndZeroAndDataAsData() throws Exception {
        server = TestServer.start(SIZE);
        server.memory.write(MIB + 100, ByteBuffer.wrap(new byte[] {9}));
        server.memory.write(5 * MIB, ByteBuffer.wrap(new byte[] {9}));
        try (RawPeer peer = allocationPeer()) {
            assertThat(blockStatus(peer, 0, 0, SIZE)).containsExactly(
                    new Extent(MIB, HOLE_ZERO), new Extent(MIB, 0), new Extent(3 * MIB, HOLE_ZERO),
                    new Extent(MIB, 0), new Extent(2 * MIB, HOLE_ZERO));
            assertThat(blockStatus(peer, 0, MIB / 2, MIB)).as("clipped to the request").containsExactly(
                    new Extent(MIB / 2, HOLE_ZERO), new Extent(MIB / 2, 0));
            assertThat(blockStatus(peer, CMD_FLAG_REQ_ONE, 0, SIZE)).containsExactly(new Extent(MIB, HOLE_ZERO));
        }
    }

    @Test
    void aRangeHoldingDataIsNeverReportedAsAHole() throws Exception {
        server = TestServer.start(SIZE);
        SplittableRandom random = new SplittableRandom(16);
        BitSet written = new BitSet();
        for (int i = 0; i < 5; i++) {
            int at = random.nextInt((int) SIZE - 1);
            server.memory.write(at, ByteBuffer.wrap(new byte[] {1}));
            written.set(at);
        }
        try (RawPeer peer = allocationPeer()) {
            long pos = 0;
            int requests = 0;
            while (pos < SIZE) {
                long length = Math.min(SIZE - pos, 1 + random.nextInt(3 * MIB));
                List<Extent> extents = blockStatus(peer, 0, pos, length);
                assertThat(extents).isNotEmpty();
                long sum = 0;
                for (Extent e : extents) {
                    assertThat(e.length()).isPositive();
                    if (e.status() != 0) {
                        int firstData = written.nextSetBit((int) (pos + sum));
                        assertThat(firstData < 0 || firstData >= pos + sum + e.length())
                                .as("byte %d holds data but lies in a hole extent at %d+%d", firstData, pos + sum,
                                        e.length()).isTrue();
                    }
                    sum += e.length();
                }
                assertThat(sum).as("extents past the request").isLessThanOrEqualTo(length);
                pos += sum;
                requests++;
            }
            assertThat(requests).isGreaterThan(1);
        }
    }

    @Test
    void blockStatusOutOfRangeOrEmptyOrWithUnknownFlagsIsEinval() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = allocationPeer()) {
            long[][] bad = {{0, SIZE, 1}, {0, SIZE - 1, 2}, {0, 0, 0}, {0, -1L, 1}, {CMD_FLAG_DF, 0, 1},
                    {CMD_FLAG_NO_HOLE, 0, 1}};
            for (int i = 0; i < bad.length; i++) {
                peer.request((int) bad[i][0], CMD_BLOCK_STATUS, i, bad[i][1], bad[i][2]);
                RawPeer.Chunk c = peer.chunk();
                assertThat(c.handle()).isEqualTo(i);
                assertThat(c.type()).as("request %d", i).isEqualTo(REPLY_TYPE_ERROR);
                assertThat(c.error()).isEqualTo(EINVAL);
            }
            assertThat(blockStatus(peer, 0, SIZE - 1, 1)).containsExactly(new Extent(1, HOLE_ZERO));
        }
    }

    @Test
    void blockStatusWithoutStructuredRepliesIsASimpleEinval() throws Exception {
        server = TestServer.start(SIZE);
        try (RawPeer peer = server.peer().open("disk")) {
            peer.request(0, CMD_BLOCK_STATUS, 1, 0, 512);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EINVAL, 1));
        }
    }

    @Test
    void cacheChecksTheRangeAndSucceedsOnAnyExport() throws Exception {
        server = TestServer.start(SIZE, true, b -> { });
        try (RawPeer peer = server.peer().open("disk")) {
            peer.request(0, CMD_CACHE, 1, 0, (int) SIZE);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 1));
            peer.request(0, CMD_CACHE, 2, SIZE - 1, 2);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(EINVAL, 2));
        }
    }

    @Test
    void aFastZeroSucceedsOnAHoleAndIsEnotsupWhereDataIsLeavingItUntouched() throws Exception {
        server = TestServer.start(SIZE);
        server.memory.write(2 * MIB, ByteBuffer.wrap(new byte[] {5}));
        try (RawPeer peer = server.peer().open("disk")) {
            peer.request(CMD_FLAG_FAST_ZERO, CMD_WRITE_ZEROES, 1, 0, 2 * MIB);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 1));
            peer.request(CMD_FLAG_FAST_ZERO, CMD_WRITE_ZEROES, 2, MIB, 2 * MIB);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(ENOTSUP, 2));
            peer.request(CMD_FLAG_FAST_ZERO | CMD_FLAG_NO_HOLE, CMD_WRITE_ZEROES, 3, 0, MIB);
            assertThat(peer.reply()).as("allocated zeroes are never fast").isEqualTo(new RawPeer.Reply(ENOTSUP, 3));
        }
        assertThat(TestData.read(server.memory, 2 * MIB, 1)).containsExactly(5);
    }

    /* ---------------- the default export ---------------- */

    @Test
    void theEmptyNameIsTheOnlyExport() throws Exception {
        server = TestServer.start(SIZE);
        server.memory.write(0, ByteBuffer.wrap(new byte[] {42}));
        try (RawPeer peer = server.peer().hello()) {
            assertThat(peer.go("")[0]).isEqualTo(SIZE);
            peer.request(0, CMD_READ, 1, 0, 1);
            assertThat(peer.reply()).isEqualTo(new RawPeer.Reply(0, 1));
            assertThat(peer.read(1)).containsExactly(42);
        }
        try (RawPeer peer = server.peer().hello()) {
            peer.option(OPT_EXPORT_NAME, new byte[0]);
            assertThat(ByteBuffer.wrap(peer.read(10)).getLong()).isEqualTo(SIZE);
        }
        try (RawPeer peer = server.peer().hello().structuredReplies()) {
            peer.metaContexts(OPT_SET_META_CONTEXT, "", BASE_ALLOCATION);
            peer.go("disk");
            assertThat(blockStatus(peer, 0, 0, 2 * MIB)).as("the default export is that export")
                    .containsExactly(new Extent(MIB, 0), new Extent(MIB, HOLE_ZERO));
        }
    }

    @Test
    void theEmptyNameIsUnknownWhenSeveralExportsAreServed() throws Exception {
        server = TestServer.start(SIZE);
        server.server.addExport(NbdExport.of("other", new MemoryDevice(MIB)));
        try (RawPeer peer = server.peer().hello()) {
            peer.option(OPT_GO, RawPeer.infoRequest(""));
            assertThat(peer.optionAnswer().type()).isEqualTo(REP_ERR_UNKNOWN);
        }
        server.server.removeExport("other");
        try (RawPeer peer = server.peer().hello()) {
            assertThat(peer.go("")[0]).isEqualTo(SIZE);
        }
        assertThatThrownBy(() -> NbdDevice.open(NbdUri.parse("nbd+unix:///nope?socket=" + server.socket)))
                .hasMessageContaining("nope");
        try (NbdDevice client = NbdDevice.open(NbdUri.parse("nbd+unix:///?socket=" + server.socket))) {
            assertThat(client.size()).isEqualTo(SIZE);
        }
    }

    /* ---------------- helpers ---------------- */

    /** A peer with structured replies and base:allocation on "disk", in transmission. */
    private RawPeer allocationPeer() throws IOException {
        RawPeer peer = server.peer().hello().structuredReplies();
        assertThat(peer.metaContexts(OPT_SET_META_CONTEXT, "disk", BASE_ALLOCATION))
                .containsOnlyKeys(ServerConnection.BASE_ALLOCATION_ID);
        peer.go("disk");
        return peer;
    }

    private static List<Extent> blockStatus(RawPeer peer, int flags, long offset, long length) throws IOException {
        peer.request(flags, CMD_BLOCK_STATUS, 77, offset, length);
        RawPeer.Chunk c = peer.chunk();
        assertThat(c.type()).as("error %s", c.type() == REPLY_TYPE_ERROR ? errnoName(c.error()) : "")
                .isEqualTo(REPLY_TYPE_BLOCK_STATUS);
        assertThat(c.flags()).isEqualTo(REPLY_FLAG_DONE);
        ByteBuffer d = c.data();
        assertThat(d.getInt()).isEqualTo(ServerConnection.BASE_ALLOCATION_ID);
        List<Extent> extents = new ArrayList<>();
        while (d.hasRemaining()) {
            extents.add(new Extent(Integer.toUnsignedLong(d.getInt()), d.getInt()));
        }
        return extents;
    }
}
