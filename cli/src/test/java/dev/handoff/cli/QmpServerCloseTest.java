package dev.handoff.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A command whose effect shuts the server down (a forced cancel ends the job, and the process
 * closes its control socket) still gets its reply before the client is disconnected.
 */
class QmpServerCloseTest {
    @TempDir
    Path dir;

    @Test
    void aCommandThatTriggersCloseStillGetsItsReply() throws Exception {
        Path sock = dir.resolve("qmp.sock");
        AtomicReference<QmpServer> server = new AtomicReference<>();
        CountDownLatch closing = new CountDownLatch(1);
        AtomicReference<Thread> closerThread = new AtomicReference<>();
        QmpServer.Handler handler = new QmpServer.Handler() {
            @Override
            public JsonNode execute(String command, ObjectNode arguments) {
                // As when the job ends: another thread closes the server while this command is in hand.
                Thread closer = new Thread(() -> {
                    closing.countDown();
                    server.get().close();
                });
                closerThread.set(closer);
                closer.start();
                try {
                    closing.await();
                    Thread.sleep(200); // let close() run ahead of the reply
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return Json.object().put("done", true);
            }

            @Override
            public Set<String> commands() {
                return Set.of("stop-now");
            }
        };
        server.set(QmpServer.bind(sock, handler, "test"));
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(sock));
            BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.UTF_8));
            assertThat(in.readLine()).contains("\"QMP\"");
            send(ch, "{\"execute\":\"qmp_capabilities\",\"id\":1}");
            assertThat(in.readLine()).contains("\"return\"").contains("\"id\":1");
            send(ch, "{\"execute\":\"stop-now\",\"id\":2}");
            String reply = in.readLine();
            assertThat(reply).as("the reply to the command that closed the server").isNotNull()
                    .contains("\"done\":true").contains("\"id\":2");
            assertThat(in.readLine()).as("then the server disconnects").isNull();
        }
        assertThat(closing.await(5, TimeUnit.SECONDS)).isTrue();
        closerThread.get().join(TimeUnit.SECONDS.toMillis(10));
        assertThat(Files.exists(sock)).as("socket file removed").isFalse();
    }

    private static void send(SocketChannel ch, String line) throws Exception {
        ByteBuffer b = ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8));
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }
}
