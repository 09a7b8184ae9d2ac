package dev.handoff.cli;

import dev.handoff.device.BlockDevice;
import java.nio.file.Path;

/**
 * Where {@code handoff mirror} writes, resolved from its TARGET argument by {@link #resolve}: the
 * one place a new kind of target (an {@code nbd://} export, say) is added. A target is checked
 * first ({@link #check}, which changes nothing), then opened ({@link #open}), and either closed
 * after the job or {@link #abandon}ed if the command fails before the job starts.
 */
abstract class MirrorTarget implements AutoCloseable {

    /** The target named by {@code spec}: an NBD URI ({@code nbd://}, {@code nbd+unix://}) or a raw image file path. */
    static MirrorTarget resolve(String spec) throws CliException {
        return resolve(spec, null, null);
    }

    /**
     * As above; a TLS URI ({@code nbds://}, {@code nbds+unix://}) takes the client credentials in
     * {@code tlsCreds}, given by the command's option {@code tlsOption}. Credentials and a TLS URI
     * come together or not at all.
     */
    static MirrorTarget resolve(String spec, Path tlsCreds, String tlsOption) throws CliException {
        if (spec.isBlank()) {
            throw new CliException(ExitCodes.USAGE, "the target must not be empty");
        }
        if (dev.handoff.nbd.NbdUri.isNbdUri(spec)) {
            return NbdTarget.parse(spec, tlsCreds, tlsOption);
        }
        if (tlsCreds != null) {
            throw new CliException(ExitCodes.USAGE, tlsOption + " is for a TLS target (nbds:// or nbds+unix://), and "
                    + spec + " is a file");
        }
        return new FileTarget(Path.of(spec));
    }

    /** How messages name the target. */
    abstract String display();

    /**
     * Checks that the target can receive a copy of {@code source}: right size, writable, not the
     * source itself, and raw: an existing target whose first bytes are another format's header is
     * refused unless {@code format} forces raw (overwriting it would destroy that image). Changes
     * nothing.
     */
    abstract void check(SourceImage source, ImageFormat format) throws CliException;

    /** {@link #check(SourceImage, ImageFormat)} with probing. */
    final void check(SourceImage source) throws CliException {
        check(source, null);
    }

    /**
     * Opens (or creates) the target for writing and takes whatever locks keep other writers out;
     * on failure, undoes what it did and throws.
     */
    abstract BlockDevice open(long size) throws CliException;

    /**
     * Opens an existing target as it is, for QMP's {@code blockdev-add}: its size is whatever it
     * has, and it is locked like {@link #open}. Nothing is created.
     */
    abstract BlockDevice openExisting() throws CliException;

    /** Whether the opened target is known to read as zeroes (a file just created, say). */
    abstract boolean readsAsZeroes();

    /** Whether {@link #open} created the target. */
    abstract boolean created();

    /** Undoes {@link #open} after a failure that happened before the job wrote anything. */
    abstract void abandon();

    /** Releases locks and closes; the content stays as the job left it. */
    @Override
    public abstract void close();
}
