package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.JobRuntime;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorFilter;
import dev.handoff.mirror.MirrorJob;
import dev.handoff.mirror.MirrorOptions;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The mirror checks: a {@link MirrorJob} (the kernel's public API only) copies a source device to a
 * target device, both from the user's factory, while guest writes go through the job's
 * {@link MirrorFilter}. Each verdict names its clause:
 * <ul>
 *   <li>{@code ready-in-sync}: whenever the job is READY with nothing dirty and no copy in flight,
 *       the target holds exactly what the source holds, which is every acknowledged guest write;</li>
 *   <li>{@code guest-reads-newest-write}: a guest read through the filter returns the newest
 *       acknowledged write of every byte;</li>
 *   <li>{@code target-after-pivot}: after {@code complete()} the guest is on the target, which holds
 *       every write acknowledged before, during and after the pivot;</li>
 *   <li>{@code nothing-lost}: across pause, resume and a cancel (before or after READY) the device
 *       the guest is left on holds every acknowledged write; a cancel after READY leaves the target
 *       equal to the source at that instant.</li>
 * </ul>
 *
 * <h2>Two schedules</h2>
 * {@code mirror-seeded-schedule} runs everything on the check's one thread: the job's tasks queue
 * in a {@link ScheduledRuntime} and the seed interleaves copy steps (a copy's source read and its
 * target write are separate steps), guest writes, write-zeroes, reads and flushes, and pause and
 * resume, then ends the job one of three ways (pivot, cancel after READY, cancel before READY). The
 * user's device is used from that thread only, so a seed replays exactly. Guest operations are
 * issued only while the job cannot hold them (a guest held by a drain would wait for a step that
 * never comes on one thread): never while COMPLETING or CANCELLING, and the copy mode stays
 * BACKGROUND (a write-blocking write waits for the copy of its chunk).
 *
 * <p>{@code mirror-real-threads} runs {@value #GUESTS} guest threads writing {@link Blocks
 * checksummed blocks} through the filter while the job's own copier threads copy, in background or
 * write-blocking mode, with a pause and resume, then a pivot or a cancel after READY.
 *
 * <p>Memory ordering of the real-thread check: each slot's word ({@code state[s]}: version
 * {@code << 1}, low bit set while a write is in progress) is the seqlock of
 * {@link ConcurrentChecks}: the owner's volatile store of the odd word and a full fence before the
 * write, its release store of the even word after the write returned; a reader's acquire load, the
 * read, an acquire fence, a second acquire load. The final verdict reads the words after the
 * threads are joined (join orders them).
 */
final class MirrorChecks {
    /** The seeded schedule's granularity: 48 chunks and an unaligned tail. */
    private static final int GRANULE = 4096;
    private static final int SCHEDULE_SIZE = 48 * GRANULE + 517;
    /** Mixed steps (copies, guest operations, commands) before each round's ending. */
    private static final int STEPS = 240;
    /** Steps a job may take to reach READY, or to conclude, before the schedule calls it stuck. */
    private static final int RUNAWAY = 200_000;
    private static final int REAL_SIZE = (1 << 20) + 517;
    static final int GUESTS = 3;
    private static final int GUEST_WRITES = 150;
    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final VarHandle WORD = MethodHandles.arrayElementVarHandle(long[].class);

    private MirrorChecks() {
    }

    static List<Check> all() {
        return List.of(
                new Check("mirror-seeded-schedule", Check.Group.MIRROR,
                        "a mirror job copies one of your devices to another while a seeded schedule on one thread"
                                + " interleaves copy steps, guest writes and reads, pause and resume, then a pivot or a"
                                + " cancel: READY means the target equals the source (ready-in-sync), guest reads see the"
                                + " newest acknowledged write (guest-reads-newest-write), the target after the pivot holds"
                                + " every write (target-after-pivot), nothing acknowledged is lost (nothing-lost)",
                        4, MirrorChecks::seededSchedule),
                new Check("mirror-real-threads", Check.Group.MIRROR,
                        GUESTS + " guest threads write checksummed blocks through a mirror job's filter while its copier"
                                + " threads copy your source device to your target device (background or write-blocking),"
                                + " across pause and resume, then a pivot or a cancel after READY: guest reads see every"
                                + " acknowledged write, and the device the guest is left on holds every one",
                        2, MirrorChecks::realThreads));
    }

    /* ---------------- mirror-seeded-schedule ---------------- */

    /** How a round of the seeded schedule ends its job. */
    enum Ending {
        PIVOT, CANCEL_AFTER_READY, CANCEL_BEFORE_READY
    }

    private static void seededSchedule(DeviceFactory f, long seed) throws Exception {
        Ending[] endings = Ending.values();
        for (int round = 0; round < endings.length; round++) {
            Ending ending = endings[(int) Math.floorMod(seed + round, (long) endings.length)];
            BlockDevice source = f.create(SCHEDULE_SIZE);
            BlockDevice target = null;
            try {
                target = f.create(SCHEDULE_SIZE);
                new Schedule(source, target, new SplittableRandom(seed * 1_000_003 + round), round, ending).run();
            } finally {
                Io.closeQuietly(target);
                Io.closeQuietly(source);
            }
        }
    }

    /** One round: one job on two fresh devices, driven by one seeded random. */
    private static final class Schedule {
        private final BlockDevice source;
        private final BlockDevice target;
        private final SplittableRandom r;
        private final int round;
        private final Ending ending;
        private final ScheduledRuntime runtime;
        private final MirrorJob job;
        private final MirrorFilter guest;
        /** What every byte must read: the newest acknowledged guest write (the devices start all zero). */
        private final byte[] model = new byte[SCHEDULE_SIZE];
        /** The last steps, for a failure's message. */
        private final ArrayDeque<String> recent = new ArrayDeque<>();
        private int step;
        private int pauses;
        private boolean readyChecked;

        Schedule(BlockDevice source, BlockDevice target, SplittableRandom r, int round, Ending ending) {
            this.source = source;
            this.target = target;
            this.r = r;
            this.round = round;
            this.ending = ending;
            this.runtime = new ScheduledRuntime(1 + r.nextInt(4));
            int maxCopy = GRANULE << r.nextInt(3);
            MirrorOptions options = MirrorOptions.builder().granularity(GRANULE).maxCopyBytes(maxCopy)
                    .bufSize(16 * GRANULE).targetIsZero(r.nextBoolean())
                    .copiesWhileGuestWrites(Integer.MAX_VALUE) // the runtime's copies beside guests: explore the most
                    .build();
            this.job = MirrorJob.create(source, target, options, runtime);
            this.guest = job.guestDevice();
            note("job created: " + runtime.parallelism() + " copies at once, copies of up to " + maxCopy
                    + " bytes, targetIsZero " + options.targetIsZero());
        }

        void run() throws Exception {
            try {
                for (int i = r.nextInt(3); i > 0; i--) {
                    guestWrite(); // tracked from the job's creation
                }
                if (r.nextInt(4) == 0) {
                    command("pause (while CREATED)", job::pause);
                    pauses++;
                }
                command("start", job::start);
                int cancelAt = ending == Ending.CANCEL_BEFORE_READY ? r.nextInt(STEPS / 3) : -1;
                for (step = 0; step < STEPS; step++) {
                    if (step == cancelAt) {
                        cancel();
                        return;
                    }
                    mixedStep();
                    checkReady();
                }
                if (ending == Ending.CANCEL_BEFORE_READY) {
                    cancel();
                    return;
                }
                settleToReady();
                if (ending == Ending.PIVOT) {
                    pivot();
                } else {
                    cancel();
                }
            } finally {
                if (!job.state().isConcluded()) {
                    job.cancel(true); // a failed round: let the job go before the devices close
                    for (int i = 0; i < RUNAWAY && runtime.step(r); i++) {
                        // drain the abandoned copies
                    }
                }
            }
        }

        /** One step of the mix: a copy step, a guest operation or a command, drawn by weight. */
        private void mixedStep() throws Exception {
            int pick = r.nextInt(16);
            if (pick < 7) {
                if (runtime.step(r)) {
                    note("copier step");
                }
            } else if (pick < 10) {
                guestWrite();
            } else if (pick < 11) {
                guestWriteZeroes();
            } else if (pick < 13) {
                guestRead();
            } else if (pick < 14) {
                guest.flush();
                note("guest flush");
            } else if (pick < 15) {
                JobState s = job.state();
                if ((s == JobState.RUNNING || s == JobState.READY) && pauses < 2) {
                    command("pause", job::pause);
                    pauses++;
                }
            } else if (job.state() == JobState.PAUSED) {
                command("resume", job::resume);
            }
        }

        private void guestWrite() throws Exception {
            int len = 1 + r.nextInt(r.nextInt(4) == 0 ? 3 * GRANULE : GRANULE / 2);
            int off = r.nextInt(4) == 0 ? GRANULE * r.nextInt(SCHEDULE_SIZE / GRANULE) : r.nextInt(SCHEDULE_SIZE - len + 1);
            len = Math.min(len, SCHEDULE_SIZE - off);
            byte[] data = new byte[len];
            r.nextBytes(data);
            note("guest write " + off + "+" + len);
            guest.write(off, ByteBuffer.wrap(data));
            System.arraycopy(data, 0, model, off, len); // acknowledged: the newest write of these bytes
        }

        private void guestWriteZeroes() throws Exception {
            int len = 1 + r.nextInt(2 * GRANULE);
            int off = r.nextInt(SCHEDULE_SIZE - len + 1);
            note("guest write-zeroes " + off + "+" + len);
            guest.writeZeroes(off, len);
            Arrays.fill(model, off, off + len, (byte) 0);
        }

        private void guestRead() throws Exception {
            int len = 1 + r.nextInt(2 * GRANULE);
            int off = r.nextInt(SCHEDULE_SIZE - len + 1);
            note("guest read " + off + "+" + len);
            byte[] got = Io.read(guest, off, len);
            int at = Arrays.mismatch(got, 0, len, model, off, off + len);
            if (at >= 0) {
                throw violation("guest-reads-newest-write", "the guest's read of bytes " + off + "+" + len
                        + " through the filter returned %d at byte %d; the newest acknowledged write there put %d",
                        got[at], off + at, model[off + at]);
            }
        }

        /** The ready-in-sync verdict, at the first quiet READY and at a quarter of the later ones. */
        private void checkReady() throws Exception {
            if (job.state() != JobState.READY || !runtime.idle() || job.progress().dirtyBytes() != 0) {
                return;
            }
            if (readyChecked && r.nextInt(4) != 0) {
                return;
            }
            readyChecked = true;
            expectModel(source, "ready-in-sync", "the job is READY with nothing dirty and no copy in flight, but the source");
            expectModel(target, "ready-in-sync", "the job is READY with nothing dirty and no copy in flight, but the target");
        }

        /** Resumes if paused and runs copy steps (guest writes now and then) until READY with nothing left. */
        private void settleToReady() throws Exception {
            if (job.state() == JobState.PAUSED) {
                command("resume", job::resume);
            }
            for (int i = 0; i < RUNAWAY; i++, step++) {
                if (job.state() == JobState.READY && runtime.idle()) {
                    checkReady();
                    return;
                }
                if (i < 60 && r.nextInt(4) == 0) {
                    guestWrite();
                } else if (runtime.step(r)) {
                    note("copier step");
                } else if (job.state() != JobState.READY) {
                    throw violation("nothing-lost", "the job is %s with no copy queued and never became READY", job.state());
                }
                checkReady();
            }
            throw violation("nothing-lost", "the job is still %s after %d copy steps without new guest writes",
                    job.state(), RUNAWAY);
        }

        private void pivot() throws Exception {
            boolean whilePaused = r.nextInt(3) == 0;
            if (whilePaused) {
                command("pause", job::pause);
                guestWrite();
                command("complete (while paused after READY)", job::complete);
                guestWrite();
                command("resume", job::resume);
            } else {
                command("complete", job::complete);
            }
            conclude(JobState.COMPLETED);
            if (guest.currentDevice() != target) {
                throw violation("target-after-pivot", "the job COMPLETED with a pivot but the guest is not on the target");
            }
            expectModel(target, "target-after-pivot", "after the pivot the target");
            afterConclusion(target, "target-after-pivot");
        }

        /** A cancel now: before READY it must end CANCELLED, after READY COMPLETED without a pivot. */
        private void cancel() throws Exception {
            boolean wasReady = job.progress().ready();
            byte[] atCancel = model.clone();
            command("cancel", job::cancel);
            conclude(wasReady ? JobState.COMPLETED : JobState.CANCELLED);
            if (guest.currentDevice() != source) {
                throw violation("nothing-lost", "the job was cancelled but the guest is not left on the source");
            }
            if (wasReady) {
                compare(target, atCancel, "nothing-lost", "a cancel after READY must leave the target equal to the source"
                        + " at that instant, but the target");
            }
            expectModel(source, "nothing-lost", "after the cancel the source");
            afterConclusion(source, "nothing-lost");
        }

        /** Runs copy steps (no guest operation: the drain holds the guest) until the job concludes as {@code expected}. */
        private void conclude(JobState expected) throws Exception {
            for (int i = 0; i < RUNAWAY && !job.conclusion().isDone(); i++) {
                if (runtime.step(r)) {
                    note("copier step (draining)");
                } else if (!job.conclusion().isDone()) {
                    throw violation("nothing-lost", "the job is %s with no copy queued and never concluded", job.state());
                }
            }
            JobState end = job.state();
            if (end != expected) {
                throw violation("nothing-lost", "the job ended %s, expected %s (failure: %s)", end, expected,
                        job.failureReason());
            }
            note("concluded " + end);
        }

        /** After the job: guest writes and reads go straight to {@code where}, which keeps them. */
        private void afterConclusion(BlockDevice where, String clause) throws Exception {
            for (int i = 0; i < 12; i++) {
                if (r.nextBoolean()) {
                    guestWrite();
                } else {
                    guestRead();
                }
            }
            expectModel(where, clause, "after the job, with the guest's later writes, the device the guest is on");
        }

        private void expectModel(BlockDevice d, String clause, String what) throws Exception {
            compare(d, model, clause, what);
        }

        private void compare(BlockDevice d, byte[] want, String clause, String what) throws Exception {
            byte[] got = Io.read(d, 0, SCHEDULE_SIZE);
            int at = Arrays.mismatch(got, want);
            if (at >= 0) {
                int differ = 0;
                for (int i = at; i < SCHEDULE_SIZE; i++) {
                    differ += got[i] != want[i] ? 1 : 0;
                }
                throw violation(clause, "%s reads %d at byte %d (chunk %d), where the newest acknowledged write put %d;"
                        + " %d bytes differ", what, got[at], at, at / GRANULE, want[at], differ);
            }
        }

        @FunctionalInterface
        private interface Command {
            void run();
        }

        private void command(String name, Command c) {
            note(name + " (" + job.state() + ")");
            c.run();
        }

        /** Keeps the last 8 steps, a run of copier steps as one entry. */
        private void note(String what) {
            String last = recent.peekLast();
            if (what.startsWith("copier step") && last != null && last.endsWith(": " + what)) {
                recent.removeLast();
                int from = last.startsWith("steps ") ? Integer.parseInt(last.substring(6, last.indexOf('-')))
                        : Integer.parseInt(last.substring(5, last.indexOf(':')));
                recent.addLast("steps " + from + "-" + step + ": " + what);
                return;
            }
            if (recent.size() == 8) {
                recent.removeFirst();
            }
            recent.addLast("step " + step + ": " + what);
        }

        private Violation violation(String clause, String format, Object... args) {
            return Violation.of("%s: round %d (ending %s), %s; the last steps: %s", clause, round, ending,
                    String.format(java.util.Locale.ROOT, format, args), String.join("; ", recent));
        }
    }

    /* ---------------- mirror-real-threads ---------------- */

    private static void realThreads(DeviceFactory f, long seed) throws Exception {
        boolean pivot = seed % 2 == 1;
        CopyMode mode = (seed / 2) % 2 == 0 ? CopyMode.BACKGROUND : CopyMode.WRITE_BLOCKING;
        BlockDevice source = f.create(REAL_SIZE);
        BlockDevice target = null;
        MirrorJob job = null;
        try {
            target = f.create(REAL_SIZE);
            job = MirrorJob.create(source, target, MirrorOptions.builder().granularity(16 << 10).maxCopyBytes(64 << 10)
                    .bufSize(256 << 10).copyMode(mode).build(), JobRuntime.threadPool(2));
            new RealRun(job, source, target, new Blocks(seed), seed, pivot).run();
        } finally {
            if (job != null && !job.state().isConcluded()) {
                try {
                    job.cancel(true);
                    job.awaitConclusion(WAIT);
                } catch (IllegalStateException | TimeoutException ignored) {
                    // concluded meanwhile, or hung: the check's own failure is what the user needs
                }
            }
            Io.closeQuietly(target);
            Io.closeQuietly(source);
        }
    }

    /** One real-thread run: the guests, the commands, the verdicts. */
    private static final class RealRun {
        private final MirrorJob job;
        private final MirrorFilter guest;
        private final BlockDevice source;
        private final BlockDevice target;
        private final Blocks blocks;
        private final long seed;
        private final boolean pivot;
        private final int slots = REAL_SIZE / Blocks.SLOT;
        /** Per slot: version << 1, low bit set while its owner writes it (see the class comment). */
        private final long[] state = new long[slots];
        /** Writes acknowledged so far, all guests: the commands wait for some before they act. */
        private final AtomicInteger acknowledged = new AtomicInteger();

        RealRun(MirrorJob job, BlockDevice source, BlockDevice target, Blocks blocks, long seed, boolean pivot) {
            this.job = job;
            this.guest = job.guestDevice();
            this.source = source;
            this.target = target;
            this.blocks = blocks;
            this.seed = seed;
            this.pivot = pivot;
        }

        void run() throws Exception {
            Crew guests = Crew.start(GUESTS, true, g -> "handoff-testkit-guest-" + g, this::guest);
            guests.awaitStart();
            job.start();
            awaitWrites(GUESTS * GUEST_WRITES / 4, guests);
            job.pause(); // RUNNING or READY: guests go on, tracked as dirty
            awaitWrites(GUESTS * GUEST_WRITES / 2, guests);
            job.resume();
            if (!pivot) {
                guests.join(); // a cancel after READY is checked against a quiet source
            }
            if (!job.awaitReady(WAIT)) {
                guests.rethrow();
                throw Violation.of("nothing-lost: the job did not reach READY within %d s (state %s, %s)",
                        WAIT.toSeconds(), job.state(), job.failureReason());
            }
            if (pivot) {
                job.complete(); // the guests keep writing: the drain holds them, then they go on to the target
            } else {
                job.cancel();
            }
            JobState end = job.awaitConclusion(WAIT);
            guests.join();
            if (end != JobState.COMPLETED) {
                throw Violation.of("nothing-lost: the job ended %s after READY, expected COMPLETED (%s)", end,
                        job.failureReason());
            }
            BlockDevice where = pivot ? target : source;
            if (guest.currentDevice() != where) {
                throw Violation.of("%s: the job COMPLETED but the guest is not on the %s", pivot ? "target-after-pivot"
                        : "nothing-lost", pivot ? "target" : "source");
            }
            verifySlots(where, pivot ? "target-after-pivot: after the pivot the target" : "nothing-lost: after the cancel the source");
            if (!pivot) {
                verifySlots(target, "nothing-lost: a cancel after READY (the guests quiet) must leave the target equal to"
                        + " the source, but the target");
            }
        }

        /** Guest {@code g}: writes its own slots, reads them back, reads others' acknowledged slots, flushes. */
        private void guest(int g) throws Exception {
            SplittableRandom r = new SplittableRandom(seed * 31 + g);
            int mine = (slots - g + GUESTS - 1) / GUESTS;
            for (int i = 0; i < GUEST_WRITES; i++) {
                int slot = g + GUESTS * r.nextInt(mine);
                int version = (int) ((long) WORD.get(state, slot) >>> 1) + 1; // plain: only the owner writes it
                WORD.setVolatile(state, slot, (long) version << 1 | 1);
                VarHandle.fullFence(); // the odd word before any byte of the new version
                Io.write(guest, Blocks.offsetOf(slot), blocks.block(slot, version));
                WORD.setRelease(state, slot, (long) version << 1); // publishes "version acknowledged"
                acknowledged.incrementAndGet(); // volatile RMW: the commands thread's get sees it
                byte[] back = Io.read(guest, Blocks.offsetOf(slot), Blocks.SLOT);
                if (!Arrays.equals(back, blocks.block(slot, version))) {
                    throw Violation.of("guest-reads-newest-write: guest %d wrote version %d of slot %d (bytes %d+%d)"
                            + " through the filter (job %s) and its read right after found %s", g, version, slot,
                            Blocks.offsetOf(slot), Blocks.SLOT, job.state(), Blocks.describe(slot, back));
                }
                if (r.nextInt(3) == 0) {
                    int other = r.nextInt(slots);
                    long before = (long) WORD.getAcquire(state, other); // pairs with the owner's setRelease
                    byte[] seen = Io.read(guest, Blocks.offsetOf(other), Blocks.SLOT);
                    VarHandle.acquireFence(); // the read's loads before the second look at the word
                    long after = (long) WORD.getAcquire(state, other);
                    int v = (int) (before >>> 1);
                    if (before == after && (before & 1) == 0 && !Arrays.equals(seen, blocks.block(other, v))) {
                        throw Violation.of("guest-reads-newest-write: guest %d read slot %d (bytes %d+%d) through the"
                                + " filter (job %s) after version %d was acknowledged, with no write of it in progress,"
                                + " and found %s", g, other, Blocks.offsetOf(other), Blocks.SLOT, job.state(), v,
                                Blocks.describe(other, seen));
                    }
                }
                if (r.nextInt(20) == 0) {
                    guest.flush();
                }
            }
        }

        private void verifySlots(BlockDevice d, String what) throws Exception {
            byte[] all = Io.read(d, 0, REAL_SIZE);
            for (int slot = 0; slot < slots; slot++) {
                int v = (int) ((long) WORD.getVolatile(state, slot) >>> 1); // the guests are joined
                int base = (int) Blocks.offsetOf(slot);
                byte[] got = Arrays.copyOfRange(all, base, base + Blocks.SLOT);
                if (!Arrays.equals(got, blocks.block(slot, v))) {
                    throw Violation.of("%s holds %s in slot %d (bytes %d+%d); the last acknowledged write there was"
                            + " version %d", what, Blocks.describe(slot, got), slot, base, Blocks.SLOT, v);
                }
            }
            for (int i = slots * Blocks.SLOT; i < REAL_SIZE; i++) {
                if (all[i] != 0) {
                    throw Violation.of("%s reads %d at byte %d, past the last slot, never written", what, all[i], i);
                }
            }
        }

        /** Waits (a little at a time, up to the check's wait) for {@code n} acknowledged writes or the guests' end. */
        private void awaitWrites(int n, Crew guests) throws Exception {
            long until = System.nanoTime() + WAIT.toNanos();
            while (acknowledged.get() < n && !guests.failed() && System.nanoTime() < until) {
                LockSupport.parkNanos(TimeUnit.MICROSECONDS.toNanos(200));
            }
            guests.rethrow();
        }
    }
}
