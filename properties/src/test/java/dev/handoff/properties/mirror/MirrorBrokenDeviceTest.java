package dev.handoff.properties.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.properties.sim.PropertyViolation;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.function.Supplier;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The mirror simulator's properties catch broken devices under a correct kernel, with no patch:
 * the job sees its target through a decorator that lies, and some seed must fail with the
 * property that guards against it. (Kernel bugs are in the mutant catalog.)
 */
class MirrorBrokenDeviceTest {

    /** The property the first failing seed fails, when each run's devices go through a fresh {@code wrap}. */
    private static String firstFailure(Supplier<MirrorSimulation.DeviceWrapper> wrap) {
        for (long seed = 1; seed <= 300; seed++) {
            try {
                new MirrorSimulation(MirrorSimulationTest.scenario(seed), wrap.get()).run();
            } catch (PropertyViolation v) {
                return v.property();
            }
        }
        return null;
    }

    /** Wraps one device. */
    private interface TargetWrapper {
        BlockDevice wrap(BlockDevice device);
    }

    private static Supplier<MirrorSimulation.DeviceWrapper> targetOnly(TargetWrapper w) {
        return () -> {
            boolean[] first = {true};
            return d -> {
                // The simulation wraps the source first, then the target.
                if (first[0]) {
                    first[0] = false;
                    return d;
                }
                return w.wrap(d);
            };
        };
    }

    private static Supplier<MirrorSimulation.DeviceWrapper> sourceOnly(TargetWrapper w) {
        return () -> {
            boolean[] first = {true};
            return d -> {
                if (first[0]) {
                    first[0] = false;
                    return w.wrap(d);
                }
                return d;
            };
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
        String property = firstFailure(sourceOnly(d -> new Forwarding(d) {
                private int writes;

                @Override
                public void write(long offset, ByteBuffer src) throws DeviceException {
                    if (++writes == 3) {
                        src.position(src.limit());
                        return;
                    }
                    super.write(offset, src);
                }
            }));
        assertThat(property).isEqualTo("guest-image");
    }

    /**
     * A source that acknowledges flushes without making anything durable: the guest's flush still
     * reaches it (so the route is right), and only a crash shows that acknowledged writes are gone.
     */
    @Test
    void aSourceWhoseFlushDoesNothingBreaksCrashDurability() {
        String property = firstFailure(sourceOnly(d -> new Forwarding(d) {
                @Override
                public void flush() {
                }
            }));
        assertThat(property).isEqualTo("crash-durability");
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
