package dev.handoff.nbd;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.BlockDeviceContract;
import dev.handoff.device.MemoryDevice;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Nested;

/**
 * The kernel's device contract, run on the NBD client talking to this module's server (over a
 * unix socket and over TCP on 127.0.0.1), with a small maximum payload so that requests split.
 */
class NbdDeviceContractTest {

    abstract static class OverSocket extends BlockDeviceContract {
        final List<AutoCloseable> resources = new ArrayList<>();

        abstract NbdAddress address(Path dir);

        @Override
        protected BlockDevice create(long size) throws Exception {
            Path dir = Sockets.newDirectory();
            resources.add(() -> Sockets.deleteTree(dir));
            NbdServer server = NbdServer.builder()
                    .listen(address(dir))
                    .export(NbdExport.of("contract", new MemoryDevice(size)))
                    .maxPayload(64 << 10)
                    .start();
            resources.add(server);
            return NbdDevice.open(server.uri("contract"), NbdDevice.Options.defaults().withMaxInFlight(4));
        }

        @AfterEach
        void stopServer() throws Exception {
            for (int i = resources.size() - 1; i >= 0; i--) {
                resources.get(i).close();
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
