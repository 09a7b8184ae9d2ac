package dev.handoff.device;

import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;

/** The contract on {@link FileDevice} (a sparse file under the build directory). */
class FileDevicePropertiesTest extends BlockDeviceProperties {
    @TempDir
    Path dir;

    private final AtomicInteger n = new AtomicInteger();

    /** Raw files cannot punch holes portably: discard is a no-op, which the contract allows. */
    @Override
    protected boolean discardReadsZeroes() {
        return false;
    }

    @Override
    protected BlockDevice create(long size) throws DeviceException {
        return FileDevice.create(dir.resolve("image-" + n.incrementAndGet() + ".raw"), size);
    }
}
