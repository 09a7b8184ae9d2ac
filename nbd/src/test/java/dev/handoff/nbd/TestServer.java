package dev.handoff.nbd;

import dev.handoff.device.MemoryDevice;
import java.io.IOException;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * A server on a fresh unix socket exporting {@code "disk"}: a guarded memory device, with the
 * allocation guard installed (limit: the maximum payload, or the 64 KiB option limit if larger).
 */
final class TestServer implements AutoCloseable {
    final Path dir;
    final Path socket;
    final MemoryDevice memory;
    final GuardedDevice device;
    final AllocationGuard allocations;
    final NbdServer server;

    private TestServer(Path dir, MemoryDevice memory, GuardedDevice device, AllocationGuard allocations,
                       NbdServer server) {
        this.dir = dir;
        this.socket = dir.resolve("s");
        this.memory = memory;
        this.device = device;
        this.allocations = allocations;
        this.server = server;
    }

    static TestServer start(long size) throws IOException {
        return start(size, false, b -> { });
    }

    static TestServer start(long size, boolean readOnly, Consumer<NbdServer.Builder> config) throws IOException {
        Path dir = Sockets.newDirectory();
        MemoryDevice memory = new MemoryDevice(size);
        GuardedDevice device = new GuardedDevice(memory, readOnly);
        NbdServer.Builder builder = NbdServer.builder()
                .listen(NbdAddress.unix(dir.resolve("s")))
                .export(new NbdExport("disk", device, readOnly, "a test disk"));
        config.accept(builder);
        AllocationGuard allocations = new AllocationGuard(
                Math.max(builder.limits().maxPayload(), NbdWire.MAX_OPTION_DATA));
        builder.allocator(allocations);
        try {
            return new TestServer(dir, memory, device, allocations, builder.start());
        } catch (IOException | RuntimeException e) {
            Sockets.deleteTree(dir);
            throw e;
        }
    }

    NbdUri uri() {
        return server.uri("disk");
    }

    RawPeer peer() throws IOException {
        return new RawPeer(socket);
    }

    NbdDevice client() throws Exception {
        return NbdDevice.open(uri());
    }

    @Override
    public void close() {
        try {
            server.close();
        } finally {
            Sockets.deleteTree(dir);
        }
    }
}
