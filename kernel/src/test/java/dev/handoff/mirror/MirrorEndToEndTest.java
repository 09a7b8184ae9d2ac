package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.FileDevice;
import dev.handoff.device.MemoryDevice;
import dev.handoff.workload.SyntheticGuest;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.time.Duration;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The whole job on real threads: guest threads write random unaligned ranges with
 * self-identifying content while the job copies; every acknowledged write must be on the device
 * the guest ends up on, and the target must equal the source where the job says so.
 */
class MirrorEndToEndTest {
    private static final long SIZE = 24L << 20;
    /** Under the JUnit default timeout (two minutes), so that a stuck job fails with its state. */
    private static final Duration LIMIT = Duration.ofSeconds(45);

    @TempDir
    Path dir;

    static Stream<Arguments> devicesAndModes() {
        return Stream.of(
                Arguments.of("memory", CopyMode.BACKGROUND),
                Arguments.of("memory", CopyMode.WRITE_BLOCKING),
                Arguments.of("file", CopyMode.BACKGROUND),
                Arguments.of("file", CopyMode.WRITE_BLOCKING));
    }

    @ParameterizedTest(name = "{0} devices, {1}")
    @MethodSource("devicesAndModes")
    void pivotKeepsEveryAcknowledgedWriteWhileTheGuestWritesThroughIt(String kind, CopyMode mode) throws Exception {
        BlockDevice source = device(kind, "src");
        BlockDevice target = device(kind, "dst");
        JobHarness.fillRandom(source, 11);
        MirrorJob job = MirrorJob.create(source, target, options(mode));
        SyntheticGuest guest = new SyntheticGuest(job.guestDevice(), 4, 5, 96 << 10);
        guest.start(1_000_000);
        job.start();
        assertThat(Liveness.awaitReady(job, LIMIT)).as("READY while the guest writes").isTrue();
        Liveness.awaitWrites(guest, guest.writes() + 20, LIMIT); // phase 2 under writes
        job.complete();
        assertThat(Liveness.awaitConclusion(job, LIMIT)).isEqualTo(JobState.COMPLETED);
        assertThat(job.guestDevice().currentDevice()).isSameAs(target);
        Liveness.awaitWrites(guest, guest.writes() + 20, LIMIT); // the guest goes on, on the target
        guest.stop();

        assertThat(guest.failures()).isEmpty();
        assertThat(guest.writes()).isPositive();
        assertThat(guest.verify(target)).as("every acknowledged write is on the target").isNull();
        source.close();
        target.close();
    }

    @ParameterizedTest(name = "{0} devices, {1}")
    @MethodSource("devicesAndModes")
    void cancelAfterReadyLeavesTheTargetEqualToTheSourceByteForByte(String kind, CopyMode mode) throws Exception {
        BlockDevice source = device(kind, "src");
        BlockDevice target = device(kind, "dst");
        JobHarness.fillRandom(source, 12);
        MirrorJob job = MirrorJob.create(source, target, options(mode));
        SyntheticGuest guest = new SyntheticGuest(job.guestDevice(), 4, 6, 96 << 10);
        guest.start(1_000_000);
        job.start();
        assertThat(Liveness.awaitReady(job, LIMIT)).isTrue();
        guest.stop(); // quiescent source: the point the target must equal
        job.cancel();
        assertThat(Liveness.awaitConclusion(job, LIMIT)).isEqualTo(JobState.COMPLETED);
        assertThat(job.guestDevice().currentDevice()).isSameAs(source);

        assertThat(guest.failures()).isEmpty();
        JobHarness.assertSameContent(target, source);
        assertThat(guest.verify(source)).isNull();
        source.close();
        target.close();
    }

    private static MirrorOptions options(CopyMode mode) {
        return MirrorOptions.builder().granularity(64 << 10).bufSize(4 << 20).copyMode(mode).build();
    }

    private BlockDevice device(String kind, String name) throws Exception {
        return kind.equals("memory") ? new MemoryDevice(SIZE) : FileDevice.create(dir.resolve(name + ".raw"), SIZE);
    }
}
