package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;

/**
 * A deliberately broken target for the demo's hidden {@code --x-lose-target-writes N}: it
 * acknowledges writes number {@code skip + 1 .. skip + N} without writing them, as a disk that
 * lies would. The demo's checks must catch it (an integration test shows they do).
 *
 * <p>Access modes (CONTRIBUTING, "One accessor convention"): {@code writes} counts writes with
 * {@link #getAndAddWrites}, a volatile read-modify-write of which only the atomicity matters (each
 * write gets its own number; nothing is published through it).
 */
final class LosingDevice extends ForwardingBlockDevice {
    private static final VarHandle WRITES;

    static {
        try {
            WRITES = MethodHandles.lookup().findVarHandle(LosingDevice.class, "writes", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final long skip;
    private final long lose;
    private volatile long writes; // through getAndAddWrites

    LosingDevice(BlockDevice inner, long skip, long lose) {
        super(inner);
        this.skip = skip;
        this.lose = lose;
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        long n = getAndAddWrites(1) + 1;
        if (n > skip && n <= skip + lose) {
            src.position(src.limit()); // "written"
            return;
        }
        super.write(offset, src);
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    /** Volatile RMW: only its atomicity matters (see "Access modes"). */
    private long getAndAddWrites(long delta) {
        return (long) WRITES.getAndAdd(this, delta);
    }
}
