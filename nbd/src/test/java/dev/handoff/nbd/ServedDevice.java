package dev.handoff.nbd;

import dev.handoff.device.BlockDevice;
import java.io.IOException;
import java.nio.file.Path;

/**
 * One device exported by an {@link NbdServer} on a unix socket in a fresh short directory
 * ({@link Sockets}), and Handoff's client connected to it: the whole setup of a test that needs a
 * server, a client and nothing else. Closing it closes the client, then the server, then deletes
 * the directory, also when one of them fails to close. The test thread opens and closes it; the
 * client it hands out is as thread-safe as {@link NbdDevice}.
 */
final class ServedDevice implements AutoCloseable {
    private final Path dir;
    private final NbdServer server;
    private final NbdDevice client;

    private ServedDevice(Path dir, NbdServer server, NbdDevice client) {
        this.dir = dir;
        this.server = server;
        this.client = client;
    }

    /** Exports {@code device} as {@code name} and connects a client to it. */
    static ServedDevice serve(String name, BlockDevice device) throws IOException {
        Path dir = Sockets.newDirectory();
        NbdServer server = null;
        try {
            server = NbdServer.builder().listen(NbdAddress.unix(dir.resolve("s.sock")))
                    .export(NbdExport.of(name, device)).start();
            return new ServedDevice(dir, server, NbdDevice.open(server.uri(name)));
        } catch (IOException | RuntimeException e) {
            if (server != null) {
                server.close();
            }
            Sockets.deleteTree(dir);
            throw e;
        }
    }

    NbdDevice client() {
        return client;
    }

    @Override
    public void close() {
        try (NbdServer s = server) {
            client.close();
        } finally {
            Sockets.deleteTree(dir);
        }
    }
}
