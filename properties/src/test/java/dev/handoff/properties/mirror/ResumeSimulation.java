package dev.handoff.properties.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.mirror.BitmapHeader;
import dev.handoff.mirror.BitmapStore;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;
import dev.handoff.mirror.SteppingRuntime;
import dev.handoff.properties.sim.PropertyViolation;
import dev.handoff.properties.sim.SimDevice;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The deterministic simulator of a mirror job with a persistent write-intent bitmap (DESIGN §2.10)
 * that crashes, loses power, restarts and resumes, several times per run: during the bulk pass,
 * after READY, during a resume and during the final drain's flush.
 *
 * <p>One seed drives everything: a guest writing, discarding and flushing through the job's filter,
 * the order of the runtime's tasks (copies, pumps, the clear pass's timer), virtual time, and
 * crashes. A crash fires inside any device or bitmap-store call (before it, or after it took
 * effect and before it returned), as a power loss would: every {@link SimDevice} keeps what was
 * flushed and a seeded part of the rest, the bitmap store keeps what was synced and a seeded part
 * of the rest; the process (the job, its runtime, its memory) is gone. The run then restarts: a new
 * job over the same devices resumes from the store's bits.
 *
 * <p>Properties:
 * <ul>
 *   <li>[resume-covers-difference]: at every restart, every region where source and target differ
 *       has its bit in the store: the resumed job copies no less than what may differ.</li>
 *   <li>[flushed-write-survives]: after a crash the source holds every byte of every write the
 *       guest had acknowledged before its last acknowledged flush (and not rewritten since).</li>
 *   <li>[converges]: a run that ends without a crash ends READY and, once drained, with the target
 *       equal to the source.</li>
 * </ul>
 */
final class ResumeSimulation {
    static final int GRANULARITY = 512;
    static final int REGION = 1024;
    static final int SIZE = 16 * 1024;
    private static final int MAX_STEPS = 3_000;

    /** The process dies: thrown from inside a device or store call, never caught by the kernel. */
    static final class SimulatedCrash extends Error {
        private static final long serialVersionUID = 1L;

        SimulatedCrash() {
            super("simulated crash", null, false, false);
        }
    }

    /** What a run did, for the test's summary. */
    record Result(int crashes, int restarts, long copiedAgain, long size, int steps, int crashesInDrain) {
    }

    private final long seed;
    private final SplittableRandom random;
    private final int maxCrashes;
    private final int crashOneIn;
    /** Crashes allowed before the final drain; the rest (one, in half the seeds) is kept for it. */
    private final int crashesBeforeDrain;
    private final boolean trace;
    private final SimDevice source;
    private final SimDevice target;
    private final SimBitmapStore store;
    private final List<String> log = new ArrayList<>();

    // The guest's durable model: the source as of its last acknowledged flush, and what it wrote since.
    private byte[] flushedImage;
    private final BitSet writtenSinceFlush = new BitSet(SIZE);

    private int crashes;
    private int crashesInDrain;
    private boolean draining;
    private int restarts;
    private long copiedAgain;
    private int steps;

    // The current incarnation.
    private boolean alive;
    private SteppingRuntime runtime;
    private MirrorJob job;

    ResumeSimulation(long seed, int maxCrashes, boolean trace) {
        this.seed = seed;
        this.random = new SplittableRandom(seed);
        this.maxCrashes = maxCrashes;
        this.crashOneIn = 30 + random.nextInt(300);
        this.crashesBeforeDrain = maxCrashes - (maxCrashes > 0 && random.nextBoolean() ? 1 : 0);
        this.trace = trace;
        byte[] initial = new byte[SIZE];
        for (int i = 0; i < SIZE; i++) {
            initial[i] = (byte) random.nextInt(1, 256);
        }
        this.source = new SimDevice("source", initial, random.nextLong());
        this.target = new SimDevice("target", SIZE, random.nextLong());
        this.store = SimBitmapStore.allDirty(SIZE, REGION, random.nextLong());
        this.flushedImage = initial.clone();
    }

    Result run() {
        incarnate();
        while (steps < MAX_STEPS) {
            steps++;
            try {
                if (steps > MAX_STEPS / 2) {
                    finish(); // crashes left may still fire, in the drain and its flush too
                    return new Result(crashes, restarts, copiedAgain, SIZE, steps, crashesInDrain);
                }
                step();
            } catch (SimulatedCrash c) {
                restart();
            }
        }
        finish();
        return new Result(crashes, restarts, copiedAgain, SIZE, steps, crashesInDrain);
    }

    /** One step: a guest operation, a runtime task, or time passing. */
    private void step() {
        int what = random.nextInt(100);
        if (what < 30) {
            guestWrite();
        } else if (what < 34) {
            guestFlush();
        } else if (what < 36) {
            guestDiscard();
        } else if (what < 40) {
            runtime.moveClock(random.nextLong(200_000_000L));
        } else {
            SteppingRuntime.Task t = runtime.step(random.nextInt(1 << 16));
            if (trace && t != null) {
                note("task " + t.runnable().getClass().getSimpleName());
            }
        }
    }

    /** Runs the job to READY, cancels it (the drain flushes the target), and checks the copy. */
    private void finish() {
        while (true) {
            try {
                runToConclusion();
                return;
            } catch (SimulatedCrash c) {
                restart();
            }
        }
    }

    private void runToConclusion() {
        boolean cancelled = false;
        for (int i = 0; i < 200_000; i++) {
            if (job.state().isConcluded()) {
                break;
            }
            if (!cancelled && job.progress().ready()) {
                job.cancel(); // after READY: drain, flush the target, no pivot
                cancelled = true;
                draining = true;
                continue;
            }
            if (runtime.step(random.nextInt(1 << 16)) == null) {
                break;
            }
        }
        if (job.state() != JobState.COMPLETED) {
            throw violation("converges", "the job did not end COMPLETED after READY and a cancel: " + job.state() + ", "
                    + job.progress());
        }
        byte[] s = source.peek();
        byte[] t = target.peek();
        int diff = Arrays.mismatch(s, t);
        if (diff >= 0) {
            throw violation("converges", "target differs from source at byte " + diff + " (region " + diff / REGION
                    + ") after the drain");
        }
    }

    /* ---- Guest ---- */

    private void guestWrite() {
        int length = 1 + random.nextInt(2 * REGION);
        int offset = random.nextInt(SIZE - length + 1);
        byte[] data = new byte[length];
        byte v = (byte) random.nextInt(1, 256);
        Arrays.fill(data, v);
        note("guest write " + offset + "+" + length + " = " + v);
        writtenSinceFlush.set(offset, offset + length); // before: a crash part way may leave any of it
        try {
            job.guestDevice().write(offset, ByteBuffer.wrap(data));
        } catch (DeviceException e) {
            throw new IllegalStateException("no fault is injected here, yet: " + e, e);
        }
    }

    private void guestDiscard() {
        int length = REGION / 2 + random.nextInt(REGION);
        int offset = random.nextInt(SIZE - length + 1);
        note("guest discard " + offset + "+" + length);
        writtenSinceFlush.set(offset, offset + length);
        try {
            job.guestDevice().discard(offset, length);
        } catch (DeviceException e) {
            throw new IllegalStateException(e);
        }
    }

    private void guestFlush() {
        note("guest flush");
        try {
            job.guestDevice().flush();
        } catch (DeviceException e) {
            throw new IllegalStateException(e);
        }
        flushedImage = source.peek();
        writtenSinceFlush.clear();
    }

    /* ---- Crash and restart ---- */

    /** Called by the wrappers before and after every device and store call of the live incarnation. */
    private void maybeCrash(String where) {
        if (!alive) {
            throw new SimulatedCrash(); // the dead process's finally blocks reach no device
        }
        boolean allowed = draining ? crashes < maxCrashes : crashes < crashesBeforeDrain;
        // In the drain (a few device calls: the last copies, the target's flush) a crash is likelier.
        if (allowed && random.nextInt(draining ? 3 : crashOneIn) == 0) {
            crashes++;
            if (draining) {
                crashesInDrain++;
            }
            alive = false;
            note("CRASH at " + where + " (state " + job.state() + ")");
            source.crash();
            target.crash();
            store.crash();
            throw new SimulatedCrash();
        }
    }

    private void restart() {
        restarts++;
        draining = false;
        alive = false;
        checkFlushedWritesSurvived();
        checkResumeCoversDifference();
        incarnate();
    }

    private void incarnate() {
        runtime = SteppingRuntime.withLatency(random.nextLong(), 2_000_000L, 1_000_000_000L);
        alive = true;
        MirrorOptions options = MirrorOptions.builder().granularity(GRANULARITY).bufSize(4L * GRANULARITY)
                .maxCopyBytes(2L * GRANULARITY).bitmap(new Store(store.reopen()))
                .bitmapClearInterval(java.time.Duration.ofMillis(50))
                .copiesWhileGuestWrites(Integer.MAX_VALUE) // no fewer copies beside guests: explore the most (CopierTest checks the policy)
                .build();
        job = MirrorJob.create(new Fused(source), new Fused(target), options, runtime);
        if (restarts > 0) {
            copiedAgain += job.bitmapStatus().resumeBytes();
        }
        note("start (resume " + job.bitmapStatus().resumeBytes() + " bytes)");
        try {
            job.start();
        } catch (SimulatedCrash c) {
            restart();
        }
    }

    private void checkResumeCoversDifference() {
        byte[] s = source.peek();
        byte[] t = target.peek();
        long[] bits = store.durableBits();
        for (int r = 0; r < SIZE / REGION; r++) {
            int from = r * REGION;
            int to = from + REGION;
            if (Arrays.mismatch(s, from, to, t, from, to) >= 0 && (bits[r >>> 6] & (1L << r)) == 0) {
                throw violation("resume-covers-difference", "after crash " + crashes + " region " + r
                        + " differs between source and target but its bit is clear: the resumed job would not copy it");
            }
        }
    }

    private void checkFlushedWritesSurvived() {
        byte[] s = source.peek();
        for (int i = writtenSinceFlush.nextClearBit(0); i < SIZE; i = writtenSinceFlush.nextClearBit(i + 1)) {
            if (s[i] != flushedImage[i]) {
                throw violation("flushed-write-survives", "byte " + i + " acknowledged and flushed before crash "
                        + crashes + " is lost on the source");
            }
        }
        flushedImage = s.clone();
        writtenSinceFlush.clear();
    }

    private PropertyViolation violation(String property, String message) {
        StringBuilder b = new StringBuilder(message).append("\nseed ").append(seed).append(", last steps:\n");
        for (String l : log.subList(Math.max(0, log.size() - 40), log.size())) {
            b.append("  ").append(l).append('\n');
        }
        return new PropertyViolation(property, steps, b.toString());
    }

    private void note(String line) {
        log.add(steps + ": " + line);
        if (trace) {
            System.out.println("seed " + seed + " " + steps + ": " + line);
        }
    }

    /* ---- The wrappers: a crash can fire before or after any call of the live process ---- */

    /** A device of one incarnation: dead after its crash. */
    private final class Fused implements BlockDevice {
        private final SimDevice d;

        Fused(SimDevice d) {
            this.d = d;
        }

        @Override
        public long size() {
            return d.size();
        }

        @Override
        public void read(long offset, ByteBuffer dst) throws DeviceException {
            maybeCrash(d + " read");
            d.read(offset, dst);
        }

        @Override
        public void write(long offset, ByteBuffer src) throws DeviceException {
            maybeCrash(d + " write " + offset);
            d.write(offset, src);
            maybeCrash(d + " after write " + offset);
        }

        @Override
        public void writeZeroes(long offset, long length) throws DeviceException {
            maybeCrash(d + " write-zeroes " + offset);
            d.writeZeroes(offset, length);
            maybeCrash(d + " after write-zeroes " + offset);
        }

        @Override
        public void discard(long offset, long length) throws DeviceException {
            maybeCrash(d + " discard " + offset);
            d.discard(offset, length);
            maybeCrash(d + " after discard " + offset);
        }

        @Override
        public void flush() throws DeviceException {
            maybeCrash(d + " flush");
            d.flush();
            maybeCrash(d + " after flush");
        }

        @Override
        public void close() {
        }

        @Override
        public String toString() {
            return d.toString();
        }
    }

    /** The bitmap store of one incarnation. */
    private final class Store implements BitmapStore {
        private final SimBitmapStore.View v;

        Store(SimBitmapStore.View v) {
            this.v = v;
        }

        @Override
        public BitmapHeader header() {
            return v.header();
        }

        @Override
        public long[] load() {
            return v.load();
        }

        @Override
        public void write(long[] words, int from, int to) {
            maybeCrash("bitmap write");
            v.write(words, from, to);
            maybeCrash("after bitmap write");
        }

        @Override
        public void sync() {
            maybeCrash("bitmap sync");
            v.sync();
            maybeCrash("after bitmap sync");
        }

        @Override
        public void stop(long sourceStamp, long targetStamp) {
            sync();
        }

        @Override
        public void close() {
        }
    }
}
