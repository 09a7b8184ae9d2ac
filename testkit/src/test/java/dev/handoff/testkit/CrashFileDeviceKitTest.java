package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.FileDevice;
import dev.handoff.fs.CrashFileSystem;

import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The kit on {@link FileDevice} over the kernel's {@link CrashFileSystem}, which keeps only what
 * was forced when the power goes: the one device here whose flush durability the kit can check
 * ({@code flushed-writes-survive-a-power-loss}: a flush that does not force is caught).
 */
class CrashFileDeviceKitTest extends DeviceKit {
    private final AtomicInteger n = new AtomicInteger();

    private record Image(CrashFileSystem fs, Path path) {
    }

    private final java.util.Map<BlockDevice, Image> images = new java.util.concurrent.ConcurrentHashMap<>();

    @Override
    public BlockDevice create(long size) throws Exception {
        CrashFileSystem fs = new CrashFileSystem();
        Path dir = fs.createSyncedDirectories("/images");
        Path path = dir.resolve("image-" + n.incrementAndGet() + ".raw");
        try (FileChannel c = FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            if (size > 0) {
                c.write(ByteBuffer.allocate(1), size - 1); // all zero, size bytes
            }
            c.force(true);
        }
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true); // the new name is durable too
        }
        FileDevice device = FileDevice.open(path);
        images.put(device, new Image(fs, path));
        return device;
    }

    @Override
    public PowerLoss powerLoss() {
        return device -> {
            Image image = images.remove(device);
            image.fs().crash();
            device.close();
            FileDevice reopened = FileDevice.open(image.path());
            images.put(reopened, image);
            return reopened;
        };
    }
}
