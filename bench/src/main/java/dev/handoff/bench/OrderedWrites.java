package dev.handoff.bench;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;
import dev.handoff.mirror.DirtyBitmap;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;

/**
 * Devices that wrap a write in the ordering instructions a guest path of the mirror filter
 * issues, or could issue, and nothing else: {@code FilterBench}'s instruction-cost paths. Each
 * models a path by its ordering instructions alone (on x86-64 a volatile RMW is one
 * {@code lock}-prefixed instruction and {@link VarHandle#fullFence()} is {@code lock addl $0,(rsp)};
 * a volatile load, a release store and an opaque or plain store are a plain {@code mov}), or with
 * the real {@link DirtyBitmap#markRange} for the mark paths, so the difference to the bare write is
 * what they cost next to 4 KiB of data stores.
 *
 * <p>Only {@link BlockDevice#write} is wrapped (the benchmark issues nothing else); every other
 * operation goes straight to the device. Closing one closes nothing: the benchmark owns the
 * device. Each device has its own counter (or slots), each on cache lines of its own (the
 * middle element of a 32-long array: at least 120 bytes either side), so its accesses share a
 * line with nothing else. With two writer threads the RMW paths' counter is shared by both, as
 * {@code GuestGate}'s one word was before the gate was striped; the slot path's slots are not.
 *
 * <h2>Access modes</h2>
 * The counter is touched only through the accessors of {@code Counter}: {@code getAndAdd}
 * volatile read-modify-write, {@code lv} volatile load, {@code sp} plain store, {@code so}
 * release store. No thread acts on its value (the two writers of {@code write2} share the RMW
 * paths' counter, as guests shared the gate's word before its cells): the accesses are here for their cost, and
 * the partner each would have in a real protocol is named beside it.
 */
final class OrderedWrites {
    private OrderedWrites() {
    }

    /** Write, then two full fences back to back: the two store-load barriers, no more, no gate word. */
    static BlockDevice twoFences(BlockDevice device) {
        return new Base(device) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                super.write(offset, src);
                VarHandle.fullFence();
                VarHandle.fullFence();
            }
        };
    }

    /**
     * Today's three serialising instructions: a volatile {@code getAndAdd(+1)} (the gate's entry),
     * the write, a full fence (the dirty mark's store-load barrier), a {@code getAndAdd(-1)}
     * (the gate's exit). No bitmap read, no routing.
     */
    static BlockDevice rmwFenceRmw(BlockDevice device) {
        Counter c = new Counter();
        return new Base(device) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                c.getAndAdd(1L);
                super.write(offset, src);
                VarHandle.fullFence();
                c.getAndAdd(-1L);
            }
        };
    }

    /**
     * The per-thread-slot gate's floor, in the order it would issue it: a plain store to the
     * writing thread's own slot and a full fence (the entry, ordered before the read of "closed"),
     * the write, a full fence (before the read of the dirty word), a release store to the slot
     * (the exit). Two serialising instructions; the loads of "closed" and of the dirty word it
     * would also do are left out (each an L1 hit of a line no one writes while no copy runs). The
     * slot is found by the thread's id (eight slots, each on lines of its own; the benchmark's one
     * or two writer threads have distinct ids mod 8): a field load and a mask, where a real gate
     * would need a slot owned by one thread (a {@code ThreadLocal}, or a handle per connection).
     */
    static BlockDevice slot(BlockDevice device) {
        Counter[] slots = new Counter[8];
        for (int i = 0; i < slots.length; i++) {
            slots[i] = new Counter();
        }
        return new Base(device) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                Counter c = slots[(int) Thread.currentThread().getId() & 7];
                c.sp(1L);
                VarHandle.fullFence();
                super.write(offset, src);
                VarHandle.fullFence();
                c.so(0L);
            }
        };
    }

    /**
     * Write, a full fence, then a volatile load of one long (on lines of its own): the dirty
     * mark's minimum on an already-dirty chunk (its fence and its read of the word), without
     * {@link DirtyBitmap#markRange}'s range check, mask and summary read.
     */
    static BlockDevice fenceLoad(BlockDevice device) {
        Counter c = new Counter();
        return new Base(device) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                super.write(offset, src);
                VarHandle.fullFence();
                if (c.lv() == Long.MIN_VALUE) {
                    throw new IllegalStateException(); // never: keeps the load
                }
            }
        };
    }

    /**
     * Today's three serialising instructions with the dirty mark's minimum between the last two:
     * a {@code getAndAdd(+1)}, the write, a full fence, a volatile load of one long (on lines of
     * its own), a {@code getAndAdd(-1)}. Between {@link #rmwFenceRmw} and {@link #rmwMarkRmw}: it
     * adds the load after the fence, not {@link DirtyBitmap#markRange}'s range check, mask, loop
     * and summary read.
     */
    static BlockDevice rmwFenceLoadRmw(BlockDevice device) {
        Counter c = new Counter();
        Counter word = new Counter();
        return new Base(device) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                c.getAndAdd(1L);
                super.write(offset, src);
                VarHandle.fullFence();
                if (word.lv() == Long.MIN_VALUE) {
                    throw new IllegalStateException(); // never: keeps the load
                }
                c.getAndAdd(-1L);
            }
        };
    }

    /**
     * The one-RMW dirty mark in the gate's RMWs: a {@code getAndAdd(+1)}, the write, an
     * unconditional {@code getAndBitwiseOr} of a bit that is already set on one long (on lines of
     * its own), a {@code getAndAdd(-1)}. The OR stands for the fence and the word's load of
     * {@link #rmwFenceLoadRmw}: one locked instruction that orders the data before it and reads the
     * word at once (docs/BENCHMARKS.md, "Filter overhead in memory", next step). No summary read.
     */
    static BlockDevice rmwOrRmw(BlockDevice device) {
        Counter c = new Counter();
        Counter word = new Counter();
        word.getAndAdd(1L);
        return new Base(device) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                c.getAndAdd(1L);
                super.write(offset, src);
                if ((word.getAndOr(1L) & 1L) == 0) {
                    throw new IllegalStateException(); // never: the bit stays set
                }
                c.getAndAdd(-1L);
            }
        };
    }

    /**
     * Write, then the real {@link DirtyBitmap#markRange} on an all-dirty bitmap of the job's
     * granularity (its range check, fence, word read and summary read; no RMW): the dirty mark
     * alone, no gate.
     */
    static BlockDevice mark(BlockDevice device, int granularity) {
        DirtyBitmap bitmap = allDirty(device, granularity);
        return new Base(device) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                int length = src.remaining();
                super.write(offset, src);
                bitmap.markRange(offset, length);
            }
        };
    }

    /**
     * Today's protocol without the filter: a {@code getAndAdd(+1)}, the write, the real
     * {@link DirtyBitmap#markRange} (its range check, fence, word read and summary read; the
     * chunks are all dirty, so no RMW), a {@code getAndAdd(-1)}. What {@code bg-idle} adds to
     * this is the filter's routing: the closed, passthrough, trace, write-through and intent
     * checks, the range check and the copier's guest-write counter.
     */
    static BlockDevice rmwMarkRmw(BlockDevice device, int granularity) {
        Counter c = new Counter();
        DirtyBitmap bitmap = allDirty(device, granularity);
        return new Base(device) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                int length = src.remaining();
                c.getAndAdd(1L);
                super.write(offset, src);
                bitmap.markRange(offset, length);
                c.getAndAdd(-1L);
            }
        };
    }

    /** As the job's bitmap is in the benchmark's steady state: every chunk the writes touch is dirty. */
    private static DirtyBitmap allDirty(BlockDevice device, int granularity) {
        DirtyBitmap bitmap = new DirtyBitmap(device.size(), granularity);
        bitmap.markAll();
        return bitmap;
    }

    private abstract static class Base extends ForwardingBlockDevice {
        Base(BlockDevice device) {
            super(device);
        }

        @Override
        public void close() {
            // the benchmark owns the device
        }
    }

    /** A long on cache lines of its own. */
    private static final class Counter {
        private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);
        private static final int AT = 16;
        private final long[] padded = new long[2 * AT];

        /** Volatile RMW: a gate entry or exit (its partner would be the closer's RMW). */
        long getAndAdd(long delta) {
            return (long) LONGS.getAndAdd(padded, AT, delta);
        }

        /** Volatile RMW ({@code lock or} on x86-64): a one-RMW mark of its word. */
        long getAndOr(long bits) {
            return (long) LONGS.getAndBitwiseOr(padded, AT, bits);
        }

        /** Volatile load (a plain {@code mov} on x86-64): the mark's read of its word. */
        long lv() {
            return (long) LONGS.getVolatile(padded, AT);
        }

        /** Plain store: a slot entry, ordered before the next load by the caller's full fence. */
        void sp(long value) {
            LONGS.set(padded, AT, value);
        }

        /** Release store: a slot exit, publishing the thread's work to a closer that reads the slot. */
        void so(long value) {
            LONGS.setRelease(padded, AT, value);
        }
    }
}
