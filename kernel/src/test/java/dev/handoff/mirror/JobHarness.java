package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.FaultyDevice;
import dev.handoff.device.MemoryDevice;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** A small job on memory devices with a {@link SteppingRuntime}, recording its events. */
final class JobHarness {
    static final int GRANULARITY = 64 << 10;
    static final long SIZE = 16L * GRANULARITY;

    final FaultyDevice source;
    final FaultyDevice target;
    final SteppingRuntime runtime = new SteppingRuntime();
    final MirrorJob job;
    final List<MirrorEvent> events = new ArrayList<>();

    JobHarness() {
        this(MirrorOptions.builder().granularity(GRANULARITY).bufSize(4L * GRANULARITY).maxCopyBytes(GRANULARITY).build());
    }

    JobHarness(MirrorOptions options) {
        this(options, SIZE);
    }

    JobHarness(MirrorOptions options, long size) {
        source = new FaultyDevice(new MemoryDevice(size));
        target = new FaultyDevice(new MemoryDevice(size));
        fillRandom(source, 1);
        if (options.sync() == SyncMode.NONE) {
            fillRandom(target, 1); // sync NONE: the target already holds the source's data
        }
        job = MirrorJob.create(source, target, options, runtime);
        job.addListener(e -> {
            synchronized (events) {
                events.add(e);
            }
        });
    }

    /** Drives the job to a named state without running more tasks than needed. */
    JobHarness reach(String name) throws DeviceException {
        switch (name) {
            case "CREATED" -> { }
            case "CREATED_PAUSED" -> job.pause();
            case "RUNNING" -> job.start();
            case "READY" -> ready();
            case "PAUSED" -> {
                job.start();
                job.pause();
            }
            case "PAUSED_READY" -> {
                ready();
                job.pause();
            }
            case "PAUSED_READY_COMPLETE" -> {
                ready();
                job.pause();
                job.complete();
            }
            case "COMPLETING" -> {
                ready();
                job.complete();
            }
            case "CANCELLING" -> {
                job.start();
                job.cancel();
            }
            case "CANCELLING_READY" -> {
                ready();
                job.cancel();
            }
            case "PENDING" -> {
                ready();
                job.complete();
                runtime.runAll();
            }
            case "PENDING_NO_PIVOT" -> {
                ready();
                job.cancel();
                runtime.runAll();
            }
            case "COMPLETED" -> {
                ready();
                job.complete();
                runtime.runAll();
            }
            case "CANCELLED" -> job.cancel();
            case "FAILED" -> {
                target.inject(FaultyDevice.Fault.error(DeviceException.Kind.IO_ERROR).on(FaultyDevice.Op.WRITE));
                job.start();
                runtime.runAll();
            }
            default -> throw new IllegalArgumentException(name);
        }
        if (name.startsWith("PENDING") && job.state() != JobState.PENDING) {
            throw new AssertionError("not PENDING (auto-finalize must be off): " + job.state());
        }
        return this;
    }

    void ready() {
        job.start();
        runtime.runAll();
        if (job.state() != JobState.READY) {
            throw new AssertionError("not READY: " + job.state());
        }
    }

    List<MirrorEvent> events() {
        synchronized (events) {
            return List.copyOf(events);
        }
    }

    <T extends MirrorEvent> List<T> events(Class<T> type) {
        List<T> out = new ArrayList<>();
        for (MirrorEvent e : events()) {
            if (type.isInstance(e)) {
                out.add(type.cast(e));
            }
        }
        return out;
    }

    static void fillRandom(BlockDevice d, long seed) {
        byte[] data = new byte[(int) d.size()];
        new SplittableRandom(seed).nextBytes(data);
        try {
            d.write(0, ByteBuffer.wrap(data));
        } catch (DeviceException e) {
            throw new IllegalStateException(e);
        }
    }

    static byte[] contents(BlockDevice d) throws DeviceException {
        ByteBuffer b = ByteBuffer.allocate((int) d.size());
        d.read(0, b);
        return b.array();
    }

    /** Fails with the first differing offset rather than two dumps of the devices. */
    static void assertSameContent(BlockDevice actual, BlockDevice expected) throws DeviceException {
        byte[] a = contents(actual);
        byte[] e = contents(expected);
        int at = java.util.Arrays.mismatch(a, e);
        if (at >= 0) {
            throw new AssertionError("devices differ first at byte " + at + " (chunk " + (at / GRANULARITY) + ")"
                    + (at < Math.min(a.length, e.length) ? ": " + a[at] + " != " + e[at] : ""));
        }
    }

    static void write(BlockDevice d, long offset, int length, int value) throws DeviceException {
        byte[] data = new byte[length];
        java.util.Arrays.fill(data, (byte) value);
        d.write(offset, ByteBuffer.wrap(data));
    }
}
