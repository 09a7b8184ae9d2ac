package dev.handoff.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Which thread serves a request, with inline requests on (the default): the connection's reader
 * serves a small READ or WRITE itself when it had to wait for it and no other request of the
 * connection is in flight; anything else goes to a worker, so a client with several requests in
 * flight, or one whose next request is already queued, keeps the workers' concurrency. Off, every
 * request goes to a worker.
 */
@Timeout(60)
class NbdServerThreadsTest {
    private static final int SMALL = 4096;

    /** "read 4096 on nbd-server-1", one per device operation, in the order they ran. */
    private static String served(String op, long length) {
        return op + " " + length + " on " + Thread.currentThread().getName();
    }

    private static boolean onAWorker(String entry) {
        return entry.endsWith("-worker");
    }

    /** Longer than any read of a header already in the socket: the reader waits for what follows. */
    private static void pause() throws InterruptedException {
        Thread.sleep(5);
    }

    @Test
    void smallReadsAndWritesOneAtATimeAreServedByTheReaderAndTheRestByWorkers() throws Exception {
        try (TestServer server = TestServer.start(16L << 20)) {
            ConcurrentLinkedQueue<String> log = new ConcurrentLinkedQueue<>();
            server.device.hook((op, offset, length) -> log.add(served(op, length)));
            try (NbdDevice client = server.client()) {
                for (int i = 0; i < 16; i++) {
                    pause();
                    client.write((long) i * SMALL, ByteBuffer.allocate(SMALL));
                    pause();
                    client.read((long) i * SMALL, ByteBuffer.allocate(SMALL));
                }
                pause();
                client.write(1L << 20, ByteBuffer.allocate(ServerConnection.INLINE_MAX));
                pause();
                client.write(2L << 20, ByteBuffer.allocate(ServerConnection.INLINE_MAX + SMALL));
                pause();
                client.flush();
            }
            List<String> ops = List.copyOf(log);
            assertThat(ops).hasSize(35);
            assertThat(ops.subList(0, 33)).as("one request at a time, at most INLINE_MAX bytes")
                    .noneMatch(NbdServerThreadsTest::onAWorker)
                    .allMatch(e -> e.matches("(read|write) \\d+ on nbd-server-\\d+"));
            assertThat(ops.get(33)).as("a write above INLINE_MAX").startsWith("write " + (ServerConnection.INLINE_MAX + SMALL))
                    .matches(NbdServerThreadsTest::onAWorker);
            assertThat(ops.get(34)).as("a flush").startsWith("flush").matches(NbdServerThreadsTest::onAWorker);
        }
    }

    @Test
    void aSmallReadThatFindsAnotherRequestInFlightGoesToAWorkerAndIsAnsweredWhileTheOtherWaits() throws Exception {
        try (TestServer server = TestServer.start(16L << 20)) {
            CountDownLatch flushEntered = new CountDownLatch(1);
            CountDownLatch releaseFlush = new CountDownLatch(1);
            ConcurrentLinkedQueue<String> log = new ConcurrentLinkedQueue<>();
            server.device.hook((op, offset, length) -> {
                log.add(served(op, length));
                if (op.equals("flush")) {
                    flushEntered.countDown();
                    try {
                        releaseFlush.await(30, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            });
            try (NbdDevice client = server.client()) {
                CompletableFuture<Void> flush = CompletableFuture.runAsync(() -> {
                    try {
                        client.flush();
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                });
                assertThat(flushEntered.await(20, TimeUnit.SECONDS)).as("the flush reached the device").isTrue();
                pause();
                client.read(0, ByteBuffer.allocate(SMALL)); // answered while the flush still waits
                assertThat(flush).isNotDone();
                releaseFlush.countDown();
                flush.get(20, TimeUnit.SECONDS);
            } finally {
                releaseFlush.countDown();
            }
            assertThat(List.copyOf(log)).hasSize(2).allMatch(NbdServerThreadsTest::onAWorker)
                    .last().asString().startsWith("read " + SMALL);
        }
    }

    /**
     * A request whose header was already waiting when the reader came to read it goes to a worker,
     * even with nothing else in flight: its client sent it without waiting for a reply, so more may
     * follow, and they are read while a worker serves it. Each round sends two small READs back to
     * back after a pause: the reader waited for the first, serves it, and finds the second queued.
     */
    @Test
    void aSmallRequestAlreadyQueuedBehindTheOneServedGoesToAWorker() throws Exception {
        int rounds = 20;
        try (TestServer server = TestServer.start(16L << 20)) {
            ConcurrentLinkedQueue<String> log = new ConcurrentLinkedQueue<>();
            server.device.hook((op, offset, length) -> log.add(op + " " + offset + " on " + Thread.currentThread().getName()));
            try (RawPeer peer = server.peer().open("disk")) {
                for (int round = 0; round < rounds; round++) {
                    pause();
                    ByteBuffer both = ByteBuffer.allocate(2 * NbdWire.REQUEST_SIZE);
                    new NbdWire.Request(0, NbdWire.CMD_READ, 2L * round, 0, SMALL).encode(both);
                    new NbdWire.Request(0, NbdWire.CMD_READ, 2L * round + 1, SMALL, SMALL).encode(both);
                    peer.send(both.flip());
                    for (int reply = 0; reply < 2; reply++) {
                        assertThat(peer.reply().error()).isZero();
                        peer.read(SMALL);
                    }
                }
            }
            List<String> ops = List.copyOf(log);
            assertThat(ops).hasSize(2 * rounds);
            long firstsOnAWorker = ops.stream().filter(e -> e.startsWith("read 0 ")).filter(NbdServerThreadsTest::onAWorker).count();
            long secondsOnAWorker = ops.stream().filter(e -> e.startsWith("read " + SMALL + " ")).filter(NbdServerThreadsTest::onAWorker).count();
            // One system call reads a queued header in microseconds; a descheduled reader can take
            // longer now and then, so the count has slack where each outcome is all or nothing.
            assertThat(secondsOnAWorker).as("second READs (already queued) on a worker, of " + rounds).isGreaterThanOrEqualTo(rounds / 2);
            assertThat(firstsOnAWorker).as("first READs (waited for) on a worker, of " + rounds).isLessThanOrEqualTo(rounds / 2);
        }
    }

    /**
     * The trade-off: a small READ the device holds, served by the reader, holds up the next request
     * of its connection until it returns; with inline requests off, a worker serves
     * it and the next request is answered first.
     */
    @Test
    void aHeldSmallReadHoldsUpTheNextRequestOnlyWhenTheReaderServesIt() throws Exception {
        for (boolean inline : new boolean[] {true, false}) {
            try (TestServer server = TestServer.start(16L << 20, false, b -> b.inlineRequests(inline))) {
                CountDownLatch held = new CountDownLatch(1);
                CountDownLatch secondReached = new CountDownLatch(1);
                CountDownLatch release = new CountDownLatch(1);
                server.device.hook((op, offset, length) -> {
                    if (op.equals("read") && offset == 0) {
                        held.countDown();
                        try {
                            release.await(30, TimeUnit.SECONDS);
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    } else if (op.equals("read")) {
                        secondReached.countDown();
                    }
                });
                try (RawPeer peer = server.peer().open("disk")) {
                    pause();
                    peer.request(0, NbdWire.CMD_READ, 100, 0, SMALL);
                    assertThat(held.await(20, TimeUnit.SECONDS)).isTrue();
                    peer.request(0, NbdWire.CMD_READ, 200, SMALL, SMALL);
                    if (inline) {
                        assertThat(secondReached.await(300, TimeUnit.MILLISECONDS))
                                .as("the second READ reached the device while the reader served the first").isFalse();
                        release.countDown();
                        assertThat(peer.reply().handle()).isEqualTo(100);
                        peer.read(SMALL);
                        assertThat(peer.reply().handle()).isEqualTo(200);
                    } else {
                        assertThat(peer.reply().handle()).as("answered while the first is held").isEqualTo(200);
                        peer.read(SMALL);
                        release.countDown();
                        assertThat(peer.reply().handle()).isEqualTo(100);
                    }
                    peer.read(SMALL);
                } finally {
                    release.countDown();
                }
            }
        }
    }
}
