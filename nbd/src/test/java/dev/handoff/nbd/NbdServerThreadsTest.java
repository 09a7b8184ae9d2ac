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
 * Which thread serves a request, with inline requests on: the connection's reader serves a small
 * READ or WRITE itself while no other request of the connection is in flight; anything else goes
 * to a worker, so a client with several requests in flight keeps the workers' concurrency. Off
 * (the default), every request goes to a worker.
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

    @Test
    void smallReadsAndWritesOneAtATimeAreServedByTheReaderAndTheRestByWorkers() throws Exception {
        try (TestServer server = TestServer.start(16L << 20, false, b -> b.inlineRequests(true))) {
            ConcurrentLinkedQueue<String> log = new ConcurrentLinkedQueue<>();
            server.device.hook((op, offset, length) -> log.add(served(op, length)));
            try (NbdDevice client = server.client()) {
                for (int i = 0; i < 16; i++) {
                    client.write((long) i * SMALL, ByteBuffer.allocate(SMALL));
                    client.read((long) i * SMALL, ByteBuffer.allocate(SMALL));
                }
                client.write(1L << 20, ByteBuffer.allocate(ServerConnection.INLINE_MAX));
                client.write(2L << 20, ByteBuffer.allocate(ServerConnection.INLINE_MAX + SMALL));
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
        try (TestServer server = TestServer.start(16L << 20, false, b -> b.inlineRequests(true))) {
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
     * The trade-off: a small READ the device holds, served by the reader, holds up the next request
     * of its connection until it returns; with inline requests off (the default), a worker serves
     * it and the next request is answered first.
     */
    @Test
    void aHeldSmallReadHoldsUpTheNextRequestOnlyWhenTheReaderServesIt() throws Exception {
        for (boolean inline : new boolean[] {true, false}) {
            try (TestServer server = inline ? TestServer.start(16L << 20, false, b -> b.inlineRequests(true))
                    : TestServer.start(16L << 20)) {
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
