package dev.handoff.mirror;

import java.util.Objects;

/**
 * The immutable, validated options of a mirror job. Build with {@link #builder()}; every setter
 * rejects a bad value at once with an {@link IllegalArgumentException} naming the option, and
 * {@link Builder#build()} checks the options against each other.
 *
 * <table>
 *   <caption>Options</caption>
 *   <tr><th>option</th><th>default</th><th>valid</th></tr>
 *   <tr><td>granularity</td><td>64 KiB</td><td>power of two, 512 B … 64 MiB</td></tr>
 *   <tr><td>bufSize</td><td>16 MiB</td><td>≥ granularity; bytes in flight at most</td></tr>
 *   <tr><td>maxCopyBytes</td><td>max(granularity, min(1 MiB, bufSize))</td><td>granularity … min(bufSize, 1 GiB)</td></tr>
 *   <tr><td>speed</td><td>0 (unlimited)</td><td>≥ 0 bytes/s</td></tr>
 *   <tr><td>copiesWhileGuestWrites</td><td>1</td><td>≥ 1; copies in flight while a guest writes (≥ the runtime's parallelism: no limit of its own)</td></tr>
 *   <tr><td>sync</td><td>FULL</td><td></td></tr>
 *   <tr><td>copyMode</td><td>BACKGROUND</td><td></td></tr>
 *   <tr><td>onSourceError, onTargetError</td><td>REPORT</td><td></td></tr>
 *   <tr><td>targetIsZero</td><td>false</td><td>true if the target reads as zeroes at start</td></tr>
 *   <tr><td>autoFinalize</td><td>true</td><td>false: a drained job waits in PENDING for {@code finalizeJob()}</td></tr>
 *   <tr><td>bitmap</td><td>none</td><td>a persistent write-intent bitmap (DESIGN §2.10): the job resumes from its bits</td></tr>
 *   <tr><td>bitmapClearInterval</td><td>1 s</td><td>&gt; 0; how often the bitmap's clear pass runs</td></tr>
 * </table>
 */
public final class MirrorOptions {
    public static final int MIN_GRANULARITY = 512;
    public static final int MAX_GRANULARITY = 64 << 20;
    public static final int DEFAULT_GRANULARITY = 64 << 10;
    public static final long DEFAULT_BUF_SIZE = 16L << 20;
    public static final int DEFAULT_MAX_COPY_BYTES = 1 << 20;
    public static final int MAX_COPY_BYTES_LIMIT = 1 << 30;
    public static final long DEFAULT_BITMAP_CLEAR_INTERVAL_NANOS = 1_000_000_000L;
    public static final int DEFAULT_COPIES_WHILE_GUEST_WRITES = 1;

    private final int granularity;
    private final long bufSize;
    private final int maxCopyBytes;
    private final long speed;
    private final int copiesWhileGuestWrites;
    private final SyncMode sync;
    private final CopyMode copyMode;
    private final ErrorPolicy onSourceError;
    private final ErrorPolicy onTargetError;
    private final boolean targetIsZero;
    private final boolean autoFinalize;
    private final BitmapStore bitmap;
    private final long bitmapClearIntervalNanos;

    private MirrorOptions(Builder b) {
        this.granularity = b.granularity;
        this.bufSize = b.bufSize;
        this.maxCopyBytes = b.maxCopyBytes != 0 ? b.maxCopyBytes
                : (int) Math.max(b.granularity, Math.min(DEFAULT_MAX_COPY_BYTES, b.bufSize));
        this.speed = b.speed;
        this.copiesWhileGuestWrites = b.copiesWhileGuestWrites;
        this.sync = b.sync;
        this.copyMode = b.copyMode;
        this.onSourceError = b.onSourceError;
        this.onTargetError = b.onTargetError;
        this.targetIsZero = b.targetIsZero;
        this.autoFinalize = b.autoFinalize;
        this.bitmap = b.bitmap;
        this.bitmapClearIntervalNanos = b.bitmapClearIntervalNanos;
    }

    /** The defaults. */
    public static MirrorOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding these options. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.granularity = granularity;
        b.bufSize = bufSize;
        b.maxCopyBytes = maxCopyBytes;
        b.speed = speed;
        b.copiesWhileGuestWrites = copiesWhileGuestWrites;
        b.sync = sync;
        b.copyMode = copyMode;
        b.onSourceError = onSourceError;
        b.onTargetError = onTargetError;
        b.targetIsZero = targetIsZero;
        b.autoFinalize = autoFinalize;
        b.bitmap = bitmap;
        b.bitmapClearIntervalNanos = bitmapClearIntervalNanos;
        return b;
    }

    /** Bytes per chunk of the dirty bitmap. */
    public int granularity() {
        return granularity;
    }

    /** The most bytes of copies in flight at once. */
    public long bufSize() {
        return bufSize;
    }

    /** The most bytes one copy operation moves (adjacent dirty chunks are merged up to this). */
    public int maxCopyBytes() {
        return maxCopyBytes;
    }

    /** Initial copy speed limit in bytes per second; 0 = unlimited. */
    public long speed() {
        return speed;
    }

    /**
     * The most copies in flight while a guest writes through the job (a write, write-zeroes or
     * discard within the last few milliseconds); otherwise the runtime's
     * {@link JobRuntime#parallelism() parallelism} bounds them. One copy at a time leaves a
     * write-blocking guest more of its IOPS during the bulk copy (docs/BENCHMARKS.md, "A guest-aware
     * copy depth"); a value at least the parallelism turns this off. Copies already in flight when the guest starts
     * writing run to their end.
     */
    public int copiesWhileGuestWrites() {
        return copiesWhileGuestWrites;
    }

    public SyncMode sync() {
        return sync;
    }

    /** Initial copy mode. */
    public CopyMode copyMode() {
        return copyMode;
    }

    public ErrorPolicy onSourceError() {
        return onSourceError;
    }

    public ErrorPolicy onTargetError() {
        return onTargetError;
    }

    /** Whether the target is known to read as zeroes at start, so zero chunks need not be written. */
    public boolean targetIsZero() {
        return targetIsZero;
    }

    /**
     * Whether a drained job concludes at once (true, the default) or waits in
     * {@link JobState#PENDING} for {@link MirrorJob#finalizeJob()}: QEMU's {@code auto-finalize}.
     */
    public boolean autoFinalize() {
        return autoFinalize;
    }

    /**
     * The persistent write-intent bitmap the job keeps (DESIGN §2.10), or null. With one, the job
     * starts from the bits the store holds (whatever {@link #sync()} says: a new store for a full
     * copy has every bit set), and a guest write to a region returns only once its bit is durable.
     * The store belongs to the caller, who closes it after the job concludes.
     */
    public BitmapStore bitmap() {
        return bitmap;
    }

    /** How often the bitmap's clear pass runs, in nanoseconds. */
    public long bitmapClearIntervalNanos() {
        return bitmapClearIntervalNanos;
    }

    /**
     * The most memory the job's copy buffers take when at most {@code copiesInFlight} copies run at
     * once (the runtime's parallelism): one page-aligned buffer of {@link #maxCopyBytes()} per copy
     * in flight, and never more copies in flight than buf-size holds chunks. Buffers are direct
     * ({@code ByteBuffer.allocateDirect}), so this is what the job takes of the JVM's direct memory.
     */
    public long copyBufferBytes(int copiesInFlight) {
        if (copiesInFlight < 1) {
            throw new IllegalArgumentException("copies in flight must be >= 1, got " + copiesInFlight);
        }
        long copies = Math.min(copiesInFlight, Math.max(1, bufSize / granularity));
        return copies * Copier.bufferBytes(maxCopyBytes);
    }

    @Override
    public String toString() {
        return "MirrorOptions[granularity=" + granularity + ", bufSize=" + bufSize + ", maxCopyBytes=" + maxCopyBytes
                + ", speed=" + speed + ", copiesWhileGuestWrites=" + copiesWhileGuestWrites + ", sync=" + sync + ", copyMode=" + copyMode + ", onSourceError="
                + onSourceError + ", onTargetError=" + onTargetError + ", targetIsZero=" + targetIsZero
                + ", autoFinalize=" + autoFinalize + (bitmap != null ? ", bitmap=" + bitmap : "") + "]";
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof MirrorOptions)) {
            return false;
        }
        MirrorOptions m = (MirrorOptions) o;
        return granularity == m.granularity && bufSize == m.bufSize && maxCopyBytes == m.maxCopyBytes
                && speed == m.speed && copiesWhileGuestWrites == m.copiesWhileGuestWrites && sync == m.sync && copyMode == m.copyMode && onSourceError == m.onSourceError
                && onTargetError == m.onTargetError && targetIsZero == m.targetIsZero && autoFinalize == m.autoFinalize
                && bitmap == m.bitmap && bitmapClearIntervalNanos == m.bitmapClearIntervalNanos;
    }

    @Override
    public int hashCode() {
        return Objects.hash(granularity, bufSize, maxCopyBytes, speed, copiesWhileGuestWrites, sync, copyMode, onSourceError, onTargetError,
                targetIsZero, autoFinalize, System.identityHashCode(bitmap), bitmapClearIntervalNanos);
    }

    /** Mutable builder; not thread-safe. */
    public static final class Builder {
        private int granularity = DEFAULT_GRANULARITY;
        private long bufSize = DEFAULT_BUF_SIZE;
        private int maxCopyBytes; // 0 = derive from granularity and bufSize
        private long speed;
        private int copiesWhileGuestWrites = DEFAULT_COPIES_WHILE_GUEST_WRITES;
        private SyncMode sync = SyncMode.FULL;
        private CopyMode copyMode = CopyMode.BACKGROUND;
        private ErrorPolicy onSourceError = ErrorPolicy.REPORT;
        private ErrorPolicy onTargetError = ErrorPolicy.REPORT;
        private boolean targetIsZero;
        private boolean autoFinalize = true;
        private BitmapStore bitmap;
        private long bitmapClearIntervalNanos = DEFAULT_BITMAP_CLEAR_INTERVAL_NANOS;

        private Builder() {
        }

        public Builder granularity(long bytes) {
            if (bytes < MIN_GRANULARITY || bytes > MAX_GRANULARITY || Long.bitCount(bytes) != 1) {
                throw new IllegalArgumentException("granularity must be a power of two between " + MIN_GRANULARITY
                        + " and " + MAX_GRANULARITY + " bytes, got " + bytes);
            }
            this.granularity = (int) bytes;
            return this;
        }

        public Builder bufSize(long bytes) {
            if (bytes <= 0) {
                throw new IllegalArgumentException("buf-size must be positive, got " + bytes);
            }
            this.bufSize = bytes;
            return this;
        }

        public Builder maxCopyBytes(long bytes) {
            if (bytes <= 0 || bytes > MAX_COPY_BYTES_LIMIT) {
                throw new IllegalArgumentException("max copy bytes must be between 1 and " + MAX_COPY_BYTES_LIMIT
                        + ", got " + bytes);
            }
            this.maxCopyBytes = (int) bytes;
            return this;
        }

        public Builder speed(long bytesPerSecond) {
            if (bytesPerSecond < 0) {
                throw new IllegalArgumentException("speed must be >= 0 bytes/s (0 = unlimited), got " + bytesPerSecond);
            }
            this.speed = bytesPerSecond;
            return this;
        }

        /** See {@link MirrorOptions#copiesWhileGuestWrites()}; {@link Integer#MAX_VALUE}: no limit of its own. */
        public Builder copiesWhileGuestWrites(int copies) {
            if (copies < 1) {
                throw new IllegalArgumentException("copies while the guest writes must be >= 1, got " + copies);
            }
            this.copiesWhileGuestWrites = copies;
            return this;
        }

        public Builder sync(SyncMode mode) {
            this.sync = Objects.requireNonNull(mode, "sync");
            return this;
        }

        public Builder copyMode(CopyMode mode) {
            this.copyMode = Objects.requireNonNull(mode, "copyMode");
            return this;
        }

        public Builder onSourceError(ErrorPolicy policy) {
            this.onSourceError = Objects.requireNonNull(policy, "onSourceError");
            return this;
        }

        public Builder onTargetError(ErrorPolicy policy) {
            this.onTargetError = Objects.requireNonNull(policy, "onTargetError");
            return this;
        }

        public Builder targetIsZero(boolean zero) {
            this.targetIsZero = zero;
            return this;
        }

        public Builder autoFinalize(boolean auto) {
            this.autoFinalize = auto;
            return this;
        }

        /** A persistent write-intent bitmap (null: none). See {@link MirrorOptions#bitmap()}. */
        public Builder bitmap(BitmapStore store) {
            this.bitmap = store;
            return this;
        }

        public Builder bitmapClearInterval(java.time.Duration interval) {
            if (interval.isNegative() || interval.isZero()) {
                throw new IllegalArgumentException("the bitmap's clear interval must be positive, got " + interval);
            }
            this.bitmapClearIntervalNanos = interval.toNanos();
            return this;
        }

        /** Checks the options against each other and freezes them. */
        public MirrorOptions build() {
            if (bufSize < granularity) {
                throw new IllegalArgumentException("buf-size (" + bufSize + ") must be at least the granularity ("
                        + granularity + ")");
            }
            if (maxCopyBytes != 0) {
                if (maxCopyBytes < granularity) {
                    throw new IllegalArgumentException("max copy bytes (" + maxCopyBytes
                            + ") must be at least the granularity (" + granularity + ")");
                }
                if (maxCopyBytes > bufSize) {
                    throw new IllegalArgumentException("max copy bytes (" + maxCopyBytes
                            + ") must not exceed buf-size (" + bufSize + ")");
                }
            }
            if (bitmap != null && (bitmap.header().regionSize() < granularity
                    || bitmap.header().regionSize() % granularity != 0)) {
                throw new IllegalArgumentException("the bitmap's region (" + bitmap.header().regionSize()
                        + " bytes) must be a multiple of the granularity (" + granularity + ")");
            }
            return new MirrorOptions(this);
        }
    }
}
