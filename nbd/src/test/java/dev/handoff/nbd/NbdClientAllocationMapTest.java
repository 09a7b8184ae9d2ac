package dev.handoff.nbd;

import static dev.handoff.nbd.NbdWire.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.handoff.device.DeviceException;
import dev.handoff.device.DeviceException.Kind;
import dev.handoff.device.FileDevice;
import dev.handoff.device.MemoryDevice;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The client's allocation map ({@link NbdDevice.Options#allocationMap}): structured replies and
 * base:allocation negotiated, {@code nextData}/{@code nextHole} answered by block status, reads
 * assembled from data and hole chunks; a mirror from an NBD source that skips its holes; QEMU's
 * server as the peer; and hostile chunks, each ending in a {@link DeviceException}.
 */
@Timeout(60)
class NbdClientAllocationMapTest {
    private static final long SIZE = 8 << 20;
    private static final int MIB = 1 << 20;
    private static final NbdDevice.Options MAP = NbdDevice.Options.defaults().withAllocationMap(true)
            .withRequestTimeout(Duration.ofSeconds(10));
    private TestServer server;

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
            assertThat(server.device.violations()).isEmpty();
        }
    }

    @Test
    void withTheMapNextDataAndNextHoleFollowTheServersExtentsAndReadsStillWork() throws Exception {
        server = TestServer.start(SIZE);
        byte[] data = TestData.pattern(5, 3000);
        server.memory.write(MIB + 7, ByteBuffer.wrap(data));
        server.memory.write(5L * MIB, ByteBuffer.wrap(data));
        try (NbdDevice client = NbdDevice.open(server.uri(), MAP)) {
            assertThat(client.hasAllocationMap()).isTrue();
            assertThat(client.nextData(0)).isEqualTo(MIB);
            assertThat(client.nextHole(MIB)).isEqualTo(2L * MIB);
            assertThat(client.nextData(2L * MIB)).isEqualTo(5L * MIB);
            assertThat(client.nextHole(5L * MIB + 1)).isEqualTo(6L * MIB);
            assertThat(client.nextData(6L * MIB)).isEqualTo(SIZE);
            assertThat(client.nextHole(SIZE)).isEqualTo(SIZE);
            assertThat(TestData.read(client, MIB + 7, data.length)).isEqualTo(data);
            client.write(3L * MIB, ByteBuffer.wrap(data));
            client.flush();
            assertThat(client.nextData(2L * MIB)).as("a write makes data").isEqualTo(3L * MIB);
            assertThat(TestData.firstDifference(client, server.memory)).isEqualTo(-1);
            server.device.hook((op, offset, length) -> {
                if (op.equals("read") && offset == 0) {
                    throw new DeviceException(Kind.IO_ERROR, "bad sector");
                }
            });
            assertThatThrownBy(() -> client.read(0, ByteBuffer.allocate(512))).isInstanceOf(DeviceException.class)
                    .satisfies(e -> assertThat(((DeviceException) e).kind()).isEqualTo(Kind.IO_ERROR));
            assertThat(TestData.read(client, 5L * MIB, 10)).as("the connection goes on").isEqualTo(
                    Arrays.copyOf(data, 10));
        }
    }

    @Test
    void withoutTheMapEverythingMayBeData() throws Exception {
        server = TestServer.start(SIZE);
        try (NbdDevice client = NbdDevice.open(server.uri())) {
            assertThat(client.hasAllocationMap()).isFalse();
            assertThat(client.nextData(4096)).isEqualTo(4096);
            assertThat(client.nextHole(0)).isEqualTo(SIZE);
        }
    }

    @Test
    void aMirrorFromAnNbdSourceWithTheMapReadsOnlyItsData() throws Exception {
        server = TestServer.start(SIZE);
        server.memory.write(MIB + 4096, ByteBuffer.wrap(TestData.pattern(6, 4096)));
        server.memory.write(6L * MIB, ByteBuffer.wrap(TestData.pattern(7, 4096)));
        AtomicLong bytesRead = new AtomicLong();
        server.device.hook((op, offset, length) -> {
            if (op.equals("read")) {
                bytesRead.addAndGet(length);
            }
        });
        MemoryDevice target = new MemoryDevice(SIZE);
        try (NbdDevice source = NbdDevice.open(server.uri(), MAP)) {
            MirrorJob job = MirrorJob.create(source, target, MirrorOptions.builder().granularity(64 << 10).build());
            job.start();
            assertThat(job.awaitReady(Duration.ofSeconds(30))).as("READY: %s", job.failureReason()).isTrue();
            job.complete();
            assertThat(job.awaitConclusion(Duration.ofSeconds(30))).isEqualTo(JobState.COMPLETED);
        }
        assertThat(TestData.firstDifference(target, server.memory)).isEqualTo(-1);
        assertThat(bytesRead.get()).as("the two data segments, not the holes").isLessThanOrEqualTo(2L * MIB);
    }

    @Test
    void qemuNbdsHoleAndDataChunksAssembleIntoTheRightBytes() throws Exception {
        String qemuNbd = QemuTools.require("qemu-nbd");
        Path dir = Sockets.newDirectory();
        try {
            Path file = dir.resolve("sparse.raw");
            byte[] data = TestData.pattern(9, 8192);
            try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
                f.setLength(SIZE);
                f.seek(3L * MIB + 4096);
                f.write(data);
            }
            Path socket = dir.resolve("q.sock");
            try (QemuTools.Child nbd = QemuTools.start(dir, qemuNbd, "-f", "raw", "-r", "-k", socket.toString(), "-x",
                    "disk", file.toString())) {
                QemuTools.awaitFile(socket, nbd);
                try (NbdDevice client = NbdDevice.open(new NbdUri(NbdAddress.unix(socket), "disk"), MAP);
                     FileDevice local = FileDevice.open(file, true)) {
                    assertThat(client.hasAllocationMap()).isTrue();
                    long data0 = client.nextData(0);
                    assertThat(data0).isLessThanOrEqualTo(3L * MIB + 4096).isGreaterThanOrEqualTo(3L * MIB);
                    assertThat(client.nextHole(data0)).isGreaterThanOrEqualTo(3L * MIB + 4096 + 8192);
                    // A read across holes and data: QEMU answers it in hole and data chunks.
                    assertThat(TestData.read(client, 2L * MIB, 4 * MIB))
                            .isEqualTo(TestData.read(local, 2L * MIB, 4 * MIB));
                }
            }
        } finally {
            Sockets.deleteTree(dir);
        }
    }

    /* ---------------- hostile servers ---------------- */

    @Test
    void chunksOutsideTheReadOrOverlappingOrNotCoveringItEndTheConnection() throws Exception {
        // data past the request's end
        hostileRead((side, handle) -> side.send(dataChunk(REPLY_FLAG_DONE, handle, 4096 + 100, new byte[8])));
        // overlapping data chunks whose lengths add up to the request's, leaving its last 50 bytes unwritten
        hostileRead((side, handle) -> {
            side.send(dataChunk(0, handle, 4096, new byte[100]));
            side.send(dataChunk(REPLY_FLAG_DONE, handle, 4096 + 50, new byte[4096 - 100]));
        });
        // done with 100 of 4096 bytes covered
        hostileRead((side, handle) -> side.send(dataChunk(REPLY_FLAG_DONE, handle, 4096, new byte[100])));
        // a hole chunk of the wrong size, a NONE chunk with data, an unknown type
        hostileRead((side, handle) -> side.send(chunk(REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_HOLE, handle, new byte[8])));
        hostileRead((side, handle) -> side.send(chunk(REPLY_FLAG_DONE, REPLY_TYPE_NONE, handle, new byte[1])));
        hostileRead((side, handle) -> side.send(chunk(REPLY_FLAG_DONE, 77, handle, new byte[0])));
        // a chunk for a handle that is not in flight
        hostileRead((side, handle) -> side.send(chunk(REPLY_FLAG_DONE, REPLY_TYPE_NONE, handle + 1000, new byte[0])));
    }

    @Test
    void aBlockStatusForAnotherContextOrWithAnEmptyExtentOrOversizedEndsTheConnection() throws Exception {
        hostileBlockStatus((side, handle) -> side.send(blockStatusChunk(handle, 99, 4096, 0)));
        hostileBlockStatus((side, handle) -> side.send(blockStatusChunk(handle, 7, 0, 0)));
        hostileBlockStatus((side, handle) -> {
            ByteBuffer h = ByteBuffer.allocate(STRUCTURED_REPLY_HEADER_SIZE);
            new StructuredReplyHeader(REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, handle, 0xFFFF_FFF4L).encode(h);
            side.send(h.flip()); // 4 GiB claimed: refused before anything is allocated
        });
        hostileBlockStatus((side, handle) -> side.send(chunk(REPLY_FLAG_DONE, REPLY_TYPE_NONE, handle, new byte[0])));
    }

    @Test
    void aHoleThatMayNotReadAsZeroesIsStillData() throws Exception {
        try (FakeServer fake = new FakeServer(side -> {
            acceptWithMap(side);
            Request r = request(side);
            // NBD_STATE_HOLE without NBD_STATE_ZERO: unallocated, but its bytes are not known to be zero.
            side.send(chunk(REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, r.handle(), ByteBuffer.allocate(20).putInt(7)
                    .putInt(MIB / 2).putInt(STATE_HOLE).putInt(MIB / 2).putInt(STATE_HOLE | STATE_ZERO).array()));
            Request again = request(side);
            side.send(chunk(REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, again.handle(), ByteBuffer.allocate(20).putInt(7)
                    .putInt(MIB / 2).putInt(STATE_HOLE).putInt(MIB / 2).putInt(STATE_HOLE | STATE_ZERO).array()));
            request(side); // DISC
        });
             NbdDevice client = NbdDevice.open(fake.uri(), MAP)) {
            assertThat(client.nextData(0)).as("may hold data: a copy must read it").isZero();
            assertThat(client.nextHole(0)).isEqualTo(MIB / 2);
        }
    }

    @Test
    void anErrorChunkFailsOnlyItsRequest() throws Exception {
        try (FakeServer fake = new FakeServer(side -> {
            acceptWithMap(side);
            Request r = request(side);
            ByteBuffer e = ByteBuffer.allocate(6 + 3).putInt(EIO).putShort((short) 3).put(new byte[] {'b', 'a', 'd'});
            side.send(chunk(REPLY_FLAG_DONE, REPLY_TYPE_ERROR, r.handle(), e.array()));
            Request again = request(side);
            side.send(dataChunk(REPLY_FLAG_DONE, again.handle(), again.offset(), new byte[(int) again.length()]));
            request(side); // DISC
        });
             NbdDevice client = NbdDevice.open(fake.uri(), MAP)) {
            assertThatThrownBy(() -> client.read(4096, ByteBuffer.allocate(4096))).isInstanceOf(DeviceException.class)
                    .satisfies(x -> assertThat(((DeviceException) x).kind()).isEqualTo(Kind.IO_ERROR));
            assertThat(TestData.read(client, 4096, 16)).containsOnly(0);
        }
    }

    /* ---------------- helpers ---------------- */

    private interface Answer {
        void send(FakeServer.Side side, long handle) throws Exception;
    }

    /** A server that answers one 4 KiB READ at 4096 with {@code answer}: the read fails, nothing is written after. */
    private static void hostileRead(Answer answer) throws Exception {
        try (FakeServer fake = new FakeServer(side -> {
            acceptWithMap(side);
            Request r = request(side);
            answer.send(side, r.handle());
            side.read(1); // until the client hangs up
        });
             NbdDevice client = NbdDevice.open(fake.uri(), MAP)) {
            byte[] buffer = new byte[4096];
            Arrays.fill(buffer, (byte) 1);
            assertThatThrownBy(() -> client.read(4096, ByteBuffer.wrap(buffer))).isInstanceOf(DeviceException.class);
            byte[] after = buffer.clone();
            Thread.sleep(50);
            assertThat(buffer).as("not written after the call returned").isEqualTo(after);
            assertThatThrownBy(() -> client.read(0, ByteBuffer.allocate(1)))
                    .satisfies(x -> assertThat(((DeviceException) x).kind()).isEqualTo(Kind.CLOSED));
        }
    }

    private static void hostileBlockStatus(Answer answer) throws Exception {
        try (FakeServer fake = new FakeServer(side -> {
            acceptWithMap(side);
            Request r = request(side);
            answer.send(side, r.handle());
            side.read(1);
        });
             NbdDevice client = NbdDevice.open(fake.uri(), MAP)) {
            assertThatThrownBy(() -> client.nextData(0)).isInstanceOf(DeviceException.class);
        }
    }

    /** Greeting, structured replies, base:allocation as context 7, GO for a 1 MiB export. */
    private static void acceptWithMap(FakeServer.Side side) throws Exception {
        side.greeting();
        OptionRequest sr = side.option();
        assertThat(sr.option()).isEqualTo(OPT_STRUCTURED_REPLY);
        side.optionReply(OPT_STRUCTURED_REPLY, REP_ACK, new byte[0]);
        OptionRequest set = side.option();
        assertThat(set.option()).isEqualTo(OPT_SET_META_CONTEXT);
        byte[] name = BASE_ALLOCATION.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        side.optionReply(OPT_SET_META_CONTEXT, REP_META_CONTEXT, ByteBuffer.allocate(4 + name.length).putInt(7)
                .put(name).array());
        side.optionReply(OPT_SET_META_CONTEXT, REP_ACK, new byte[0]);
        OptionRequest go = side.option();
        assertThat(go.option()).isEqualTo(OPT_GO);
        side.optionReply(OPT_GO, REP_INFO, ByteBuffer.allocate(12).putShort((short) INFO_EXPORT).putLong(MIB)
                .putShort((short) (TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH)).array());
        side.optionReply(OPT_GO, REP_ACK, new byte[0]);
    }

    private static Request request(FakeServer.Side side) throws Exception {
        return Request.decode(ByteBuffer.wrap(side.read(REQUEST_SIZE)));
    }

    private static ByteBuffer chunk(int flags, int type, long handle, byte[] payload) {
        ByteBuffer b = ByteBuffer.allocate(STRUCTURED_REPLY_HEADER_SIZE + payload.length);
        new StructuredReplyHeader(flags, type, handle, payload.length).encode(b);
        return b.put(payload).flip();
    }

    private static ByteBuffer dataChunk(int flags, long handle, long offset, byte[] data) {
        return chunk(flags, REPLY_TYPE_OFFSET_DATA, handle, ByteBuffer.allocate(8 + data.length).putLong(offset)
                .put(data).array());
    }

    private static ByteBuffer blockStatusChunk(long handle, int context, int length, int status) {
        return chunk(REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, handle, ByteBuffer.allocate(12).putInt(context)
                .putInt(length).putInt(status).array());
    }
}
