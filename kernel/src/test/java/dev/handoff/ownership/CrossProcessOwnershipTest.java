package dev.handoff.ownership;

import static dev.handoff.ownership.OwnedImage.State.ACTIVE;
import static dev.handoff.ownership.OwnedImage.State.INACTIVE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.handoff.device.FileDevice;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two JVMs on one image file: the QEMU-compatible lock excludes across processes, dies with its
 * holder ({@code kill -9}), and the survivor takes over with a higher epoch and sees the dead
 * owner's flushed writes.
 */
class CrossProcessOwnershipTest {

    @TempDir
    Path dir;
    private Path image;

    @BeforeEach
    void createImage() throws Exception {
        image = dir.resolve("shared.img");
        FileDevice.create(image, 1 << 20).close();
    }

    @Test
    void whileOneProcessIsActiveTheOtherCannotActivateInEitherDirection() throws Exception {
        try (PeerProcess peer = new PeerProcess(image, "peer");
                OwnedImage here = OwnedImage.openFile(image, "here", INACTIVE)) {
            assertThat(peer.send("activate")).isEqualTo("OK 1");
            assertThatThrownBy(here::activate).isInstanceOf(ImageInactiveException.class)
                    .hasMessageContaining("locked by another process");
            assertThat(here.state()).isEqualTo(INACTIVE);

            assertThat(peer.send("inactivate")).isEqualTo("OK 1");
            here.activate();
            assertThat(here.epoch()).isEqualTo(2);
            assertThat(peer.send("activate")).startsWith("ERR INACTIVE").contains("locked by another process");
            assertThat(peer.send("write 0 512 7")).startsWith("ERR INACTIVE");
        }
    }

    @Test
    void afterKillOfTheOwnerTheOtherActivatesWithAHigherEpochAndSeesItsFlushedWrites() throws Exception {
        OwnedImage here = OwnedImage.openFile(image, "here", INACTIVE);
        try (PeerProcess peer = new PeerProcess(image, "peer")) {
            assertThat(peer.send("activate")).isEqualTo("OK 1");
            assertThat(peer.send("write 0 65536 90")).isEqualTo("OK 1");
            assertThat(peer.send("write 524288 4096 91")).isEqualTo("OK 1");
            assertThat(peer.send("flush")).isEqualTo("OK 1"); // acknowledged and flushed
            assertThatThrownBy(here::activate).isInstanceOf(ImageInactiveException.class);

            peer.kill();
        }
        OwnershipRecord left = here.readRecord();
        assertThat(left).isEqualTo(new OwnershipRecord(1, "peer", false)); // died while active
        here.activate();
        assertThat(here.epoch()).isEqualTo(2);
        assertThat(here.readRecord()).isEqualTo(new OwnershipRecord(2, "here", false));
        assertThat(SharedImage.read(here, 0, 65536)).isEqualTo(SharedImage.filled(65536, 90));
        assertThat(SharedImage.read(here, 524288, 4096)).isEqualTo(SharedImage.filled(4096, 91));
        here.close();
    }

    @Test
    void aHandoffAcrossProcessesCarriesTheDataAndTheEpoch() throws Exception {
        try (PeerProcess peer = new PeerProcess(image, "dst");
                OwnedImage source = OwnedImage.openFile(image, "src", ACTIVE)) {
            source.write(4096, SharedImage.bytes(4096, 33));
            HandoffToken token = source.prepareHandoff();
            assertThat(token).isEqualTo(new HandoffToken(1, "src"));
            assertThat(peer.send("accept 1 someone-else")).startsWith("ERR FENCED");
            assertThat(peer.send("accept " + token.epoch() + " " + token.ownerId())).isEqualTo("OK 2");
            assertThat(peer.send("check 4096 4096 33")).isEqualTo("OK 2");
            assertThatThrownBy(source::abortHandoff).isInstanceOf(ImageInactiveException.class)
                    .hasMessageContaining("locked by another process");
            assertThat(peer.send("close")).isEqualTo("OK 2");
            assertThatThrownBy(source::abortHandoff).isInstanceOf(ImageFencedException.class);
            assertThat(source.readRecord()).isEqualTo(new OwnershipRecord(2, "dst", true));
        }
    }
}
