package dev.handoff.stress;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;

/** What the harnesses share: a whole-chunk write that reports failure as a result, not a throw; a start line. */
final class Harness {
    /** How long an actor waits for its partner to reach the start line, in spin-waits. */
    static final int START_SPINS = 1_000;

    private Harness() {
    }

    /**
     * A start line for two actors of one state: each arrives, then spins until the other has
     * arrived or {@link #START_SPINS} have passed. jcstress runs the actors of a state at slightly
     * different times (each actor walks its own way through a stride of states); meeting here puts
     * both inside the window of the race instead of one finishing before the other begins.
     */
    static final class StartLine {
        private volatile boolean first;
        private volatile boolean second;

        void arriveFirst() {
            first = true;
            for (int i = 0; i < START_SPINS && !second; i++) {
                Thread.onSpinWait();
            }
        }

        void arriveSecond() {
            second = true;
            for (int i = 0; i < START_SPINS && !first; i++) {
                Thread.onSpinWait();
            }
        }
    }

    /**
     * Spins for a delay that sweeps across samples: {@code (counter++ mod steps) * spinsPerStep}
     * spin-waits. An actor whose partner's window is a few instructions wide (between a scan and a
     * store, a poll and a flag) lands in it for some of the delays, where jcstress's alignment
     * alone would land there rarely. The counter is the harness's own, touched by one actor only.
     */
    static void sweep(java.util.concurrent.atomic.AtomicInteger counter, int steps, int spinsPerStep) {
        for (int i = Math.floorMod(counter.getAndIncrement(), steps) * spinsPerStep; i > 0; i--) {
            Thread.onSpinWait();
        }
    }

    /** Writes the whole-chunk buffer {@code data} at {@code chunk}; 1 if acknowledged, 0 if refused. */
    static int write(BlockDevice device, int chunk, java.nio.ByteBuffer data) {
        try {
            device.write((long) chunk * ChunkDevice.CHUNK, data);
            return 1;
        } catch (DeviceException e) {
            return 0;
        }
    }
    /** Writes {@code value} over {@code chunk}; returns 1 if acknowledged, 0 if refused with a device error. */
    static int write(BlockDevice device, int chunk, int value) {
        try {
            device.write((long) chunk * ChunkDevice.CHUNK, ChunkDevice.chunksOf(value, 1));
            return 1;
        } catch (DeviceException e) {
            return 0;
        }
    }
}
