package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A deliberately broken target for the demo's hidden {@code --x-lose-target-writes N}: it
 * acknowledges writes number {@code skip + 1 .. skip + N} without writing them, as a disk that
 * lies would. The demo's checks must catch it (an integration test shows they do).
 */
final class LosingDevice extends ForwardingBlockDevice {
    private final long skip;
    private final long lose;
    private final AtomicLong writes = new AtomicLong();

    LosingDevice(BlockDevice inner, long skip, long lose) {
        super(inner);
        this.skip = skip;
        this.lose = lose;
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        long n = writes.incrementAndGet();
        if (n > skip && n <= skip + lose) {
            src.position(src.limit()); // "written"
            return;
        }
        super.write(offset, src);
    }
}
