package dev.handoff.mirror;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class MirrorOptionsTest {
    @Test
    void defaultsAreQemuLike() {
        MirrorOptions o = MirrorOptions.defaults();
        assertThat(o.granularity()).isEqualTo(64 << 10);
        assertThat(o.bufSize()).isEqualTo(16L << 20);
        assertThat(o.maxCopyBytes()).isEqualTo(1 << 20);
        assertThat(o.speed()).isZero();
        assertThat(o.sync()).isEqualTo(SyncMode.FULL);
        assertThat(o.copyMode()).isEqualTo(CopyMode.BACKGROUND);
        assertThat(o.onSourceError()).isEqualTo(ErrorPolicy.REPORT);
        assertThat(o.onTargetError()).isEqualTo(ErrorPolicy.REPORT);
        assertThat(o.targetIsZero()).isFalse();
        assertThat(o.copiesWhileGuestWrites()).isEqualTo(1);
    }

    @Test
    void granularityMustBeAPowerOfTwoInRange() {
        assertThat(MirrorOptions.builder().granularity(512).build().granularity()).isEqualTo(512);
        assertThat(MirrorOptions.builder().granularity(64 << 20).bufSize(64 << 20).build().granularity()).isEqualTo(64 << 20);
        for (long bad : new long[] {0, 256, 511, 3000, 128L << 20, -4096}) {
            assertThatThrownBy(() -> MirrorOptions.builder().granularity(bad))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("granularity");
        }
    }

    @Test
    void sizesAndSpeedAreValidated() {
        assertThatThrownBy(() -> MirrorOptions.builder().bufSize(0)).hasMessageContaining("buf-size");
        assertThatThrownBy(() -> MirrorOptions.builder().speed(-1)).hasMessageContaining("speed");
        assertThatThrownBy(() -> MirrorOptions.builder().maxCopyBytes(0)).hasMessageContaining("max copy bytes");
        assertThatThrownBy(() -> MirrorOptions.builder().granularity(1 << 20).bufSize(4096).build())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("at least the granularity");
        assertThatThrownBy(() -> MirrorOptions.builder().maxCopyBytes(32 << 20).build())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("must not exceed buf-size");
        assertThatThrownBy(() -> MirrorOptions.builder().maxCopyBytes(4096).build())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("at least the granularity");
        assertThatThrownBy(() -> MirrorOptions.builder().sync(null)).isInstanceOf(NullPointerException.class);
        assertThatThrownBy(() -> MirrorOptions.builder().copiesWhileGuestWrites(0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("copies while the guest writes");
    }

    @Test
    void maxCopyBytesFollowsGranularityAndBufSizeByDefault() {
        assertThat(MirrorOptions.builder().granularity(4 << 20).build().maxCopyBytes()).isEqualTo(4 << 20);
        assertThat(MirrorOptions.builder().bufSize(256 << 10).build().maxCopyBytes()).isEqualTo(256 << 10);
    }

    @Test
    void toBuilderRoundTrips() {
        MirrorOptions o = MirrorOptions.builder().granularity(4096).speed(10).copyMode(CopyMode.WRITE_BLOCKING)
                .onTargetError(ErrorPolicy.ENOSPC).targetIsZero(true).copiesWhileGuestWrites(3).build();
        assertThat(o.toBuilder().build()).isEqualTo(o).hasSameHashCodeAs(o);
    }

    @Test
    void errorPoliciesMapKindsToActions() {
        var kinds = dev.handoff.device.DeviceException.Kind.values();
        for (var k : kinds) {
            assertThat(ErrorPolicy.REPORT.actionFor(k)).isEqualTo(ErrorAction.REPORT);
            assertThat(ErrorPolicy.IGNORE.actionFor(k)).isEqualTo(ErrorAction.IGNORE);
            assertThat(ErrorPolicy.STOP.actionFor(k)).isEqualTo(ErrorAction.STOP);
            assertThat(ErrorPolicy.ENOSPC.actionFor(k)).isEqualTo(
                    k == dev.handoff.device.DeviceException.Kind.NO_SPACE ? ErrorAction.STOP : ErrorAction.REPORT);
        }
    }
}
