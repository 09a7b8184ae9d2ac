package dev.handoff.bench;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;

import java.nio.ByteBuffer;

/**
 * Writes go to the first device, then to the second; reads come from the first: what a
 * write-blocking guest write costs without the mirror filter, the baseline the benchmarks
 * ({@code FilterBench}'s {@code raw+target}, the side-by-side comparison's write-blocking
 * overhead) divide by. Closing it closes neither device: the caller owns both.
 */
public final class WriteBoth extends ForwardingBlockDevice {
    private final BlockDevice second;

    public WriteBoth(BlockDevice first, BlockDevice second) {
        super(first);
        this.second = second;
    }

    @Override
    public void write(long offset, ByteBuffer src) throws DeviceException {
        ByteBuffer again = src.duplicate();
        super.write(offset, src);
        second.write(offset, again);
    }

    @Override
    public void writeZeroes(long offset, long length) throws DeviceException {
        super.writeZeroes(offset, length);
        second.writeZeroes(offset, length);
    }

    @Override
    public void discard(long offset, long length) throws DeviceException {
        super.discard(offset, length);
        second.discard(offset, length);
    }

    @Override
    public void flush() throws DeviceException {
        super.flush();
        second.flush();
    }

    @Override
    public void close() {
        // the caller owns both devices
    }
}
