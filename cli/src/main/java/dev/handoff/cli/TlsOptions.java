package dev.handoff.cli;

import dev.handoff.nbd.ClientAllowList;
import dev.handoff.nbd.TlsCredentials;
import dev.handoff.nbd.UnixSockets;
import java.io.IOException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Set;

/**
 * Turns the TLS and socket options of {@code serve} and {@code mirror} into what the NBD module
 * takes, checked before anything is opened: a directory that is not usable credentials, a bad
 * allow-list or a bad mode is a usage error with one line naming the option and the file.
 */
final class TlsOptions {
    private TlsOptions() {
    }

    /** Server credentials from QEMU's layout (ca-cert.pem, server-cert.pem, server-key.pem). */
    static TlsCredentials server(Path dir, String option) throws CliException {
        try {
            return TlsCredentials.server(dir);
        } catch (IOException e) {
            throw invalid(option, e.getMessage());
        }
    }

    /** Client credentials (ca-cert.pem, and client-cert.pem with client-key.pem if present). */
    static TlsCredentials client(Path dir, String option) throws CliException {
        try {
            return TlsCredentials.client(dir);
        } catch (IOException e) {
            throw invalid(option, e.getMessage());
        }
    }

    static ClientAllowList allowList(Path file, String option) throws CliException {
        try {
            return ClientAllowList.load(file);
        } catch (IOException e) {
            throw invalid(option, e.getMessage());
        }
    }

    /** An octal mode such as 0600 for the unix sockets a command creates. */
    static Set<PosixFilePermission> socketMode(String octal, String option) throws CliException {
        try {
            return UnixSockets.parseMode(octal);
        } catch (IllegalArgumentException e) {
            throw invalid(option, e.getMessage());
        }
    }

    private static CliException invalid(String option, String message) {
        return new CliException(ExitCodes.USAGE, "invalid value for option '" + option + "': " + message);
    }
}
