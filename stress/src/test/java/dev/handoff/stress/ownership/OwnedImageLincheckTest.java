package dev.handoff.stress.ownership;

import dev.handoff.device.DeviceException;
import dev.handoff.ownership.ImageLockedException;
import dev.handoff.ownership.OwnedImage;
import dev.handoff.ownership.OwnershipLock;
import dev.handoff.ownership.RecordStore;
import dev.handoff.ownership.UnregisteredImages;
import dev.handoff.stress.ChunkDevice;
import org.jetbrains.lincheck.datastructures.IntGen;
import org.jetbrains.lincheck.datastructures.ModelCheckingOptions;
import org.jetbrains.lincheck.datastructures.Operation;
import org.jetbrains.lincheck.datastructures.Param;
import org.jetbrains.lincheck.datastructures.StressOptions;
import org.jetbrains.lincheck.datastructures.Validate;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The owned image's state machine, from several threads, against a sequential model (DESIGN §4):
 * two handles on one image (a one-chunk device, all of it inside the header cache), each able to
 * activate, inactivate, write and read. The model: at most one active handle; a write by an
 * inactive handle is refused and changes nothing; a read returns the image's current value (an
 * active handle serves it from its header cache, which must never be stale). The validation
 * function checks that an image with no active handle has everything flushed.
 *
 * <p>Broken variants caught: activate-keeps-cache (a handle that read the header while
 * active, lost ownership and activated again serves its old copy: a read returns a value the
 * model does not have), activate-without-lock (two handles active), inactivate-without-flush. The
 * catalog names this test for the last; activate-without-lock was shown caught by a catalog run with
 * this test added as a check (the catalog names its jcstress harness and other tests). Rerun:
 * {@code mvn -pl kernel,stress -am verify -Djcstress.skip -Dstress.test=OwnedImageLincheckTest}
 */
@Param(name = "handle", gen = IntGen.class, conf = "0:1")
@Param(name = "value", gen = IntGen.class, conf = "1:3")
public class OwnedImageLincheckTest {
    static final int OK = 1;
    static final int REFUSED = 0;

    private final ChunkDevice device = new ChunkDevice(1);
    private final OwnedImage[] handles = new OwnedImage[2];

    public OwnedImageLincheckTest() throws DeviceException {
        // The kernel's handles outside openMemory's process-wide registries (its test-jar's seam): Lincheck restores static
        // state between runs, which would hand a held lock to the next run's handles.
        RecordStore records = UnregisteredImages.memoryRecords("image");
        AtomicReference<Object> holder = new AtomicReference<>();
        handles[0] = UnregisteredImages.assemble(device, records, new OneImageLock(holder), "h0", "image",
                OwnedImage.State.ACTIVE);
        handles[1] = UnregisteredImages.assemble(device, records, new OneImageLock(holder), "h1", "image",
                OwnedImage.State.INACTIVE);
    }

    /** An ownership lock shared by the handles of one test instance: the holder is one atomic reference. */
    private static final class OneImageLock implements OwnershipLock {
        private final AtomicReference<Object> holder;

        OneImageLock(AtomicReference<Object> holder) {
            this.holder = holder;
        }

        @Override
        public void acquire() throws ImageLockedException {
            if (!holder.compareAndSet(null, this) && holder.get() != this) {
                throw new ImageLockedException("locked by the other handle");
            }
        }

        @Override
        public void release() {
            holder.compareAndSet(this, null);
        }

        @Override
        public boolean isHeld() {
            return holder.get() == this;
        }
    }

    @Operation
    public int activate(@Param(name = "handle") int h) {
        try {
            handles[h].activate();
            return OK;
        } catch (DeviceException e) {
            return REFUSED;
        }
    }

    @Operation
    public int inactivate(@Param(name = "handle") int h) {
        try {
            handles[h].inactivate();
            return OK;
        } catch (DeviceException e) {
            return -1; // not expected: the model has no failure here
        }
    }

    @Operation
    public int write(@Param(name = "handle") int h, @Param(name = "value") int v) {
        try {
            handles[h].write(0, ChunkDevice.chunksOf(v, 1));
            return OK;
        } catch (DeviceException e) {
            return REFUSED;
        }
    }

    @Operation
    public int read(@Param(name = "handle") int h) throws DeviceException {
        ByteBuffer b = ByteBuffer.allocate(ChunkDevice.CHUNK);
        handles[h].read(0, b);
        return b.get(0);
    }

    /**
     * Flush before inactivate: once no handle is active, the last inactivation flushed, so what
     * survives a crash (the device's flushed value) is the image's current value. (Durability is
     * not an operation: a flush is visible before the inactivation it belongs to takes effect.)
     */
    @Validate
    public void anInactiveImageHasEverythingFlushed() {
        if (handles[0].state() == OwnedImage.State.INACTIVE && handles[1].state() == OwnedImage.State.INACTIVE
                && device.durable(0) != device.value(0)) {
            throw new AssertionError("no handle is active but the flushed value is " + device.durable(0)
                    + " and the image holds " + device.value(0));
        }
    }

    @Test
    void modelCheckingAgainstTheStateMachine() {
        new ModelCheckingOptions()
                .iterations(15)
                .invocationsPerIteration(20)
                .threads(2)
                .actorsPerThread(3)
                .minimizeFailedScenario(false)
                .sequentialSpecification(Model.class)
                .check(getClass());
    }

    @Test
    void stressAgainstTheStateMachine() {
        new StressOptions()
                .iterations(6)
                .invocationsPerIteration(100)
                .threads(2)
                .actorsPerThread(3)
                .minimizeFailedScenario(false)
                .sequentialSpecification(Model.class)
                .check(getClass());
    }

    /** The sequential state machine. Handle 0 starts ACTIVE, handle 1 INACTIVE; the image holds 0. */
    public static final class Model {
        private int active = 0; // -1: none
        private int value;

        public int activate(int h) {
            if (active == h) {
                return OK;
            }
            if (active >= 0) {
                return REFUSED;
            }
            active = h;
            return OK;
        }

        public int inactivate(int h) {
            if (active == h) {
                active = -1;
            }
            return OK;
        }

        public int write(int h, int v) {
            if (active != h) {
                return REFUSED;
            }
            value = v;
            return OK;
        }

        public int read(int h) {
            return value;
        }

    }
}
