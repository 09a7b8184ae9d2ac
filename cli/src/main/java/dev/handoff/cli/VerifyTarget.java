package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.FileDevice;
import dev.handoff.nbd.NbdDevice;
import dev.handoff.nbd.NbdUri;
import dev.handoff.testkit.DeviceFactory;
import java.io.IOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * What {@code handoff verify} checks: a device factory, and what to undo when the checks end.
 * Three kinds: a class from the user's jar ({@link #ofClass}), a raw image ({@link #ofImage}), an
 * NBD export ({@link #ofNbd}). An image or an export is verified through windows over its first
 * {@link #REGION} bytes ({@link WindowDevice}), each zeroed when the kit asks for a fresh device, side by
 * side while several are open.
 */
abstract class VerifyTarget implements AutoCloseable {
    /**
     * Bytes of an image or an export the checks write: the kit's devices are at most 3 MiB + 517,
     * and those open at once (a mirror's source and target) at most 2 MiB + 1034.
     */
    static final long REGION = 4L << 20;

    /** The factory the checks use. */
    abstract DeviceFactory factory();

    /** The target's options, as a replay command repeats them. */
    abstract String arguments();

    /** One line on what the checks write, for the report's header. */
    abstract String scope();

    /** Undoes what the target set up (a scratch file, a saved region written back). */
    @Override
    public abstract void close() throws CliException;

    /* ---------------- --device CLASS --classpath PATH ---------------- */

    /**
     * The class {@code name} from {@code classpath} (jars and directories, separated by the path
     * separator): a {@link DeviceFactory} with a no-argument constructor (a {@code DeviceKit}
     * subclass is one), or a {@link BlockDevice} with a constructor taking the size.
     */
    static VerifyTarget ofClass(String name, String classpath) throws CliException {
        List<URL> urls = new ArrayList<>();
        for (String entry : classpath.split(java.io.File.pathSeparator)) {
            if (entry.isBlank()) {
                continue;
            }
            Path p = Path.of(entry);
            if (!Files.exists(p)) {
                throw new CliException(ExitCodes.USAGE, "--classpath: " + entry + " does not exist");
            }
            try {
                urls.add(p.toUri().toURL());
            } catch (MalformedURLException e) {
                throw new CliException(ExitCodes.USAGE, "--classpath: " + entry + " is not a path: " + e.getMessage());
            }
        }
        URLClassLoader loader = new URLClassLoader(urls.toArray(URL[]::new), VerifyTarget.class.getClassLoader());
        Class<?> type;
        try {
            type = Class.forName(name, true, loader);
        } catch (ClassNotFoundException e) {
            throw new CliException(ExitCodes.USAGE, "--device: no class " + name + " in --classpath " + classpath);
        } catch (LinkageError e) {
            throw new CliException(ExitCodes.USAGE, "--device: class " + name + " cannot be loaded: " + e);
        }
        DeviceFactory factory;
        if (DeviceFactory.class.isAssignableFrom(type)) {
            Constructor<?> c = constructor(type);
            factory = (DeviceFactory) instantiate(c, name);
        } else if (BlockDevice.class.isAssignableFrom(type)) {
            Constructor<?> c;
            try {
                c = type.getDeclaredConstructor(long.class);
                c.setAccessible(true);
            } catch (NoSuchMethodException e) {
                throw new CliException(ExitCodes.USAGE, "--device: " + name + " is a BlockDevice without a constructor"
                        + " taking the size (long); give a DeviceFactory instead");
            }
            factory = size -> {
                try {
                    return (BlockDevice) c.newInstance(size);
                } catch (InvocationTargetException e) {
                    throw e.getCause() instanceof Exception x ? x : e; // the constructor's own failure
                }
            };
        } else {
            throw new CliException(ExitCodes.USAGE, "--device: " + name + " is neither a dev.handoff.testkit.DeviceFactory"
                    + " nor a dev.handoff.device.BlockDevice");
        }
        DeviceFactory chosen = factory;
        return new VerifyTarget() {
            @Override
            DeviceFactory factory() {
                return chosen;
            }

            @Override
            String arguments() {
                return "--device " + name + " --classpath " + classpath;
            }

            @Override
            String scope() {
                return "devices made by " + name;
            }

            @Override
            public void close() throws CliException {
                try {
                    loader.close();
                } catch (IOException e) {
                    throw new CliException(ExitCodes.FAILED, "cannot close the class loader of " + classpath + ": " + e.getMessage());
                }
            }
        };
    }

    private static Constructor<?> constructor(Class<?> type) throws CliException {
        try {
            Constructor<?> c = type.getDeclaredConstructor();
            c.setAccessible(true);
            return c;
        } catch (NoSuchMethodException e) {
            throw new CliException(ExitCodes.USAGE, "--device: " + type.getName() + " needs a constructor without arguments");
        }
    }

    private static Object instantiate(Constructor<?> c, String name) throws CliException {
        try {
            return c.newInstance();
        } catch (InvocationTargetException e) {
            throw new CliException(ExitCodes.USAGE, "--device: the constructor of " + name + " threw " + e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new CliException(ExitCodes.USAGE, "--device: cannot make a " + name + ": " + e);
        }
    }

    /* ---------------- --image FILE ---------------- */

    /**
     * A raw image: the checks run on windows over a scratch copy of its first {@link #REGION}
     * bytes made beside it (the same file system), deleted at the end; with {@code destructive},
     * over the image itself, whose first {@link #REGION} bytes they overwrite.
     */
    static VerifyTarget ofImage(Path image, boolean destructive) throws CliException {
        if (!Files.exists(image)) {
            throw new CliException(ExitCodes.BAD_IMAGE, "image " + image + " does not exist");
        }
        boolean blockDevice = FileDevice.isBlockDevice(image);
        if (!blockDevice && !Files.isRegularFile(image)) {
            throw new CliException(ExitCodes.BAD_IMAGE, "image " + image + " is neither a file nor a block device");
        }
        if (blockDevice && !destructive) {
            throw new CliException(ExitCodes.USAGE, "image " + image + " is a block device: the checks write it; pass"
                    + " --destructive to let them overwrite its first 4 MiB");
        }
        Path under;
        if (destructive) {
            under = image;
        } else {
            under = scratchCopy(image);
        }
        FileDevice device;
        try {
            device = FileDevice.open(under);
        } catch (DeviceException e) {
            deleteQuietly(destructive ? null : under);
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot open " + under + ": " + e.getMessage());
        }
        if (device.size() < REGION) {
            closeQuietly(device);
            deleteQuietly(destructive ? null : under);
            throw new CliException(ExitCodes.BAD_IMAGE, "image " + image + " has " + Sizes.format(device.size())
                    + "; the checks need at least 4 MiB");
        }
        Path scratch = destructive ? null : under;
        return new WindowTarget(device, "--image " + image + (destructive ? " --destructive" : ""),
                destructive ? "the image itself: its first 4 MiB are overwritten (--destructive)"
                        : "a scratch copy of its first 4 MiB beside it, " + under.getFileName() + ", deleted at the end") {
            @Override
            public void close() throws CliException {
                closeQuietly(device);
                if (scratch != null) {
                    try {
                        Files.deleteIfExists(scratch);
                    } catch (IOException e) {
                        throw new CliException(ExitCodes.FAILED, "cannot delete the scratch copy " + scratch + ": " + e.getMessage());
                    }
                }
            }
        };
    }

    private static Path scratchCopy(Path image) throws CliException {
        Path dir = image.toAbsolutePath().getParent();
        Path scratch = dir.resolve("." + image.getFileName() + ".verify-" + ProcessHandle.current().pid());
        try (FileChannel in = FileChannel.open(image, StandardOpenOption.READ);
                FileChannel out = FileChannel.open(scratch, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            long n = Math.min(REGION, in.size());
            for (long done = 0; done < n; ) {
                done += in.transferTo(done, n - done, out);
            }
            out.truncate(n);
            if (n < REGION && in.size() >= REGION) {
                throw new IOException("short copy");
            }
        } catch (java.nio.file.FileAlreadyExistsException e) {
            throw new CliException(ExitCodes.BAD_IMAGE, "scratch file " + scratch + " already exists: remove it");
        } catch (java.nio.file.AccessDeniedException e) {
            deleteQuietly(scratch);
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot write a scratch copy beside " + image + " (permission"
                    + " denied in " + dir + ")");
        } catch (IOException e) {
            deleteQuietly(scratch);
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot copy " + image + " to " + scratch + ": " + e.getMessage());
        }
        return scratch;
    }

    /* ---------------- --nbd URI ---------------- */

    /**
     * An NBD export: the checks run on windows over its first {@link #REGION} bytes. Unless
     * {@code destructive}, those bytes are saved to a scratch file first and written back (and
     * flushed) when the checks end.
     */
    static VerifyTarget ofNbd(String spec, boolean destructive) throws CliException {
        NbdUri uri;
        try {
            uri = NbdUri.parse(spec);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "--nbd: " + e.getMessage());
        }
        if (uri.tls()) {
            throw new CliException(ExitCodes.USAGE, "--nbd: TLS exports (nbds://) are not supported by verify yet; serve"
                    + " a plain export on a unix socket or loopback");
        }
        NbdDevice device;
        try {
            device = NbdDevice.open(uri, NbdDevice.Options.defaults());
        } catch (DeviceException e) {
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot use export " + uri + ": " + e.getMessage());
        }
        if (device.size() < REGION) {
            closeQuietly(device);
            throw new CliException(ExitCodes.BAD_IMAGE, "export " + uri + " has " + Sizes.format(device.size())
                    + "; the checks need at least 4 MiB");
        }
        Path saved = null;
        if (!destructive) {
            try {
                saved = Files.createTempFile("handoff-verify-", ".export-head");
                ByteBuffer head = ByteBuffer.allocate((int) REGION);
                device.read(0, head);
                Files.write(saved, head.array());
            } catch (IOException e) {
                closeQuietly(device);
                deleteQuietly(saved);
                throw new CliException(ExitCodes.BAD_IMAGE, "cannot save the first 4 MiB of " + uri + ": " + e.getMessage());
            }
        }
        Path head = saved;
        return new WindowTarget(device, "--nbd " + spec + (destructive ? " --destructive" : ""),
                destructive ? "the export itself: its first 4 MiB are overwritten (--destructive)"
                        : "the export's first 4 MiB, saved to " + saved + " first and written back at the end") {
            @Override
            public void close() throws CliException {
                try {
                    if (head != null) {
                        try {
                            device.write(0, ByteBuffer.wrap(Files.readAllBytes(head)));
                            device.flush();
                        } catch (IOException e) {
                            throw new CliException(ExitCodes.FAILED, "cannot write the export's first 4 MiB back: "
                                    + e.getMessage() + "; they are saved in " + head);
                        }
                        deleteQuietly(head);
                    }
                } finally {
                    closeQuietly(device);
                }
            }
        };
    }

    /** A target verified through zeroed windows over one device. */
    private abstract static class WindowTarget extends VerifyTarget {
        private final WindowDevice.Placer placer;
        private final String arguments;
        private final String scope;

        WindowTarget(BlockDevice device, String arguments, String scope) {
            this.placer = new WindowDevice.Placer(device, REGION);
            this.arguments = arguments;
            this.scope = scope;
        }

        @Override
        DeviceFactory factory() {
            return placer::zeroed;
        }

        @Override
        String arguments() {
            return arguments;
        }

        @Override
        String scope() {
            return scope;
        }
    }

    static void closeQuietly(AutoCloseable c) {
        try {
            c.close();
        } catch (Exception ignored) {
            // reporting the failure that brought us here matters more
        }
    }

    static void deleteQuietly(Path p) {
        if (p == null) {
            return;
        }
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // a leftover temporary file, named in no message the user needs
        }
    }
}
