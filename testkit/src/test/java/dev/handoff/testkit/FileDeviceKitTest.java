package dev.handoff.testkit;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.FileDevice;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The kit on {@link FileDevice}: sparse raw files under the build directory (where the kernel's
 * JNI library answers the allocation map with SEEK_DATA and SEEK_HOLE). Its flush durability is
 * checked on a file system that can lose power: {@link CrashFileDeviceKitTest}.
 */
class FileDeviceKitTest extends DeviceKit {
    @TempDir
    Path dir;

    private final AtomicInteger n = new AtomicInteger();

    @Override
    public BlockDevice create(long size) throws Exception {
        return FileDevice.create(dir.resolve("image-" + n.incrementAndGet() + ".raw"), size);
    }
}
