package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.ownership.HandoffToken;
import dev.handoff.ownership.OwnedImage;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * The ownership checks: the user's device is the image, and two {@link OwnedImage} handles on it
 * (the public {@link OwnedImage#openMemory} factory: an in-process record and lock keyed by the
 * device object) hand it back and forth, the leaving side inactivating (drain, flush, clean
 * record) and the arriving side activating, with writes in between. Each verdict names its clause:
 * <ul>
 *   <li>{@code never-two-active}: an activation while the other handle is active is refused, and no
 *       two handles are ever active at once; each new holder's epoch is higher than every
 *       earlier one;</li>
 *   <li>{@code handoff-keeps-writes}: every write acknowledged before a handoff is read by the next
 *       holder (and by reads through the inactive handle);</li>
 *   <li>{@code inactive-write-refused}: a write, write-zeroes, discard or flush through the inactive
 *       handle fails with {@code DeviceException.Kind.INACTIVE} and nothing of it reaches the
 *       device.</li>
 * </ul>
 *
 * <h2>Two schedules</h2>
 * {@code ownership-seeded-schedule} runs on the check's one thread: the seed draws writes (a third
 * of them in the first 4 KiB, which the active handle caches), reads through either handle,
 * refused operations through the inactive one, and transitions (inactivate then activate, a
 * prepared handoff accepted or aborted, an activation that must be refused), and the model of the
 * image's bytes is exact at every step.
 *
 * <p>{@code ownership-real-threads} runs, per handle, a controller thread that takes the image
 * ({@code activate}, retried while the other holds it), checks what it finds, holds it a moment and
 * gives it up ({@code inactivate}), and a writer thread that writes {@link Blocks checksummed
 * blocks} through its handle all along, so that writes race with the transitions and those through
 * the inactive handle must be refused.
 *
 * <p>Memory ordering of the real-thread check: per slot, {@code acked[s]} (the last version whose
 * write returned) is written by the slot's one writer with a release store after the write
 * returned, and {@code next[s]} (the last version it attempted) with a volatile store before the
 * write; a controller loads {@code acked} with an acquire load before it reads the slot (so the
 * version it then reads must be at least that one) and {@code next} with an acquire load after
 * (so it is at most that one). The owner word ({@code owner}) is a CAS taken after
 * {@code activate()} returned and a volatile store of -1 before {@code inactivate()}: a second
 * activation while the first holder has not yet begun to give the image up finds it taken. The
 * final verdict reads the arrays after the threads are joined (join orders them).
 */
final class OwnershipChecks {
    private static final int SCHEDULE_SIZE = 16 * 4096 + 517;
    /** The first bytes of an image, which an active handle caches (a format driver's header). */
    private static final int HEADER = 4096;
    private static final int SCHEDULE_STEPS = 300;
    /** The real-thread image: 32 slots and an unaligned tail; slots 0 and 1 belong to the controllers. */
    private static final int SLOTS = 32;
    private static final int REAL_SIZE = SLOTS * Blocks.SLOT + 517;
    private static final int HOLDS = 8;
    private static final long WAIT_NANOS = TimeUnit.SECONDS.toNanos(30);
    private static final VarHandle INT = MethodHandles.arrayElementVarHandle(int[].class);

    private OwnershipChecks() {
    }

    static List<Check> all() {
        return List.of(
                new Check("ownership-seeded-schedule", Check.Group.OWNERSHIP,
                        "two ownership handles on your device hand it back and forth (inactivate and activate, a"
                                + " handoff accepted or aborted) with writes and reads in between, on one thread: never two"
                                + " active (never-two-active), the next holder reads every acknowledged write"
                                + " (handoff-keeps-writes), the inactive handle's writes are refused and change nothing"
                                + " (inactive-write-refused)",
                        4, OwnershipChecks::seededSchedule),
                new Check("ownership-real-threads", Check.Group.OWNERSHIP,
                        "two ownership handles on your device, each with a thread taking and giving up the image and a"
                                + " thread writing checksummed blocks through it all along: never two active, every write"
                                + " acknowledged before a handoff read by the next holder, every write through the inactive"
                                + " handle refused",
                        2, OwnershipChecks::realThreads));
    }

    /* ---------------- ownership-seeded-schedule ---------------- */

    private static void seededSchedule(DeviceFactory f, long seed) throws Exception {
        try (BlockDevice image = f.create(SCHEDULE_SIZE)) {
            new Schedule(image, new SplittableRandom(seed * 1_000_033)).run();
        }
    }

    /** One seeded run: two handles, the model of the image, the last steps for a failure's message. */
    private static final class Schedule {
        private final BlockDevice image;
        private final SplittableRandom r;
        private final OwnedImage[] h = new OwnedImage[2];
        private final byte[] model = new byte[SCHEDULE_SIZE];
        private final ArrayDeque<String> recent = new ArrayDeque<>();
        private int holder;
        private long lastEpoch;
        private int step;

        Schedule(BlockDevice image, SplittableRandom r) {
            this.image = image;
            this.r = r;
        }

        void run() throws Exception {
            try {
                holder = r.nextInt(2);
                h[holder] = OwnedImage.openMemory(image, "kit-" + holder, OwnedImage.State.ACTIVE);
                h[1 - holder] = OwnedImage.openMemory(image, "kit-" + (1 - holder), OwnedImage.State.INACTIVE);
                note("handle " + holder + " opened active, handle " + (1 - holder) + " inactive");
                arrived(holder);
                for (step = 0; step < SCHEDULE_STEPS; step++) {
                    int pick = r.nextInt(20);
                    if (pick < 7) {
                        write();
                    } else if (pick < 10) {
                        read(r.nextInt(2));
                    } else if (pick < 12) {
                        refused();
                    } else if (pick < 13) {
                        note("flush through handle " + holder);
                        h[holder].flush();
                    } else {
                        transition();
                    }
                }
            } finally {
                Io.closeQuietly(h[0]);
                Io.closeQuietly(h[1]);
            }
            byte[] all = Io.read(image, 0, SCHEDULE_SIZE); // both handles closed: the device itself
            int at = Arrays.mismatch(all, model);
            if (at >= 0) {
                throw violation("handoff-keeps-writes", "after both handles closed, the device reads %d at byte %d where"
                        + " the last acknowledged write put %d", all[at], at, model[at]);
            }
        }

        private void write() throws Exception {
            int len = 1 + r.nextInt(6000);
            int off = r.nextInt(3) == 0 ? r.nextInt(HEADER) : r.nextInt(SCHEDULE_SIZE);
            len = Math.min(len, SCHEDULE_SIZE - off);
            byte[] data = new byte[len];
            r.nextBytes(data);
            note("write " + off + "+" + len + " through handle " + holder);
            h[holder].write(off, ByteBuffer.wrap(data));
            System.arraycopy(data, 0, model, off, len);
        }

        /** A read through handle {@code which}; a third of them inside the first 4 KiB (the active handle's cache). */
        private void read(int which) throws Exception {
            int off;
            int len;
            if (r.nextInt(3) == 0) {
                off = r.nextInt(HEADER);
                len = 1 + r.nextInt(HEADER - off);
            } else {
                off = r.nextInt(SCHEDULE_SIZE);
                len = Math.min(1 + r.nextInt(6000), SCHEDULE_SIZE - off);
            }
            readAndCompare(which, off, len);
        }

        private void readAndCompare(int which, int off, int len) throws Exception {
            note("read " + off + "+" + len + " through handle " + which + " (" + h[which].state() + ")");
            byte[] got = Io.read(h[which], off, len);
            int at = Arrays.mismatch(got, 0, len, model, off, off + len);
            if (at >= 0) {
                throw violation("handoff-keeps-writes", "a read of bytes %d+%d through handle %d (%s) returned %d at byte"
                        + " %d; the last acknowledged write there put %d", off, len, which, h[which].state(), got[at],
                        off + at, model[off + at]);
            }
        }

        /** A write, write-zeroes, discard or flush through the inactive handle: refused, nothing changes. */
        private void refused() throws Exception {
            int other = 1 - holder;
            int off = r.nextInt(SCHEDULE_SIZE - 1);
            int len = 1 + r.nextInt(Math.min(6000, SCHEDULE_SIZE - off));
            int kind = r.nextInt(4);
            String what = switch (kind) {
                case 0 -> "write " + off + "+" + len;
                case 1 -> "write-zeroes " + off + "+" + len;
                case 2 -> "discard " + off + "+" + len;
                default -> "flush";
            };
            note(what + " through inactive handle " + other);
            Io.Call call = switch (kind) {
                case 0 -> () -> {
                    byte[] junk = new byte[len];
                    Arrays.fill(junk, (byte) 0x5A);
                    h[other].write(off, ByteBuffer.wrap(junk));
                };
                case 1 -> () -> h[other].writeZeroes(off, len);
                case 2 -> () -> h[other].discard(off, len);
                default -> () -> h[other].flush();
            };
            try {
                Io.expectKind(DeviceException.Kind.INACTIVE, what + " through the inactive handle " + other, call);
            } catch (Violation v) {
                throw violation("inactive-write-refused", "%s", v.getMessage());
            }
            byte[] got = Io.read(image, off, len);
            int at = Arrays.mismatch(got, 0, len, model, off, off + len);
            if (at >= 0) {
                throw violation("inactive-write-refused", "the refused %s through inactive handle %d still changed byte"
                        + " %d to %d (the last acknowledged write put %d)", what, other, off + at, got[at],
                        model[off + at]);
            }
        }

        private void transition() throws Exception {
            int from = holder;
            int to = 1 - holder;
            switch (r.nextInt(5)) {
                case 0 -> {
                    note("handle " + from + " inactivate, handle " + to + " activate");
                    h[from].inactivate();
                    bothInactive();
                    h[to].activate();
                    arrived(to);
                }
                case 1 -> {
                    note("handle " + from + " prepareHandoff, handle " + to + " acceptHandoff");
                    HandoffToken token = h[from].prepareHandoff();
                    bothInactive();
                    read(from); // reads stay allowed while no one holds the image
                    h[to].acceptHandoff(token);
                    arrived(to);
                }
                case 2 -> {
                    note("handle " + from + " prepareHandoff, then abortHandoff (the migration failed)");
                    h[from].prepareHandoff();
                    bothInactive();
                    h[from].abortHandoff();
                    arrived(from);
                }
                case 3 -> {
                    note("handle " + from + " inactivate, then activate again");
                    h[from].inactivate();
                    bothInactive();
                    h[from].activate();
                    arrived(from);
                }
                default -> {
                    note("handle " + to + " activate while handle " + from + " is active");
                    try {
                        Io.expectKind(DeviceException.Kind.INACTIVE, "activate() of handle " + to + " while handle "
                                + from + " is active", h[to]::activate);
                    } catch (Violation v) {
                        throw violation("never-two-active", "%s", v.getMessage());
                    }
                    if (h[to].state() != OwnedImage.State.INACTIVE || h[from].state() != OwnedImage.State.ACTIVE) {
                        throw violation("never-two-active", "after a refused activation handle %d is %s and handle %d is"
                                + " %s", to, h[to].state(), from, h[from].state());
                    }
                }
            }
        }

        private void bothInactive() {
            if (h[0].state() != OwnedImage.State.INACTIVE || h[1].state() != OwnedImage.State.INACTIVE) {
                throw violation("never-two-active", "after giving the image up, handle 0 is %s and handle 1 is %s",
                        h[0].state(), h[1].state());
            }
        }

        /** Handle {@code to} now holds the image: the only active one, a newer epoch, every acknowledged write. */
        private void arrived(int to) throws Exception {
            holder = to;
            if (h[to].state() != OwnedImage.State.ACTIVE || h[1 - to].state() != OwnedImage.State.INACTIVE) {
                throw violation("never-two-active", "after handle %d took the image, handle 0 is %s and handle 1 is %s",
                        to, h[0].state(), h[1].state());
            }
            if (h[to].epoch() <= lastEpoch) {
                throw violation("never-two-active", "handle %d took the image with epoch %d, not above the last holder's %d",
                        to, h[to].epoch(), lastEpoch);
            }
            lastEpoch = h[to].epoch();
            readAndCompare(to, 0, HEADER); // served from the handle's cache, which must not predate the handoff
            byte[] all = Io.read(h[to], 0, SCHEDULE_SIZE);
            int at = Arrays.mismatch(all, model);
            if (at >= 0) {
                throw violation("handoff-keeps-writes", "handle %d took the image (epoch %d) and reads %d at byte %d, where"
                        + " the last write acknowledged before the handoff put %d", to, h[to].epoch(), all[at], at,
                        model[at]);
            }
        }

        private void note(String what) {
            if (recent.size() == 8) {
                recent.removeFirst();
            }
            recent.addLast("step " + step + ": " + what);
        }

        private Violation violation(String clause, String format, Object... args) {
            return Violation.of("%s: %s; the last steps: %s", clause, String.format(java.util.Locale.ROOT, format, args),
                    String.join("; ", recent));
        }
    }

    /* ---------------- ownership-real-threads ---------------- */

    private static void realThreads(DeviceFactory f, long seed) throws Exception {
        try (BlockDevice image = f.create(REAL_SIZE)) {
            OwnedImage a = null;
            OwnedImage b = null;
            try {
                a = OwnedImage.openMemory(image, "kit-0", OwnedImage.State.INACTIVE);
                b = OwnedImage.openMemory(image, "kit-1", OwnedImage.State.INACTIVE);
                new RealRun(image, new OwnedImage[] {a, b}, new Blocks(seed), seed).run();
            } finally {
                Io.closeQuietly(a);
                Io.closeQuietly(b);
            }
        }
    }

    /** One real-thread run: two controllers, two writers, the verdicts. */
    private static final class RealRun {
        private final BlockDevice image;
        private final OwnedImage[] h;
        private final Blocks blocks;
        private final long seed;
        /** Per slot: the last version whose write returned (release store by its writer). */
        private final int[] acked = new int[SLOTS];
        /** Per slot: the last version its writer attempted (volatile store before the write). */
        private final int[] next = new int[SLOTS];
        /** Which handle's controller holds the image, or -1. */
        private final AtomicInteger owner = new AtomicInteger(-1);
        private final AtomicLong lastEpoch = new AtomicLong();
        private final AtomicInteger controllersLeft = new AtomicInteger(2);
        /** Per handle: writes its writer got acknowledged (its controller waits for some while it holds the image). */
        private final AtomicInteger[] written = {new AtomicInteger(), new AtomicInteger()};
        /** The four members; written before they pass the start barrier. */
        private Crew crew;

        RealRun(BlockDevice image, OwnedImage[] h, Blocks blocks, long seed) {
            this.image = image;
            this.h = h;
            this.blocks = blocks;
            this.seed = seed;
        }

        void run() throws Exception {
            crew = Crew.start(4, true, m -> "handoff-testkit-" + (m < 2 ? "holder-" : "writer-") + m % 2, this::member);
            crew.awaitStart(); // the barrier orders this field's write before the members read it
            crew.join();
            // Every write either returned or was refused: the device holds exactly the acknowledged ones.
            byte[] all = Io.read(image, 0, REAL_SIZE);
            for (int slot = 0; slot < SLOTS; slot++) {
                int v = acked[slot]; // the threads are joined
                int base = (int) Blocks.offsetOf(slot);
                byte[] got = Arrays.copyOfRange(all, base, base + Blocks.SLOT);
                if (!Arrays.equals(got, blocks.block(slot, v))) {
                    throw Violation.of("%s: after every thread finished, slot %d (bytes %d+%d) holds %s; the last"
                            + " acknowledged write there was version %d, and every later one was refused",
                            ByteBuffer.wrap(got).getInt(4) > v ? "inactive-write-refused" : "handoff-keeps-writes", slot,
                            base, Blocks.SLOT, Blocks.describe(slot, got), v);
                }
            }
        }

        /** Takes the image {@link #HOLDS} times, checks what it finds, holds it a moment, gives it up. */
        /** Members 0 and 1 take and give up the image through handle 0 and 1; members 2 and 3 write through them. */
        private void member(int m) throws Exception {
            int handle = m % 2;
            if (m < 2) {
                try {
                    controller(handle);
                } finally {
                    controllersLeft.decrementAndGet(); // volatile RMW: the writers' get sees it
                }
            } else {
                writer(handle);
            }
        }

        private void controller(int i) throws Exception {
            SplittableRandom r = new SplittableRandom(seed * 17 + i);
            for (int hold = 0; hold < HOLDS && !crew.failed(); hold++) {
                takeImage(i);
                if (crew.failed()) {
                    return;
                }
                int other = owner.compareAndExchange(-1, i); // volatile CAS: pairs with the last holder's set(-1)
                if (other != -1) {
                    throw Violation.of("never-two-active: handle %d's activate() returned while handle %d still held the"
                            + " image", i, other);
                }
                long epoch = h[i].epoch();
                long before = lastEpoch.getAndSet(epoch); // volatile RMW: the last holder's epoch
                if (epoch <= before) {
                    throw Violation.of("never-two-active: handle %d took the image with epoch %d, not above the last"
                            + " holder's %d", i, epoch, before);
                }
                checkSlots(i, epoch);
                // A write of its own, then a moment for its writer to race the coming inactivate.
                int version = (int) INT.get(next, i) + 1; // plain: slot i is this controller's alone
                INT.setVolatile(next, i, version); // "attempted" before any byte of it: pairs with checkSlots' acquire load
                Io.write(h[i], Blocks.offsetOf(i), blocks.block(i, version));
                INT.setRelease(acked, i, version); // publishes "acknowledged": pairs with checkSlots' acquire load
                int target = written[i].get() + 1 + r.nextInt(3);
                long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(20);
                while (written[i].get() < target && System.nanoTime() < until && !crew.failed()) {
                    LockSupport.parkNanos(50_000);
                }
                owner.set(-1); // before the image is given up: the next activate cannot return before this
                h[i].inactivate();
                int refusedVersion = version + 1;
                INT.setVolatile(next, i, refusedVersion); // attempted, never acknowledged: as above
                try {
                    Io.expectKind(DeviceException.Kind.INACTIVE, "a write through handle " + i + " after its inactivate()"
                            + " returned", () -> Io.write(h[i], Blocks.offsetOf(i), blocks.block(i, refusedVersion)));
                } catch (Violation v) {
                    throw Violation.of("inactive-write-refused: %s", v.getMessage());
                }
                byte[] after = Io.read(h[i], Blocks.offsetOf(i), Blocks.SLOT); // reads stay allowed while inactive
                if (Arrays.equals(after, blocks.block(i, refusedVersion))) {
                    throw Violation.of("inactive-write-refused: the write through handle %d after its inactivate() was"
                            + " refused, yet slot %d (bytes %d+%d) now holds it (version %d)", i, i, Blocks.offsetOf(i),
                            Blocks.SLOT, refusedVersion);
                }
                LockSupport.parkNanos(r.nextInt(200_000)); // the other side's turn, usually
            }
        }

        /** Activates handle {@code i}, retrying (briefly parked) while the other handle holds the image. */
        private void takeImage(int i) throws Exception {
            long until = System.nanoTime() + WAIT_NANOS;
            while (!crew.failed()) {
                try {
                    h[i].activate();
                    return;
                } catch (DeviceException e) {
                    if (e.kind() != DeviceException.Kind.INACTIVE) {
                        throw e;
                    }
                    if (System.nanoTime() > until) {
                        throw Violation.of("never-two-active: handle %d could not take the image for %d s: %s", i,
                                TimeUnit.NANOSECONDS.toSeconds(WAIT_NANOS), e.getMessage());
                    }
                    LockSupport.parkNanos(100_000);
                }
            }
        }

        /** The new holder reads every slot: at least the version acknowledged before, at most the last attempted. */
        private void checkSlots(int i, long epoch) throws Exception {
            for (int slot = 0; slot < SLOTS; slot++) {
                int low = (int) INT.getAcquire(acked, slot); // pairs with the writer's setRelease
                byte[] got = Io.read(h[i], Blocks.offsetOf(slot), Blocks.SLOT);
                VarHandle.acquireFence(); // the read's loads before the look at next
                int high = (int) INT.getAcquire(next, slot);
                int v = -1;
                for (int c = high; c >= low && v < 0; c--) {
                    if (Arrays.equals(got, blocks.block(slot, c))) {
                        v = c;
                    }
                }
                boolean ownWriterMayBeWriting = slot >= 2 && slot % 2 == i;
                if (v < 0 && !ownWriterMayBeWriting) {
                    throw Violation.of("handoff-keeps-writes: handle %d took the image (epoch %d) and reads %s in slot %d"
                            + " (bytes %d+%d); version %d was acknowledged before the handoff and at most version %d was"
                            + " written", i, epoch, Blocks.describe(slot, got), slot, Blocks.offsetOf(slot), Blocks.SLOT,
                            low, high);
                }
            }
        }

        /** Writes its handle's slots (2, 4, ... or 3, 5, ...) until both controllers are done; refusals are expected. */
        private void writer(int i) throws Exception {
            SplittableRandom r = new SplittableRandom(seed * 29 + i);
            int mine = (SLOTS - 2) / 2;
            while (controllersLeft.get() > 0 && !crew.failed()) {
                int slot = 2 + i + 2 * r.nextInt(mine);
                int version = (int) INT.get(next, slot) + 1; // plain: only this writer writes it
                INT.setVolatile(next, slot, version); // "attempted" before any byte of it: pairs with checkSlots' acquire load
                try {
                    Io.write(h[i], Blocks.offsetOf(slot), blocks.block(slot, version));
                } catch (DeviceException e) {
                    if (e.kind() != DeviceException.Kind.INACTIVE) {
                        throw e;
                    }
                    LockSupport.parkNanos(50_000); // the handle is inactive: wait a little for its next activation
                    continue; // refused: version stays unused, the next write skips it
                }
                INT.setRelease(acked, slot, version); // publishes "version acknowledged"
                written[i].incrementAndGet(); // volatile RMW: the controller's get sees it
            }
        }
    }
}
