package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.sim.PropertyViolation;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The mirror simulator's properties catch broken devices under a correct kernel, with no patch:
 * the job sees its target through a decorator that lies, and some seed must fail with the
 * property that guards against it. (Kernel bugs are in the mutant catalog.)
 */
class MirrorBrokenDeviceTest {

    /** Which seeds fail, and with which property, when the job's target is {@code broken}. */
    private static String firstFailure(MirrorSimulation.DeviceWrapper wrap) {
        for (long seed = 1; seed <= 300; seed++) {
            try {
                new MirrorSimulation(MirrorSimulationTest.scenario(seed), wrap).run();
            } catch (PropertyViolation v) {
                return v.property();
            }
        }
        return null;
    }

    /** Wraps only the target. */
    private interface TargetWrapper {
        BlockDevice wrap(BlockDevice target);
    }

    private static MirrorSimulation.DeviceWrapper targetOnly(TargetWrapper w) {
        boolean[] first = {true};
        return d -> {
            // The simulation wraps the source first, then the target.
            if (first[0]) {
                first[0] = false;
                return d;
            }
            return w.wrap(d);
        };
    }

    @Test
    void aTargetThatAcknowledgesWritesItDropsBreaksTheKeyInvariant() {
        String property = firstFailure(targetOnly(t -> new Forwarding(t) {
            private int writes;

            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                if (++writes % 7 == 0) {
                    src.position(src.limit()); // acknowledged, never written
                    return;
                }
                super.write(offset, src);
            }
        }));
        assertThat(property).isIn("key-invariant", "ready-in-sync", "completed-consistent", "guest-image");
    }

    @Test
    void aTargetWhoseFlushDoesNothingIsCaughtAtThePivot() {
        String property = firstFailure(targetOnly(t -> new Forwarding(t) {
            @Override
            public void flush() {
            }
        }));
        assertThat(property).isEqualTo("completed-consistent");
    }

    @Test
    void aSourceThatLosesAWriteBreaksTheGuestImage() {
        boolean[] first = {true};
        String property = firstFailure(d -> {
            if (!first[0]) {
                return d;
            }
            first[0] = false;
            return new Forwarding(d) {
                private int writes;

                @Override
                public void write(long offset, ByteBuffer src) throws DeviceException {
                    if (++writes == 3) {
                        src.position(src.limit());
                        return;
                    }
                    super.write(offset, src);
                }
            };
        });
        assertThat(property).isEqualTo("guest-image");
    }

    /** Forwards every call; a broken device overrides one. */
    private static class Forwarding implements BlockDevice {
        private final BlockDevice inner;

        Forwarding(BlockDevice inner) {
            this.inner = inner;
        }

        public long size() {
            return inner.size();
        }

        public void read(long offset, ByteBuffer dst) throws DeviceException {
            inner.read(offset, dst);
        }

        public void write(long offset, ByteBuffer src) throws DeviceException {
            inner.write(offset, src);
        }

        public void writeZeroes(long offset, long length) throws DeviceException {
            inner.writeZeroes(offset, length);
        }

        public void discard(long offset, long length) throws DeviceException {
            inner.discard(offset, length);
        }

        public void flush() throws DeviceException {
            inner.flush();
        }

        public void close() throws DeviceException {
            inner.close();
        }
    }
}
