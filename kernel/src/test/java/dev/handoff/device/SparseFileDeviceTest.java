package dev.handoff.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * FileDevice on sparse files, direct I/O and block devices (loop devices the test attaches): holes
 * found with SEEK_DATA/SEEK_HOLE, write-zeroes and discard that deallocate instead of writing,
 * judged by the allocation stat(1) reports; the size of a block device; O_DIRECT's alignment.
 */
@Timeout(120)
class SparseFileDeviceTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    private static ByteBuffer filled(int n, int value) {
        ByteBuffer b = ByteBuffer.allocateDirect(n + 4096).alignedSlice(4096).limit(n).slice();
        while (b.hasRemaining()) {
            b.put((byte) value);
        }
        return b.flip();
    }

    @Test
    void aNewImageIsAllHoleAndSeekDataFindsTheOneExtentWritten() throws Exception {
        NativeIo.requireNative();
        Path p = dir.resolve("sparse.img");
        try (FileDevice d = FileDevice.create(p, 64L * MIB)) {
            assertThat(NativeIo.allocated(p)).as("created as one hole").isZero();
            d.write(10L * MIB + 4096, filled(4096, 7));
            d.flush();
            assertThat(d.nextData(0)).isEqualTo(10L * MIB + 4096);
            assertThat(d.nextHole(10L * MIB + 4096)).isEqualTo(10L * MIB + 8192);
            assertThat(d.nextData(10L * MIB + 8192)).isEqualTo(64L * MIB);
            assertThat(NativeIo.allocated(p)).isEqualTo(4096);
        }
    }

    @Test
    void writeZeroesAndDiscardDeallocateAndReadAsZeroes() throws Exception {
        NativeIo.requireNative();
        Path p = dir.resolve("z.img");
        try (FileDevice d = FileDevice.create(p, 8L * MIB)) {
            d.write(0, filled(8 * MIB, 3));
            d.flush();
            assertThat(NativeIo.allocated(p)).isEqualTo(8L * MIB);
            d.writeZeroes(MIB, 2L * MIB);
            d.discard(5L * MIB, MIB);
            d.flush();
            assertThat(NativeIo.allocated(p)).as("3 MiB deallocated").isEqualTo(5L * MIB);
            ByteBuffer b = ByteBuffer.allocate(8 * MIB);
            d.read(0, b);
            for (int i = 0; i < 8 * MIB; i += 4096) {
                boolean zero = (i >= MIB && i < 3 * MIB) || (i >= 5 * MIB && i < 6 * MIB);
                assertThat(b.get(i)).as("byte %d", i).isEqualTo(zero ? (byte) 0 : (byte) 3);
            }
            d.writeZeroes(100, 10); // a partial block: zeroed in place
            ByteBuffer small = ByteBuffer.allocate(12);
            d.read(99, small);
            assertThat(small.array()).containsExactly(3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3);
        }
    }

    /** FileDevice remembers the last run of data SEEK_HOLE found; what changes the run forgets it. */
    @Test
    void nextHoleSeesAHolePunchedInsideARunOfDataItAlreadyFound() throws Exception {
        NativeIo.requireNative();
        try (FileDevice d = FileDevice.create(dir.resolve("run.img"), 16L * MIB)) {
            d.write(0, filled(8 * MIB, 5));
            assertThat(d.nextHole(0)).isEqualTo(8L * MIB);
            assertThat(d.nextHole(MIB)).as("inside the run found").isEqualTo(8L * MIB);
            d.discard(2L * MIB, MIB);
            assertThat(d.nextHole(MIB)).as("after a discard inside it").isEqualTo(2L * MIB);
            assertThat(d.nextHole(3L * MIB)).isEqualTo(8L * MIB);
            d.writeZeroes(5L * MIB, MIB);
            assertThat(d.nextHole(4L * MIB)).as("after write-zeroes inside it").isEqualTo(5L * MIB);
        }
    }

    @Test
    void nextHoleSeesARunOfDataExtendedByAWriteAtItsEnd() throws Exception {
        NativeIo.requireNative();
        try (FileDevice d = FileDevice.create(dir.resolve("grow.img"), 16L * MIB)) {
            d.write(0, filled(MIB, 5));
            assertThat(d.nextHole(MIB / 2)).isEqualTo(MIB);
            d.write(MIB, filled(MIB, 6));
            assertThat(d.nextHole(MIB / 2)).as("the run now ends at 2 MiB").isEqualTo(2L * MIB);
            assertThat(d.nextHole(0)).isEqualTo(2L * MIB);
            d.write(4L * MIB, filled(MIB, 7)); // past the run's end, not touching it
            assertThat(d.nextHole(0)).isEqualTo(2L * MIB);
        }
    }

    @Test
    void directIoNeedsAlignedOffsetsLengthsAndBuffers() throws Exception {
        Path p = dir.resolve("d.img");
        FileDevice.create(p, 4L * MIB).close();
        try (FileDevice d = FileDevice.open(p, false, true)) {
            int a = d.alignment();
            assertThat(a).isGreaterThanOrEqualTo(512);
            d.write(a, filled(a, 9));
            ByteBuffer back = ByteBuffer.allocateDirect(2 * a).alignedSlice(a).limit(a).slice();
            d.read(a, back);
            assertThat(back.get(0)).isEqualTo((byte) 9);
            d.writeZeroes(a, a);
            assertThatThrownBy(() -> d.write(a + 1, filled(a, 1))).isInstanceOf(DeviceException.class);
            assertThat(d.toString()).contains("direct");
        }
    }

    @Test
    void aLoopDeviceIsAnImageOfItsCapacityWhoseZeroesDeallocateTheBackingFile() throws Exception {
        NativeIo.requireNative();
        Path backing = dir.resolve("backing.img");
        try (FileDevice f = FileDevice.create(backing, 32L * MIB)) {
            f.write(0, filled(32 * MIB, 5));
            f.flush();
        }
        try (NativeIo.Loop loop = NativeIo.Loop.attach(backing); FileDevice d = FileDevice.open(loop.device)) {
            assertThat(Files.size(loop.device)).as("the file system says 0 for a device").isZero();
            assertThat(d.isBlockDevice()).isTrue();
            assertThat(d.size()).isEqualTo(32L * MIB);
            d.write(MIB, filled(4096, 8));
            d.writeZeroes(4L * MIB, 8L * MIB);
            d.discard(20L * MIB, 4L * MIB);
            d.flush();
            ByteBuffer b = ByteBuffer.allocate(4096);
            d.read(MIB, b);
            assertThat(b.get(0)).isEqualTo((byte) 8);
            b.clear();
            d.read(6L * MIB, b);
            assertThat(b.array()).containsOnly(0);
            assertThat(NativeIo.allocated(backing)).as("the loop device passed its zeroes to the backing file as holes")
                    .isLessThanOrEqualTo(20L * MIB + MIB);
            assertThat(d.nextData(0)).as("a device cannot tell: all may be data").isZero();
            assertThat(d.nextHole(0)).isEqualTo(32L * MIB);
        }
        try (NativeIo.Loop loop = NativeIo.Loop.attach(backing); FileDevice d = FileDevice.open(loop.device, false, true)) {
            d.write(0, filled(d.alignment(), 6));
            d.flush();
        }
        assertThat(Files.readAllBytes(backing)[0]).isEqualTo((byte) 6);
    }
}
