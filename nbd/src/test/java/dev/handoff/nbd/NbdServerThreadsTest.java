package dev.handoff.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Which thread serves a request, with inline requests on (the default): the connection's reader
 * serves a small READ or WRITE itself when it caught up with its client (it waited for the
 * request, and nothing of a later one has arrived) and no other request of the connection is in
 * flight; anything else goes to a worker, so a client with several requests in flight, or one that
 * sends them without waiting for replies, keeps the workers' concurrency. Off, every request goes
 * to a worker.
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

    /** Several requests in one write, as a client that sends them without waiting for a reply does. */
    private static ByteBuffer requests(NbdWire.Request... requests) {
        ByteBuffer all = ByteBuffer.allocate(requests.length * NbdWire.REQUEST_SIZE);
        for (NbdWire.Request r : requests) {
            r.encode(all);
        }
        return all.flip();
    }

    /**
     * Requests that arrive together go to workers from the first, even with nothing else in
     * flight and after the reader waited for them: their client sent the later ones without
     * waiting for a reply, and the reader sees them already read ahead (ReadAhead.pending()).
     */
    @Test
    void smallRequestsSentTogetherAfterAPauseAreAllServedByWorkers() throws Exception {
        int rounds = 10;
        try (TestServer server = TestServer.start(16L << 20)) {
            ConcurrentLinkedQueue<String> log = new ConcurrentLinkedQueue<>();
            server.device.hook((op, offset, length) -> log.add(served(op, length)));
            try (RawPeer peer = server.peer().open("disk")) {
                for (int round = 0; round < rounds; round++) {
                    pause();
                    peer.send(requests(new NbdWire.Request(0, NbdWire.CMD_READ, 2L * round, 0, SMALL),
                            new NbdWire.Request(0, NbdWire.CMD_READ, 2L * round + 1, SMALL, SMALL)));
                    for (int reply = 0; reply < 2; reply++) {
                        assertThat(peer.reply().error()).isZero();
                        peer.read(SMALL);
                    }
                }
            }
            assertThat(List.copyOf(log)).hasSize(2 * rounds).allMatch(NbdServerThreadsTest::onAWorker);
        }
    }

    /**
     * A reader that comes late to a request, one already waiting when it came to read it, hands it
     * to a worker even when nothing else is in flight (on a busy machine the reader's lateness is
     * the CPUs being taken). The first READ, waited for, is held in the device by the reader while
     * the second arrives; the reader then finds the second waiting. The wait that counts is made
     * 50 ms here, far from both reads' times, so the test does not depend on the machine's speed.
     */
    @Test
    void aSmallRequestTheReaderFindsAlreadyWaitingGoesToAWorker() throws Exception {
        try (TestServer server = TestServer.start(16L << 20, false, b -> b.inlineAfterWait(Duration.ofMillis(50)))) {
            CountDownLatch held = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            ConcurrentLinkedQueue<String> log = new ConcurrentLinkedQueue<>();
            server.device.hook((op, offset, length) -> {
                log.add(op + " " + offset + " on " + Thread.currentThread().getName());
                if (offset == 0) {
                    held.countDown();
                    try {
                        release.await(30, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            });
            try (RawPeer peer = server.peer().open("disk")) {
                Thread.sleep(200); // the reader waits for the first READ far longer than 50 ms
                peer.request(0, NbdWire.CMD_READ, 1, 0, SMALL);
                assertThat(held.await(20, TimeUnit.SECONDS)).isTrue();
                peer.request(0, NbdWire.CMD_READ, 2, SMALL, SMALL);
                Thread.sleep(100); // the second READ is in the socket before the reader comes back
                release.countDown();
                for (int reply = 0; reply < 2; reply++) {
                    assertThat(peer.reply().error()).isZero();
                    peer.read(SMALL);
                }
            } finally {
                release.countDown();
            }
            assertThat(List.copyOf(log)).hasSize(2);
            assertThat(List.copyOf(log).get(0)).as("the READ the reader waited for").startsWith("read 0 ")
                    .matches(e -> !onAWorker(e));
            assertThat(List.copyOf(log).get(1)).as("the READ that was waiting for the reader").startsWith("read " + SMALL + " ")
                    .matches(NbdServerThreadsTest::onAWorker);
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
