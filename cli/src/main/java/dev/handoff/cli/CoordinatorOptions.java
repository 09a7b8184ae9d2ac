package dev.handoff.cli;

import dev.handoff.coordination.CoordinationException;
import dev.handoff.coordination.ZkAddress;
import dev.handoff.coordination.ZkOwnership;
import dev.handoff.device.DeviceException;
import dev.handoff.ownership.ImageFencedException;
import dev.handoff.ownership.ImageInactiveException;
import dev.handoff.ownership.OwnedImage;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.Option;

/**
 * {@code --coordinator zk://HOST:PORT[,HOST:PORT...]/PATH} and {@code --session-timeout}: keep an
 * image's ownership (record and lock) in a ZooKeeper ensemble instead of the sidecar file and
 * QEMU's byte locks, for images on storage that several hosts share (see docs/OWNERSHIP.md).
 * Shared by {@code owner}, {@code serve} and {@code mirror}; maps the coordination failures to the
 * documented exit codes: a bad address is a usage error (2), an ensemble that does not answer a
 * failure (1), a PATH that belongs to another image a bad image (3), a lock held elsewhere busy
 * (4), a session lost mid-command fenced (6).
 */
final class CoordinatorOptions {
    private static final Pattern DURATION = Pattern.compile("(\\d+)(ms|s|m)?");

    @Option(names = "--coordinator", paramLabel = "zk://HOST:PORT[,HOST:PORT...]/PATH",
            description = "Keep the image's ownership record and lock in this ZooKeeper ensemble under PATH (one PATH"
                    + " per image, the same on every host), instead of the sidecar IMAGE.owner and QEMU's byte locks:"
                    + " for an image on storage that several hosts share.")
    String coordinator;

    @Option(names = "--session-timeout", paramLabel = "DURATION", defaultValue = "10s",
            description = "With --coordinator: the ZooKeeper session timeout (e.g. 10s, 500ms). A holder that loses"
                    + " contact acknowledges no write 0.6 x this after its last contact; another holder may take over"
                    + " only after it (default: ${DEFAULT-VALUE}).")
    String sessionTimeout;

    boolean present() {
        return coordinator != null;
    }

    /** Checks both options; changes nothing. */
    void validate() throws CliException {
        if (present()) {
            address();
            timeout();
        }
    }

    ZkAddress address() throws CliException {
        try {
            return ZkAddress.parse(coordinator);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "invalid value for option '--coordinator': " + e.getMessage());
        }
    }

    Duration timeout() throws CliException {
        Matcher m = DURATION.matcher(sessionTimeout.trim().toLowerCase(Locale.ROOT));
        if (!m.matches()) {
            throw new CliException(ExitCodes.USAGE, "invalid value for option '--session-timeout': '" + sessionTimeout
                    + "' is not a duration (e.g. 10s, 1500ms, 1m)");
        }
        long n = Long.parseLong(m.group(1));
        String unit = m.group(2) == null ? "s" : m.group(2);
        Duration d = switch (unit) {
            case "ms" -> Duration.ofMillis(n);
            case "m" -> Duration.ofMinutes(n);
            default -> Duration.ofSeconds(n);
        };
        if (d.toMillis() < 100 || d.toMinutes() > 10) {
            throw new CliException(ExitCodes.USAGE, "invalid value for option '--session-timeout': " + sessionTimeout
                    + " is outside 100ms..10m");
        }
        return d;
    }

    /** Opens a session to the ensemble. */
    ZkOwnership connect() throws CliException {
        ZkAddress address = address();
        try {
            return ZkOwnership.connect(address, timeout(), ZkOwnership.DEFAULT_CONNECT_TIMEOUT);
        } catch (CoordinationException e) {
            throw new CliException(ExitCodes.FAILED, e.getMessage());
        }
    }

    /**
     * Opens {@code image} with its ownership under the coordinator's PATH, in state
     * {@code initial}. {@code onLost} hears (once, on another thread) that the session holding the
     * lock was lost while ACTIVE: the handle is fenced then.
     */
    OwnedImage open(Path image, String owner, OwnedImage.State initial, Consumer<String> onLost) throws CliException {
        ZkOwnership zk = connect();
        zk.onSessionLost(onLost);
        try {
            return zk.openFile(image, owner, initial);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "invalid value for option '--owner': " + e.getMessage());
        } catch (DeviceException e) {
            throw failure(image, e);
        }
    }

    /** The exit code and one line for a failed open or activation. */
    static CliException failure(Path image, DeviceException e) {
        if (e instanceof CoordinationException c) {
            return switch (c.reason()) {
                case WRONG_IMAGE -> new CliException(ExitCodes.BAD_IMAGE, c.getMessage());
                case SESSION_LOST -> new CliException(ExitCodes.FENCED, c.getMessage());
                default -> new CliException(ExitCodes.FAILED, c.getMessage());
            };
        }
        if (e instanceof ImageFencedException) {
            return new CliException(ExitCodes.FENCED, "cannot activate " + image + ": " + e.getMessage());
        }
        if (e instanceof ImageInactiveException) {
            return new CliException(ExitCodes.BUSY, "image is in use: " + e.getMessage());
        }
        if (e.kind() == DeviceException.Kind.FENCED) {
            return new CliException(ExitCodes.FENCED, e.getMessage());
        }
        if (e.getMessage() != null && e.getMessage().startsWith("ZooKeeper")) {
            return new CliException(ExitCodes.FAILED, e.getMessage());
        }
        return new CliException(ExitCodes.BAD_IMAGE, "cannot open " + image + ": " + e.getMessage());
    }

    /** "0x1000a3b2c0001". */
    static String session(long id) {
        return "0x" + Long.toHexString(id);
    }
}
