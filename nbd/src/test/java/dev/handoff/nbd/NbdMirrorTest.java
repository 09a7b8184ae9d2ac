package dev.handoff.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.DeviceException.Kind;
import dev.handoff.device.MemoryDevice;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.Liveness;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import dev.handoff.ownership.HandoffToken;
import dev.handoff.ownership.OwnedImage;
import dev.handoff.workload.SyntheticGuest;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The mirror job over NBD, in one JVM: NBD as target, as source, and the exported guest device. */
@Timeout(120)
class NbdMirrorTest {
    private static final long SIZE = 32 << 20;
    private static final MirrorOptions OPTIONS = MirrorOptions.builder().granularity(64 << 10).build();
    private static final Duration WAIT = Duration.ofSeconds(60);

    private Path dir;

    @BeforeEach
    void directory() {
        dir = Sockets.newDirectory();
    }

    @AfterEach
    void cleanUp() {
        Sockets.deleteTree(dir);
    }

    @Test
    void mirrorsIntoAnNbdExportWhileTheGuestWrites() throws Exception {
        MemoryDevice source = new MemoryDevice(SIZE);
        TestData.fill(source, 1);
        MemoryDevice target = new MemoryDevice(SIZE);
        try (NbdServer server = serve("target", target);
             NbdDevice remote = NbdDevice.open(server.uri("target"))) {
            MirrorJob job = MirrorJob.create(source, remote, OPTIONS);
            SyntheticGuest guest = new SyntheticGuest(job.guestDevice(), 2, 7, 128 << 10);
            guest.start(Long.MAX_VALUE);
            job.start();
            assertThat(Converge.awaitReady(job, WAIT)).as("READY: %s", job.failureReason()).isTrue();
            Liveness.awaitWrites(guest, guest.writes() + 20, WAIT); // phase 2: guest writes keep reaching the target
            guest.stop();
            job.complete();
            assertThat(job.awaitConclusion(WAIT)).isEqualTo(JobState.COMPLETED);
            assertThat(guest.failures()).isEmpty();
            assertThat(guest.writes()).isPositive();
            assertThat(TestData.firstDifference(source, target)).isEqualTo(-1);
            assertThat(guest.verify(target)).isNull();
        }
    }

    @Test
    void mirrorsFromAnNbdSource() throws Exception {
        MemoryDevice source = new MemoryDevice(SIZE);
        TestData.fill(source, 2);
        MemoryDevice target = new MemoryDevice(SIZE);
        try (NbdServer server = serve("source", source);
             NbdDevice remote = NbdDevice.open(server.uri("source"))) {
            MirrorJob job = MirrorJob.create(remote, target, OPTIONS);
            SyntheticGuest guest = new SyntheticGuest(job.guestDevice(), 2, 8, 64 << 10);
            guest.start(Long.MAX_VALUE);
            job.start();
            assertThat(Converge.awaitReady(job, WAIT)).as("READY: %s", job.failureReason()).isTrue();
            guest.stop();
            job.complete();
            assertThat(job.awaitConclusion(WAIT)).isEqualTo(JobState.COMPLETED);
            assertThat(guest.failures()).isEmpty();
            assertThat(TestData.firstDifference(source, target)).isEqualTo(-1);
            assertThat(guest.verify(target)).isNull();
        }
    }

    @Test
    void theExportedGuestDeviceTakesClientWritesDuringTheMirror() throws Exception {
        MemoryDevice source = new MemoryDevice(SIZE);
        TestData.fill(source, 3);
        MemoryDevice target = new MemoryDevice(SIZE);
        MirrorJob job = MirrorJob.create(source, target, OPTIONS);
        try (NbdServer server = serve("guest", job.guestDevice());
             NbdDevice client = NbdDevice.open(server.uri("guest"))) {
            SyntheticGuest guest = new SyntheticGuest(client, 3, 9, 96 << 10);
            guest.start(Long.MAX_VALUE);
            job.start();
            assertThat(Converge.awaitReady(job, WAIT)).as("READY: %s", job.failureReason()).isTrue();
            Liveness.awaitWrites(guest, guest.writes() + 20, WAIT);
            job.complete(); // the pivot happens under the client's writes
            assertThat(job.awaitConclusion(WAIT)).isEqualTo(JobState.COMPLETED);
            Liveness.awaitWrites(guest, guest.writes() + 20, WAIT); // now on the target, still through the same export
            guest.stop();
            assertThat(guest.failures()).isEmpty();
            assertThat(guest.verify(target)).isNull();
            assertThat(guest.verify(client)).isNull();
        }
    }

    /**
     * The migration of the issue, in one JVM: A serves its image (the mirror's guest device) and
     * mirrors it into B's export while a client writes through A's export; at READY the client
     * stops, A cancels (the target is a consistent copy, the guest stays on A's image, as QEMU
     * does for migration), and hands over: A's image goes inactive and A's export refuses writes
     * (EPERM), while B, the active owner of its image, serves the same bytes.
     */
    @Test
    void migratesBetweenTwoServersAndTheSourceIsRefusedAfterwards() throws Exception {
        MemoryDevice diskA = new MemoryDevice(SIZE);
        TestData.fill(diskA, 4);
        MemoryDevice diskB = new MemoryDevice(SIZE);
        OwnedImage imageA = OwnedImage.openMemory(diskA, "A", OwnedImage.State.ACTIVE);
        OwnedImage imageB = OwnedImage.openMemory(diskB, "B", OwnedImage.State.ACTIVE);
        try (NbdServer serverB = serve("b", "disk", imageB);
             NbdDevice toB = NbdDevice.open(serverB.uri("disk"))) {
            MirrorJob job = MirrorJob.create(imageA, toB, OPTIONS);
            try (NbdServer serverA = serve("a", "disk", job.guestDevice());
                 NbdDevice guestOnA = NbdDevice.open(serverA.uri("disk"))) {
                SyntheticGuest guest = new SyntheticGuest(guestOnA, 2, 10, 64 << 10);
                guest.start(Long.MAX_VALUE);
                job.start();
                assertThat(Converge.awaitReady(job, WAIT)).as("READY: %s", job.failureReason()).isTrue();
                guest.stop();
                job.cancel(); // after READY: runs until in sync, then COMPLETED without a pivot
                assertThat(job.awaitConclusion(WAIT)).isEqualTo(JobState.COMPLETED);
                HandoffToken token = imageA.prepareHandoff();
                assertThat(token.ownerId()).isEqualTo("A");
                assertThat(imageA.state()).isEqualTo(OwnedImage.State.INACTIVE);

                assertThatThrownBy(() -> guestOnA.write(0, ByteBuffer.wrap(new byte[] {1})))
                        .as("A's export refuses writes once A handed over")
                        .isInstanceOfSatisfying(DeviceException.class, e -> assertThat(e.kind()).isEqualTo(Kind.READ_ONLY));
                assertThat(guest.failures()).isEmpty();
                assertThat(guest.verify(diskB)).isNull();
                assertThat(TestData.firstDifference(diskA, diskB)).isEqualTo(-1);
            }
            try (NbdDevice clientOfB = NbdDevice.open(serverB.uri("disk"))) {
                clientOfB.write(0, ByteBuffer.wrap(new byte[] {42}));
                clientOfB.flush();
                assertThat(TestData.read(diskB, 0, 1)).containsExactly(42);
            }
        } finally {
            imageA.close();
            imageB.close();
        }
    }

    private NbdServer serve(String name, BlockDevice device) throws Exception {
        return serve(name, name, device);
    }

    private NbdServer serve(String socket, String name, BlockDevice device) throws Exception {
        return NbdServer.builder().listen(NbdAddress.unix(dir.resolve(socket + ".sock")))
                .export(NbdExport.of(name, device)).start();
    }
}
