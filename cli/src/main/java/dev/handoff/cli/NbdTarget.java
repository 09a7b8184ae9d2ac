package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.nbd.NbdDevice;
import dev.handoff.nbd.NbdUri;
import dev.handoff.nbd.TlsCredentials;
import java.nio.file.Path;

/**
 * A remote NBD export as the target ({@code nbd+unix:///NAME?socket=PATH} or
 * {@code nbd://HOST:PORT/NAME}, over TLS {@code nbds://HOST:PORT/NAME} or
 * {@code nbds+unix:///NAME?socket=PATH}): qemu-nbd, qemu-storage-daemon, or another
 * {@code handoff serve}. Over TLS the server is checked against the credentials' CA and the host
 * name, and the connection never falls back to plain text.
 *
 * <p>The connection is made once, by {@link #check} (to learn the export's size and whether it
 * takes writes; nothing is written), and kept for {@link #open}: a server such as qemu-nbd without
 * {@code --persistent} serves only one connection. The export's server holds its own locks.
 */
final class NbdTarget extends MirrorTarget {
    private final NbdUri uri;
    private final TlsCredentials tls;
    private NbdDevice device;

    NbdTarget(NbdUri uri, TlsCredentials tls) {
        this.uri = uri;
        this.tls = tls;
    }

    /**
     * The target for an NBD URI, or a usage error saying what is wrong with it. A TLS URI needs the
     * credentials directory {@code tlsCreds} (from option {@code tlsOption}); a plain one must not
     * have one.
     */
    static NbdTarget parse(String spec, Path tlsCreds, String tlsOption) throws CliException {
        NbdUri uri;
        try {
            uri = NbdUri.parse(spec);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, "invalid NBD target: " + e.getMessage());
        }
        if (uri.tls() && tlsCreds == null) {
            throw new CliException(ExitCodes.USAGE, "the TLS target " + uri + " needs " + (tlsOption == null
                    ? "client credentials" : tlsOption + " DIR") + " (ca-cert.pem, and client-cert.pem with"
                    + " client-key.pem for a server that asks for a client certificate)");
        }
        if (!uri.tls() && tlsCreds != null) {
            throw new CliException(ExitCodes.USAGE, tlsOption + " is for a TLS target: write nbds:// or nbds+unix://"
                    + " instead of " + spec.substring(0, spec.indexOf(':')) + "://");
        }
        return new NbdTarget(uri, uri.tls() ? TlsOptions.client(tlsCreds, tlsOption) : null);
    }

    @Override
    String display() {
        return uri.toString();
    }

    @Override
    void check(SourceImage source, ImageFormat format) throws CliException {
        connect();
        if (device.size() != source.size()) {
            long size = device.size();
            close();
            throw new CliException(ExitCodes.BAD_IMAGE, "target " + uri + " is " + size + " bytes but the source is "
                    + source.size() + " bytes: the export must have the source's size");
        }
        if (device.isReadOnly()) {
            close();
            throw new CliException(ExitCodes.BAD_IMAGE, "target " + uri + " is a read-only export");
        }
        if (format != ImageFormat.RAW) {
            java.nio.ByteBuffer head = java.nio.ByteBuffer.allocate((int) Math.min(ImageFormat.PROBE_BYTES, device.size()));
            String found;
            try {
                device.read(0, head);
                found = ImageFormat.detect(head.flip());
            } catch (DeviceException e) {
                close();
                throw new CliException(ExitCodes.BAD_IMAGE, "cannot read target " + uri + ": " + e.getMessage());
            }
            if (found != null) {
                close();
                throw new CliException(ExitCodes.BAD_IMAGE, "target " + uri + " holds a " + found + " image, not raw:"
                        + " the mirror would overwrite its " + found + " metadata (give --format raw if its bytes"
                        + " really are the disk)");
            }
        }
    }

    @Override
    BlockDevice open(long size) throws CliException {
        connect();
        if (device.size() != size) {
            close();
            throw new CliException(ExitCodes.BAD_IMAGE, "target " + uri + " changed size");
        }
        return device;
    }

    @Override
    BlockDevice openExisting() throws CliException {
        connect();
        return device;
    }

    private void connect() throws CliException {
        if (device != null) {
            return;
        }
        try {
            device = NbdDevice.open(uri, tls == null ? NbdDevice.Options.defaults()
                    : NbdDevice.Options.defaults().withTls(tls));
        } catch (DeviceException e) {
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot use target " + uri + ": " + e.getMessage());
        }
    }

    @Override
    boolean readsAsZeroes() {
        return false;
    }

    @Override
    boolean created() {
        return false;
    }

    @Override
    void abandon() {
        close();
    }

    /** Sends NBD_CMD_DISC once in-flight requests are answered; the job flushed the target before it concluded. */
    @Override
    public void close() {
        if (device != null) {
            device.close();
            device = null;
        }
    }
}
