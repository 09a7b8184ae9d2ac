package dev.handoff.cli;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;

/** A user's jar, compiled from source at test time, so that verify loads classes it has never seen. */
final class UserJar {
    private UserJar() {
    }

    /** Compiles {@code sources} (class name to source) against this JVM's class path into {@code jar}. */
    static Path build(Path dir, String name, Map<String, String> sources) throws IOException {
        Path src = Files.createDirectories(dir.resolve(name + "-src"));
        Path classes = Files.createDirectories(dir.resolve(name + "-classes"));
        List<String> args = new ArrayList<>(List.of("-d", classes.toString(), "-cp", System.getProperty("java.class.path"),
                "--release", "17", "-nowarn"));
        for (Map.Entry<String, String> e : sources.entrySet()) {
            Path file = src.resolve(e.getKey().replace('.', '/') + ".java");
            Files.createDirectories(file.getParent());
            Files.writeString(file, e.getValue());
            args.add(file.toString());
        }
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        int rc = javac.run(null, null, null, args.toArray(String[]::new));
        if (rc != 0) {
            throw new IllegalStateException("javac failed on " + sources.keySet());
        }
        Path jar = dir.resolve(name + ".jar");
        try (OutputStream out = Files.newOutputStream(jar); JarOutputStream j = new JarOutputStream(out);
                Stream<Path> files = Files.walk(classes)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                j.putNextEntry(new JarEntry(classes.relativize(f).toString().replace('\\', '/')));
                j.write(Files.readAllBytes(f));
                j.closeEntry();
            }
        }
        return jar;
    }

    static final String ACME_DEVICE = """
            package com.acme;

            import dev.handoff.device.BlockDevice;
            import dev.handoff.device.DeviceException;
            import dev.handoff.device.MemoryDevice;
            import java.nio.ByteBuffer;

            /** A user's device: keeps its bytes in a memory device of its own. */
            public class AcmeDevice implements BlockDevice {
                final MemoryDevice bytes;

                public AcmeDevice(long size) {
                    bytes = new MemoryDevice(size);
                }

                public long size() { return bytes.size(); }
                public void read(long o, ByteBuffer b) throws DeviceException { bytes.read(o, b); }
                public void write(long o, ByteBuffer b) throws DeviceException { bytes.write(o, b); }
                public void writeZeroes(long o, long n) throws DeviceException { bytes.writeZeroes(o, n); }
                public void discard(long o, long n) throws DeviceException { bytes.discard(o, n); }
                public void flush() throws DeviceException { bytes.flush(); }
                public void close() { bytes.close(); }
            }
            """;

    /** Acknowledges a write when its first half has landed; the second lands a moment later. */
    static final String EARLY_ACK_DEVICE = """
            package com.acme;

            import dev.handoff.device.DeviceException;
            import java.nio.ByteBuffer;
            import java.util.concurrent.ExecutorService;
            import java.util.concurrent.Executors;

            public class EarlyAckDevice extends AcmeDevice {
                private static final ExecutorService LATER = Executors.newSingleThreadExecutor(r -> {
                    Thread t = new Thread(r, "early-ack");
                    t.setDaemon(true);
                    return t;
                });

                public EarlyAckDevice(long size) {
                    super(size);
                }

                @Override
                public void write(long o, ByteBuffer src) throws DeviceException {
                    int half = src.remaining() / 2;
                    ByteBuffer first = src.duplicate();
                    first.limit(first.position() + half);
                    bytes.write(o, first);
                    ByteBuffer rest = ByteBuffer.allocate(src.remaining() - half);
                    rest.put(src.duplicate().position(src.position() + half)).flip();
                    src.position(src.limit());
                    LATER.execute(() -> {
                        try {
                            Thread.sleep(1);
                            bytes.write(o + half, rest);
                        } catch (Exception closedMeanwhile) {
                            // the half is lost, as the check saw
                        }
                    });
                }
            }
            """;

    /** A factory with a power loss: the device keeps flushed bytes on a "disk" that survives. */
    static final String ACME_FACTORY = """
            package com.acme;

            import dev.handoff.device.BlockDevice;
            import dev.handoff.device.MemoryDevice;
            import dev.handoff.testkit.DeviceFactory;

            public class AcmeFactory implements DeviceFactory {
                public BlockDevice create(long size) {
                    return new AcmeDevice(size);
                }

                public PowerLoss powerLoss() {
                    return device -> device; // memory that never loses power: everything survives
                }
            }
            """;

    static Path acme(Path dir) throws IOException {
        return build(dir, "acme", Map.of("com.acme.AcmeDevice", ACME_DEVICE, "com.acme.EarlyAckDevice", EARLY_ACK_DEVICE,
                "com.acme.AcmeFactory", ACME_FACTORY));
    }

    static String utf8(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }
}
