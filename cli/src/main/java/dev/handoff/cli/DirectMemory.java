package dev.handoff.cli;

import com.sun.management.HotSpotDiagnosticMXBean;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;

/**
 * How much direct memory ({@code ByteBuffer.allocateDirect}) this JVM may still allocate: the copy
 * buffers of a mirror job come from it, and asking for more than it holds ends in an
 * {@link OutOfMemoryError} in the middle of a copy. Read from the JVM's own management beans.
 */
final class DirectMemory {
    private DirectMemory() {
    }

    /** {@code -XX:MaxDirectMemorySize}, or the heap's maximum where it is not set (the JVM's default). */
    static long max() {
        try {
            HotSpotDiagnosticMXBean hotspot = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
            long configured = Long.parseLong(hotspot.getVMOption("MaxDirectMemorySize").getValue());
            if (configured > 0) {
                return configured;
            }
        } catch (RuntimeException notHotSpot) {
            // another JVM: its default is the heap's maximum too
        }
        return Runtime.getRuntime().maxMemory();
    }

    /** Direct memory allocated now, by every user in this JVM. */
    static long used() {
        for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
            if (pool.getName().equals("direct")) {
                return pool.getMemoryUsed();
            }
        }
        return 0;
    }

    /** What may still be allocated. */
    static long available() {
        return Math.max(0, max() - used());
    }
}
