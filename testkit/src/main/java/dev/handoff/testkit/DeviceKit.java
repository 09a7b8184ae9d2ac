package dev.handoff.testkit;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.stream.Stream;

/**
 * The kit's JUnit 5 entry point: extend it in a test class, give it your device, and every check
 * of the {@link BlockDevice} contract runs on it as a test named by the check.
 *
 * <pre>{@code
 * class MyDeviceKitTest extends DeviceKit {
 *     @Override
 *     public BlockDevice create(long size) throws Exception {
 *         return MyDevice.open(size);
 *     }
 * }
 * }</pre>
 *
 * <p>Five test factories: one per part of the contract ({@link #sequentialContract()},
 * {@link #concurrentContract()}, {@link #faultBehaviour()}), and the kernel's two protocols with
 * the user's devices: {@link #mirrorJob()} (a mirror job from one device to another) and
 * {@link #ownershipHandoff()} (two ownership handles on one device). Override the capabilities of
 * {@link DeviceFactory} your device has ({@code discardReadsZeroes}, {@code powerLoss},
 * {@code layering}); a check whose capability is missing is reported as skipped. A failure reads
 * {@code [check] seed S: what was seen} and ends with the line that replays it. The system
 * properties of {@link Checks} choose seeds and checks.
 *
 * <p>Each seed of each check runs on a thread of its own and fails after its time limit; the
 * concurrent checks start threads of their own.
 *
 * @see Checks#all()
 */
public abstract class DeviceKit implements DeviceFactory {

    /** One caller at a time: sizes, zeroes, random operations against a byte array, the allocation map. */
    @TestFactory
    public Stream<DynamicTest> sequentialContract() {
        return tests(Check.Group.SEQUENTIAL);
    }

    /** Many threads at once: checksummed writes, read-your-writes, flush durability across a power loss. */
    @TestFactory
    public Stream<DynamicTest> concurrentContract() {
        return tests(Check.Group.CONCURRENT);
    }

    /** DeviceException kinds: out of range, closed, faults of a backing device. */
    @TestFactory
    public Stream<DynamicTest> faultBehaviour() {
        return tests(Check.Group.FAULTS);
    }

    /** A mirror job copies one of your devices to another under guest writes: a seeded schedule, and real threads. */
    @TestFactory
    public Stream<DynamicTest> mirrorJob() {
        return tests(Check.Group.MIRROR);
    }

    /** Two ownership handles hand your device back and forth: a seeded schedule, and real threads. */
    @TestFactory
    public Stream<DynamicTest> ownershipHandoff() {
        return tests(Check.Group.OWNERSHIP);
    }

    private Stream<DynamicTest> tests(Check.Group group) {
        return Checks.of(group).stream().filter(Checks::selected)
                .map(check -> DynamicTest.dynamicTest(check.id(), () -> runSeeds(check)));
    }

    private void runSeeds(Check check) {
        for (long seed : Checks.seeds(check)) {
            try {
                check.run(this, seed, Checks.limit());
            } catch (CheckFailure f) {
                throw f.withReplay("mvn test -Dtest=" + testClassName() + " -Dhandoff.kit.check=" + check.id()
                        + " -Dhandoff.kit.seed=" + seed);
            }
        }
    }

    /** What {@code -Dtest} selects this class by: a nested kit class runs through its top-level class. */
    private String testClassName() {
        Class<?> c = getClass();
        while (c.getEnclosingClass() != null) {
            c = c.getEnclosingClass();
        }
        return c.getSimpleName();
    }
}
