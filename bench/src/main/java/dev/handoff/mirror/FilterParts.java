package dev.handoff.mirror;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.ForwardingBlockDevice;

import java.nio.ByteBuffer;

/**
 * The mirror filter's background write path taken apart, to see what each step costs on top of
 * the device write: the guest gate alone ({@link GuestGate#enter()} / {@link GuestGate#exit()},
 * two volatile RMWs on one word), and the dirty mark alone ({@link DirtyBitmap#markRange}: a full
 * fence, a read of the word, and of its summary). Benchmark code: it lives in the kernel's package
 * only to reach the package-private gate.
 */
public final class FilterParts {
    private FilterParts() {
    }

    /** Writes to {@code device} inside a guest gate, as the filter does, without marking. */
    public static BlockDevice gated(BlockDevice device) {
        GuestGate gate = new GuestGate(() -> { });
        return new Wrapper(device) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                gate.enter();
                try {
                    device.write(offset, src);
                } finally {
                    gate.exit();
                }
            }
        };
    }

    /** Writes to {@code device}, then marks the written chunks dirty, as the filter does, without a gate. */
    public static BlockDevice marked(BlockDevice device, int granularity) {
        DirtyBitmap bitmap = new DirtyBitmap(device.size(), granularity);
        return new Wrapper(device) {
            @Override
            public void write(long offset, ByteBuffer src) throws DeviceException {
                long length = src.remaining();
                try {
                    device.write(offset, src);
                } finally {
                    bitmap.markRange(offset, length);
                }
            }
        };
    }

    /** Forwards everything but the write each part measures; the caller owns the device. */
    private abstract static class Wrapper extends ForwardingBlockDevice {
        Wrapper(BlockDevice device) {
            super(device);
        }

        @Override
        public void close() {
            // the caller owns the device
        }
    }
}
