package dev.handoff.nbd;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.EnumSet;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Listening unix sockets created with a chosen mode and no moment of wider access (DESIGN §7.1):
 * the JDK binds a unix socket with the process's umask and cannot change the umask, so a socket bound in place
 * and then {@code chmod}ed would be open, for that moment, to whoever the umask lets in. Instead
 * the socket is bound in a fresh directory only the owner can enter, given its mode there, and
 * then hard-linked to its name (a link never replaces an existing file, so a socket someone else
 * bound meanwhile is never taken over). Writing to a socket is what connecting takes, so mode
 * {@code 0600} ({@link #OWNER_ONLY}, the default everywhere in Handoff) admits the owner only.
 */
public final class UnixSockets {
    /** {@code rw-------}. */
    public static final Set<PosixFilePermission> OWNER_ONLY =
            Set.copyOf(EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE));
    /** The longest unix socket path Linux takes, in bytes. */
    static final int MAX_PATH_BYTES = 107;

    private UnixSockets() {
    }

    /**
     * Binds a listening socket at {@code path} (which must not exist) with permissions
     * {@code mode}. The caller deletes the file after closing the channel, as for any unix socket.
     */
    public static ServerSocketChannel bind(Path path, Set<PosixFilePermission> mode) throws IOException {
        Path target = path.toAbsolutePath();
        Path parent = target.getParent();
        Path staging = stagingDirectory(parent);
        Path temporary = staging.resolve("s");
        ServerSocketChannel channel = null;
        boolean bound = false;
        try {
            if (temporary.toString().getBytes(StandardCharsets.UTF_8).length > MAX_PATH_BYTES) {
                throw new IOException("unix socket path " + path + " is too long (at most "
                        + (MAX_PATH_BYTES - (temporary.toString().length() - target.toString().length()))
                        + " bytes here)");
            }
            channel = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            channel.bind(UnixDomainSocketAddress.of(temporary));
            Files.setPosixFilePermissions(temporary, mode);
            try {
                Files.createLink(target, temporary);
            } catch (FileAlreadyExistsException e) {
                throw new java.net.BindException(path + " exists");
            }
            bound = true;
            return channel;
        } finally {
            Files.deleteIfExists(temporary);
            Files.deleteIfExists(staging);
            if (!bound && channel != null) {
                channel.close();
            }
        }
    }

    /** Parses an octal mode such as {@code 0600} or {@code 660} into permissions. */
    public static Set<PosixFilePermission> parseMode(String octal) {
        int mode;
        try {
            mode = Integer.parseInt(octal, 8);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("not an octal mode: '" + octal + "' (e.g. 0600 or 0660)");
        }
        if (mode < 0 || mode > 0777) {
            throw new IllegalArgumentException("mode " + octal + " is out of range (0000 to 0777)");
        }
        if ((mode & 0200) == 0) {
            throw new IllegalArgumentException("mode " + octal + " would lock out the socket's own owner (needs u+w)");
        }
        StringBuilder rwx = new StringBuilder();
        String letters = "rwxrwxrwx";
        for (int bit = 8; bit >= 0; bit--) {
            rwx.append((mode & (1 << bit)) != 0 ? letters.charAt(8 - bit) : '-');
        }
        return PosixFilePermissions.fromString(rwx.toString());
    }

    /** A directory beside the socket (same file system: a link cannot cross one) only its owner may enter. */
    private static Path stagingDirectory(Path parent) throws IOException {
        var ownerOnly = PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------"));
        for (int attempt = 0; ; attempt++) {
            Path dir = parent.resolve(".hs" + Integer.toHexString(ThreadLocalRandom.current().nextInt(1 << 24)));
            try {
                return Files.createDirectory(dir, ownerOnly);
            } catch (FileAlreadyExistsException e) {
                if (attempt > 100) {
                    throw e;
                }
            }
        }
    }
}
