package dev.handoff.nbd;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.MemoryDevice;
import dev.handoff.testkit.DeviceKit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Nested;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The test kit on the NBD client talking to this module's server (over a unix socket and over TCP
 * on 127.0.0.1), with a small maximum payload so that requests split and several are in flight.
 * Its layering exports the kit's backing device, so a fault of the server's device must reach the
 * client's caller with its kind.
 */
class NbdDeviceKitTest {

    abstract static class OverSocket extends DeviceKit {
        final List<AutoCloseable> resources = new ArrayList<>();

        abstract NbdAddress address(Path dir);

        private BlockDevice serve(BlockDevice device) throws Exception {
            Path dir = Sockets.newDirectory();
            NbdServer server;
            synchronized (resources) {
                resources.add(() -> Sockets.deleteTree(dir));
                server = NbdServer.builder()
                        .listen(address(dir))
                        .export(NbdExport.of("kit", device))
                        .maxPayload(64 << 10)
                        .start();
                resources.add(server);
            }
            return NbdDevice.open(server.uri("kit"), NbdDevice.Options.defaults().withMaxInFlight(4));
        }

        @Override
        public BlockDevice create(long size) throws Exception {
            return serve(new MemoryDevice(size));
        }

        @Override
        public boolean discardReadsZeroes() {
            return true;
        }

        @Override
        public Layering layering() {
            return this::serve;
        }

        @AfterEach
        void stopServers() throws Exception {
            synchronized (resources) {
                for (int i = resources.size() - 1; i >= 0; i--) {
                    resources.get(i).close();
                }
                resources.clear();
            }
        }
    }

    @Nested
    class Unix extends OverSocket {
        @Override
        NbdAddress address(Path dir) {
            return NbdAddress.unix(dir.resolve("s"));
        }
    }

    @Nested
    class Tcp extends OverSocket {
        @Override
        NbdAddress address(Path dir) {
            return NbdAddress.tcp(0);
        }
    }
}
