package dev.handoff.nbd;

import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntFunction;

/**
 * The allocator seam: records any allocation above a limit (the size a peer claimed, allocated
 * before it was validated) and refuses it, so a broken variant cannot take the test JVM down.
 */
final class AllocationGuard implements IntFunction<ByteBuffer> {
    private final int limit;
    private final List<String> violations = new CopyOnWriteArrayList<>();
    private final AtomicInteger largest = new AtomicInteger();

    AllocationGuard(int limit) {
        this.limit = limit;
    }

    @Override
    public ByteBuffer apply(int size) {
        largest.accumulateAndGet(size, Math::max);
        if (size < 0 || size > limit) {
            violations.add("allocation of " + size + " bytes, limit " + limit);
            throw new IllegalStateException("allocation of " + size + " bytes refused by the test guard");
        }
        return ByteBuffer.allocate(size);
    }

    List<String> violations() {
        return List.copyOf(violations);
    }

    int largest() {
        return largest.get();
    }
}
