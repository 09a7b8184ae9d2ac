package dev.handoff.ownership;

import static dev.handoff.ownership.OwnedImage.State.ACTIVE;
import static dev.handoff.ownership.OwnedImage.State.INACTIVE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.handoff.device.DeviceException;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Every state (ACTIVE, INACTIVE, closed) times every operation: what is allowed, what is refused
 * with which type, and that a refused operation reaches neither the device nor the record.
 */
class OwnedImageStateTest {

    enum Op {
        READ, WRITE, WRITE_ZEROES, DISCARD, FLUSH;

        void apply(OwnedImage image) throws DeviceException {
            switch (this) {
                case READ -> image.read(0, ByteBuffer.allocate(512));
                case WRITE -> image.write(4096, SharedImage.bytes(512, 7));
                case WRITE_ZEROES -> image.writeZeroes(4096, 512);
                case DISCARD -> image.discard(4096, 512);
                case FLUSH -> image.flush();
                default -> throw new AssertionError(this);
            }
        }

        boolean mutates() {
            return this != READ;
        }
    }

    private final SharedImage shared = new SharedImage();
    private RecordingDevice device;

    private OwnedImage open(OwnedImage.State state) throws DeviceException {
        return shared.open("me", state, d -> device = new RecordingDevice(d, shared.log), ImageTuning.DEFAULT);
    }

    @ParameterizedTest
    @EnumSource(Op.class)
    void activeHandleAllowsEveryOperationAndItReachesTheDevice(Op op) throws Exception {
        try (OwnedImage image = open(ACTIVE)) {
            long before = device.mutations();
            op.apply(image);
            if (op.mutates()) {
                assertThat(device.mutations()).isEqualTo(before + 1);
            }
            assertThat(image.state()).isEqualTo(ACTIVE);
        }
    }

    @ParameterizedTest
    @EnumSource(Op.class)
    void inactiveHandleRefusesEveryMutationAndNothingReachesTheDeviceOrTheRecord(Op op) throws Exception {
        OwnedImage image = open(INACTIVE);
        OwnershipRecord record = shared.record();
        long recordWrites = shared.records.writes();
        if (op.mutates()) {
            assertThatThrownBy(() -> op.apply(image))
                    .isInstanceOf(ImageInactiveException.class)
                    .hasMessageContaining("INACTIVE")
                    .hasMessageContaining("nothing was written")
                    .satisfies(e -> assertThat(((DeviceException) e).kind()).isEqualTo(DeviceException.Kind.INACTIVE));
        } else {
            op.apply(image);
            assertThat(device.reads()).isEqualTo(1);
        }
        assertThat(device.mutations()).isZero();
        assertThat(shared.records.writes()).isEqualTo(recordWrites);
        assertThat(shared.record()).isEqualTo(record);
        assertThat(image.state()).isEqualTo(INACTIVE);
        image.close();
        assertThat(device.mutations()).isZero();
        assertThat(shared.records.writes()).isEqualTo(recordWrites);
    }

    @ParameterizedTest
    @EnumSource(Op.class)
    void closedHandleRefusesEveryOperationAndNothingReachesTheDevice(Op op) throws Exception {
        OwnedImage image = open(ACTIVE);
        image.close();
        long mutations = device.mutations();
        long reads = device.reads();
        long recordWrites = shared.records.writes();
        assertThatThrownBy(() -> op.apply(image))
                .isInstanceOf(DeviceException.class)
                .satisfies(e -> assertThat(((DeviceException) e).kind()).isEqualTo(DeviceException.Kind.CLOSED));
        assertThat(device.mutations()).isEqualTo(mutations);
        assertThat(device.reads()).isEqualTo(reads);
        assertThat(shared.records.writes()).isEqualTo(recordWrites);
        assertThat(image.state()).isEqualTo(INACTIVE);
    }

    @Test
    void closedHandleRefusesEveryTransition() throws Exception {
        OwnedImage image = open(INACTIVE);
        image.close();
        for (ThrowingRunnable t : new ThrowingRunnable[] {image::activate, image::inactivate, image::prepareHandoff,
                () -> image.acceptHandoff(new HandoffToken(1, "x")), image::abortHandoff, image::readRecord}) {
            assertThatThrownBy(t::run).isInstanceOf(DeviceException.class)
                    .satisfies(e -> assertThat(((DeviceException) e).kind()).isEqualTo(DeviceException.Kind.CLOSED));
        }
        image.close(); // twice is harmless
        assertThat(device.mutations()).isZero();
        assertThat(shared.records.writes()).isZero();
    }

    @Test
    void activateOnActiveIsANoOp() throws Exception {
        try (OwnedImage image = open(ACTIVE)) {
            long epoch = image.epoch();
            long writes = shared.records.writes();
            long lockReads = shared.records.reads();
            image.activate();
            image.activate();
            assertThat(image.state()).isEqualTo(ACTIVE);
            assertThat(image.epoch()).isEqualTo(epoch);
            assertThat(shared.records.writes()).isEqualTo(writes);
            assertThat(shared.records.reads()).isEqualTo(lockReads);
        }
    }

    @Test
    void inactivateOnInactiveIsANoOpThatWritesNothing() throws Exception {
        try (OwnedImage image = open(INACTIVE)) {
            image.inactivate();
            image.inactivate();
            assertThat(image.state()).isEqualTo(INACTIVE);
            assertThat(device.mutations()).isZero();
            assertThat(shared.records.writes()).isZero();
        }
    }

    @Test
    void inactivateThenActivateAgainIsIdempotentAtEachStep() throws Exception {
        try (OwnedImage image = open(ACTIVE)) {
            image.inactivate();
            long flushes = device.flushes();
            long writes = shared.records.writes();
            image.inactivate();
            assertThat(device.flushes()).isEqualTo(flushes);
            assertThat(shared.records.writes()).isEqualTo(writes);
            image.activate();
            assertThat(image.epoch()).isEqualTo(2);
            image.activate();
            assertThat(image.epoch()).isEqualTo(2);
        }
    }

    @Test
    void handoffCallsInTheWrongStateAreRefusedWithoutWriting() throws Exception {
        try (OwnedImage inactive = open(INACTIVE)) {
            assertThatThrownBy(inactive::prepareHandoff).isInstanceOf(IllegalStateException.class);
            assertThatThrownBy(inactive::abortHandoff).isInstanceOf(IllegalStateException.class);
            assertThat(device.mutations()).isZero();
            assertThat(shared.records.writes()).isZero();
        }
        try (OwnedImage active = open(ACTIVE)) {
            long writes = shared.records.writes();
            assertThatThrownBy(() -> active.acceptHandoff(new HandoffToken(1, "other")))
                    .isInstanceOf(IllegalStateException.class);
            assertThatThrownBy(active::abortHandoff).isInstanceOf(IllegalStateException.class);
            assertThat(shared.records.writes()).isEqualTo(writes);
            assertThat(active.state()).isEqualTo(ACTIVE);
        }
    }

    @Test
    void openingInactiveWritesNothingAndReadsAreServedByTheDevice() throws Exception {
        shared.disk.write(0, SharedImage.bytes(512, 9));
        try (OwnedImage image = open(INACTIVE)) {
            assertThat(SharedImage.read(image, 0, 512)).isEqualTo(SharedImage.filled(512, 9));
            assertThat(image.epoch()).isZero();
            assertThat(OwnedImageProbe.headerCached(image)).isFalse();
        }
        assertThat(device.mutations()).isZero();
        assertThat(shared.records.writes()).isZero();
    }

    @FunctionalInterface
    interface ThrowingRunnable {
        void run() throws Exception;
    }
}
