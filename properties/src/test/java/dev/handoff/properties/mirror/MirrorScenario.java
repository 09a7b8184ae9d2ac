package dev.handoff.properties.mirror;

import dev.handoff.device.DeviceException;
import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.ErrorPolicy;
import dev.handoff.mirror.MirrorOptions;
import dev.handoff.mirror.SyncMode;
import dev.handoff.properties.sim.ByteCodec;
import dev.handoff.properties.sim.SimDevice;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One run of the mirror simulator: a {@link Config} and the list of {@link Action}s the
 * simulator applies in order. Everything that happens follows from these two (and the seed in
 * the config, which drives initial contents, latencies and fault draws), so a scenario is its
 * own replay.
 *
 * <p>Scenarios come from a seed ({@link #generate}) or from bytes ({@link #decode}, the fuzzer's
 * input); {@link #encode} is the inverse of {@link #decode} for every scenario {@link #generate}
 * makes, so generated runs seed the committed fuzz corpus. Offsets and lengths are taken modulo
 * the device when applied, so every decoded action is valid.
 */
public record MirrorScenario(Config config, List<Action> actions) {

    /**
     * The job's options and the initial devices. With {@code autoFinalize} off a drained job waits
     * in PENDING for a {@link Cmd#FINALIZE} (QEMU's {@code auto-finalize=false}).
     */
    public record Config(long seed, int granularityShift, int chunks, int tail, int bufChunks, int maxCopyChunks,
            long speed, SyncMode sync, CopyMode copyMode, ErrorPolicy onSourceError, ErrorPolicy onTargetError,
            boolean targetIsZero, int maxLatencyMicros, boolean autoFinalize) {

        /** With auto-finalize on, the default. */
        public Config(long seed, int granularityShift, int chunks, int tail, int bufChunks, int maxCopyChunks,
                long speed, SyncMode sync, CopyMode copyMode, ErrorPolicy onSourceError, ErrorPolicy onTargetError,
                boolean targetIsZero, int maxLatencyMicros) {
            this(seed, granularityShift, chunks, tail, bufChunks, maxCopyChunks, speed, sync, copyMode, onSourceError,
                    onTargetError, targetIsZero, maxLatencyMicros, true);
        }

        public int granularity() {
            return 512 << granularityShift;
        }

        public int size() {
            return chunks * granularity() - tail;
        }

        MirrorOptions options() {
            int g = granularity();
            return MirrorOptions.builder().granularity(g).bufSize((long) bufChunks * g)
                    .maxCopyBytes((long) Math.min(maxCopyChunks, bufChunks) * g).speed(speed).sync(sync)
                    .copyMode(copyMode).onSourceError(onSourceError).onTargetError(onTargetError)
                    .targetIsZero(targetIsZero).autoFinalize(autoFinalize)
                    .copiesWhileGuestWrites(Integer.MAX_VALUE) // no fewer copies beside guests: explore the most (CopierTest checks the policy)
                    .build();
        }
    }

    /** How a guest write fills its range. */
    public enum Fill { PATTERN, ZERO_DATA, WRITE_ZEROES, DISCARD }

    /** Which device a fault is armed on. */
    public enum Side { SOURCE, TARGET }

    /** One step of a scenario. */
    public sealed interface Action {
    }

    /**
     * A guest write through the mirror filter; PATTERN content names the write and the byte.
     * {@code nest} (0 = none) runs {@code nest & 7} job tasks inside the write's first device call,
     * before its data lands ({@code nest & 8} = 0) or after, picked from {@code nest >> 4} on: this
     * is how a copier step gets between a guest's source write and its dirty mark.
     */
    public record Write(long offset, int length, Fill fill, int nest) implements Action {
        public Write(long offset, int length, Fill fill) {
            this(offset, length, fill, 0);
        }
    }

    /**
     * A guest write run inside a task's first device call, at {@code offset} modulo that call's
     * range (so it hits the chunk being copied), before or {@code after} the call takes effect.
     */
    public record Nested(int offset, int length, Fill fill, boolean after) {
    }

    /** A guest read, checked against the model. */
    public record Read(long offset, int length) implements Action {
    }

    /** A guest flush. */
    public record Flush() implements Action {
    }

    /**
     * Runs one queued task of the job: the {@code pick}-th of those runnable now; {@code nested}
     * (or null) is a guest write made in the middle of it, e.g. between a copy's source read and
     * the end of that step.
     */
    public record Step(int pick, Nested nested) implements Action {
        public Step(int pick) {
            this(pick, null);
        }
    }

    /** Moves virtual time forward. */
    public record Advance(long micros) implements Action {
    }

    /** A management command. */
    public record Command(Cmd cmd) implements Action {
    }

    /** The commands. FINALIZE is last: the byte encoding keeps the others' meaning (see {@link #decode}). */
    public enum Cmd { START, PAUSE, RESUME, WRITE_BLOCKING, COMPLETE, CANCEL, FORCE_CANCEL, FINALIZE }

    /** Command bytes from this value up decode as FINALIZE; below, as the other commands, modulo their count. */
    static final int FINALIZE_BYTE = 0xF8;

    /** Sets the speed limit (bytes/s, 0 = none). */
    public record SetSpeed(long bytesPerSecond) implements Action {
    }

    /** Arms ({@code percent > 0}) or disarms a fault on one device and operation. */
    public record Fault(Side side, SimDevice.FaultOp op, DeviceException.Kind kind, int percent) implements Action {
    }

    /** Power loss on both devices; ends the run. */
    public record Crash() implements Action {
    }

    /** The same scenario with other actions. */
    public MirrorScenario withActions(List<Action> other) {
        return new MirrorScenario(config, List.copyOf(other));
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder(config.toString()).append('\n');
        for (int i = 0; i < actions.size(); i++) {
            b.append(String.format("  %3d %s%n", i, actions.get(i)));
        }
        return b.toString();
    }

    /* ---- Generation from a seed ---- */

    private static final ErrorPolicy[] POLICIES = ErrorPolicy.values();

    /**
     * A random scenario. {@code allowSpeedLimit} false keeps the speed limit at 0 throughout (see
     * the known-issue note in MirrorSimulationTest).
     */
    public static MirrorScenario generate(long seed, int maxActions, boolean allowSpeedLimit) {
        SplittableRandom r = new SplittableRandom(seed);
        int shift = r.nextInt(4);
        int g = 512 << shift;
        int chunks = 3 + r.nextInt(30);
        int tail = r.nextInt(4) == 0 ? r.nextInt(g) : 0;
        int bufChunks = 1 + r.nextInt(8);
        int maxCopyChunks = 1 + r.nextInt(bufChunks);
        long speed = allowSpeedLimit && r.nextInt(6) == 0 ? (long) g * (10 + r.nextInt(200)) : 0;
        SyncMode sync = r.nextInt(5) == 0 ? SyncMode.NONE : SyncMode.FULL;
        CopyMode mode = r.nextInt(3) == 0 ? CopyMode.WRITE_BLOCKING : CopyMode.BACKGROUND;
        ErrorPolicy onSource = POLICIES[r.nextInt(POLICIES.length)];
        ErrorPolicy onTarget = POLICIES[r.nextInt(POLICIES.length)];
        boolean targetIsZero = r.nextInt(4) == 0;
        int latency = r.nextInt(3) == 0 ? 0 : r.nextInt(2_000);
        // Auto-finalize and the finalize commands come from a stream of their own, so that every
        // other draw, and so every seed's scenario apart from them, stays what it was before.
        SplittableRandom lifecycle = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + 0x3C6EF372FE94F82BL);
        boolean autoFinalize = lifecycle.nextInt(4) != 0;
        Config config = new Config(r.nextLong(), shift, chunks, tail, bufChunks, maxCopyChunks, speed, sync, mode,
                onSource, onTarget, targetIsZero, latency, autoFinalize);
        int size = config.size();

        List<Action> actions = new ArrayList<>();
        int n = 10 + r.nextInt(Math.max(1, maxActions - 10));
        int early = r.nextInt(4);
        for (int i = 0; i < early; i++) {
            actions.add(randomWrite(r, size, g));
        }
        if (r.nextInt(10) != 0) {
            actions.add(new Command(Cmd.START));
        }
        // Phases alternate between a busy guest and a quiet one, so that runs reach READY (and
        // complete or cancel from it) as well as race the copier. Endings (cancel, forced cancel,
        // crash) are placed once, in the second half, so that most runs get far.
        int cancelAt = r.nextInt(10) < 3 ? n / 2 + r.nextInt(n - n / 2) : -1;
        Cmd cancel = r.nextInt(3) == 0 ? Cmd.FORCE_CANCEL : Cmd.CANCEL;
        int crashAt = r.nextInt(10) < 2 ? n - 1 - r.nextInt(Math.max(1, n / 4)) : -1;
        int stepWeight = 55;
        for (int i = actions.size(); i < n; i++) {
            if (i == cancelAt) {
                actions.add(new Command(cancel));
                continue;
            }
            if (i == crashAt) {
                actions.add(new Crash());
                break;
            }
            if (r.nextInt(40) == 0) {
                stepWeight = r.nextBoolean() ? 85 : 45;
            }
            int x = r.nextInt(100);
            if (x < stepWeight) {
                Nested nested = null;
                if (r.nextInt(8) == 0) {
                    Write w = randomWrite(r, size, g);
                    nested = new Nested(r.nextInt(1 << 16), Math.min(w.length(), g), w.fill(), r.nextBoolean());
                }
                actions.add(new Step(r.nextInt(8), nested));
                continue;
            }
            int y = r.nextInt(100);
            if (y < 52) {
                actions.add(randomWrite(r, size, g));
            } else if (y < 57) {
                long off = r.nextInt(size);
                actions.add(new Read(off, 1 + r.nextInt((int) Math.min(size - off, 4L * g))));
            } else if (y < 62) {
                actions.add(new Flush());
            } else if (y < 68) {
                actions.add(new Advance(r.nextInt(4) == 0 ? 100_000 + r.nextInt(1_500_000) : r.nextInt(20_000)));
            } else if (y < 71) {
                actions.add(new Command(Cmd.PAUSE));
            } else if (y < 75) {
                actions.add(new Command(Cmd.RESUME));
            } else if (y < 77) {
                actions.add(new Command(Cmd.WRITE_BLOCKING));
            } else if (y < 82) {
                actions.add(new Command(Cmd.COMPLETE));
            } else if (y < 83) {
                actions.add(new Command(Cmd.START));
            } else if (y < 84) {
                actions.add(new SetSpeed(allowSpeedLimit && r.nextBoolean() ? (long) g * (10 + r.nextInt(200)) : 0));
            } else {
                Side side = r.nextBoolean() ? Side.SOURCE : Side.TARGET;
                SimDevice.FaultOp op = SimDevice.FaultOp.values()[r.nextInt(3)];
                DeviceException.Kind kind = r.nextInt(3) == 0 ? DeviceException.Kind.NO_SPACE
                        : DeviceException.Kind.IO_ERROR;
                int percent = r.nextInt(5) < 3 ? 10 + r.nextInt(91) : 0;
                actions.add(new Fault(side, op, kind, percent));
            }
        }
        if (!autoFinalize) {
            // A finalize now and then: refused until the job is PENDING (the heal finalizes too).
            for (int k = 0, n2 = 1 + lifecycle.nextInt(4); k < n2 && !actions.isEmpty(); k++) {
                actions.add(1 + lifecycle.nextInt(actions.size()), new Command(Cmd.FINALIZE));
            }
        }
        return new MirrorScenario(config, actions);
    }

    private static Write randomWrite(SplittableRandom r, int size, int g) {
        long off = r.nextInt(size);
        int max = (int) Math.min(size - off, 3L * g);
        int len = r.nextInt(3) == 0 ? 1 + r.nextInt(Math.min(max, 64)) : 1 + r.nextInt(max);
        int f = r.nextInt(20);
        Fill fill = f < 15 ? Fill.PATTERN : f < 17 ? Fill.ZERO_DATA : f < 19 ? Fill.WRITE_ZEROES : Fill.DISCARD;
        int nest = r.nextInt(4) == 0 ? 1 + r.nextInt(255) : 0;
        return new Write(off, len, fill, nest);
    }

    /* ---- Bytes (the fuzzer's input) ---- */

    private static final int T_WRITE = 0;
    private static final int T_READ = 1;
    private static final int T_FLUSH = 2;
    private static final int T_STEP = 3;
    private static final int T_ADVANCE = 4;
    private static final int T_COMMAND = 5;
    private static final int T_SPEED = 6;
    private static final int T_FAULT = 7;
    private static final int T_CRASH = 8;
    private static final int TAGS = 9;

    /** The bytes that {@link #decode} turns back into this scenario. */
    public byte[] encode() {
        ByteCodec.Writer w = new ByteCodec.Writer();
        Config c = config;
        w.u8(c.granularityShift).u8(c.chunks - 1).u16(c.tail).u8(c.bufChunks).u8(c.maxCopyChunks).u32(c.speed)
                .u8((c.sync == SyncMode.NONE ? 1 : 0) | (c.copyMode == CopyMode.WRITE_BLOCKING ? 2 : 0)
                        | (c.targetIsZero ? 4 : 0) | (c.autoFinalize ? 0 : 8))
                .u8(c.onSourceError.ordinal()).u8(c.onTargetError.ordinal()).u16(c.maxLatencyMicros).u64(c.seed);
        for (Action a : actions) {
            if (a instanceof Write x) {
                w.u8(T_WRITE).u32(x.offset).u16(x.length).u8(x.fill.ordinal()).u8(x.nest);
            } else if (a instanceof Read x) {
                w.u8(T_READ).u32(x.offset).u16(x.length);
            } else if (a instanceof Flush) {
                w.u8(T_FLUSH);
            } else if (a instanceof Step x) {
                w.u8(T_STEP).u8(x.pick);
                Nested n = x.nested;
                w.u8(n == null ? 0 : n.after ? 3 : 1);
                if (n != null) {
                    w.u16(n.offset).u16(n.length).u8(n.fill.ordinal());
                }
            } else if (a instanceof Advance x) {
                w.u8(T_ADVANCE).u32(x.micros);
            } else if (a instanceof Command x) {
                w.u8(T_COMMAND).u8(x.cmd == Cmd.FINALIZE ? FINALIZE_BYTE : x.cmd.ordinal());
            } else if (a instanceof SetSpeed x) {
                w.u8(T_SPEED).u32(x.bytesPerSecond);
            } else if (a instanceof Fault x) {
                w.u8(T_FAULT).u8(x.side.ordinal()).u8(x.op.ordinal()).u8(x.kind == DeviceException.Kind.NO_SPACE ? 1 : 0)
                        .u8(x.percent);
            } else if (a instanceof Crash) {
                w.u8(T_CRASH);
            }
        }
        return w.toByteArray();
    }

    /** Any bytes make a valid scenario; missing bytes read as zero, and the actions end with the input. */
    public static MirrorScenario decode(byte[] bytes) {
        ByteCodec.Reader in = new ByteCodec.Reader(bytes);
        int shift = in.u8() % 4;
        int chunks = 1 + in.u8() % 48;
        int g = 512 << shift;
        int tail = in.u16() % g;
        if (tail >= chunks * g) {
            tail = 0;
        }
        int bufChunks = 1 + (in.u8() + 7) % 8; // 0 decodes as the generator's common case
        int maxCopyChunks = 1 + (in.u8() + 7) % 8;
        long speed = in.u32();
        int flags = in.u8();
        ErrorPolicy onSource = POLICIES[in.u8() % POLICIES.length];
        ErrorPolicy onTarget = POLICIES[in.u8() % POLICIES.length];
        int latency = in.u16();
        long seed = in.u64();
        Config config = new Config(seed, shift, chunks, tail, bufChunks, Math.min(maxCopyChunks, bufChunks), speed,
                (flags & 1) != 0 ? SyncMode.NONE : SyncMode.FULL,
                (flags & 2) != 0 ? CopyMode.WRITE_BLOCKING : CopyMode.BACKGROUND, onSource, onTarget,
                (flags & 4) != 0, latency, (flags & 8) == 0);
        List<Action> actions = new ArrayList<>();
        while (in.remaining() > 0 && actions.size() < 4_000) {
            int tag = in.u8() % TAGS;
            switch (tag) {
                case T_WRITE -> actions.add(new Write(in.u32(), Math.max(1, in.u16()), Fill.values()[in.u8() % 4],
                        in.u8()));
                case T_READ -> actions.add(new Read(in.u32(), Math.max(1, in.u16())));
                case T_FLUSH -> actions.add(new Flush());
                case T_STEP -> {
                    int pick = in.u8();
                    int nestFlags = in.u8();
                    Nested n = (nestFlags & 1) == 0 ? null
                            : new Nested(in.u16(), Math.max(1, in.u16()), Fill.values()[in.u8() % 4],
                                    (nestFlags & 2) != 0);
                    actions.add(new Step(pick, n));
                }
                case T_ADVANCE -> actions.add(new Advance(in.u32()));
                case T_COMMAND -> {
                    int c = in.u8();
                    actions.add(new Command(c >= FINALIZE_BYTE ? Cmd.FINALIZE : Cmd.values()[c % Cmd.FINALIZE.ordinal()]));
                }
                case T_SPEED -> actions.add(new SetSpeed(in.u32()));
                case T_FAULT -> actions.add(new Fault(Side.values()[in.u8() % 2],
                        SimDevice.FaultOp.values()[in.u8() % 3],
                        in.u8() % 2 == 1 ? DeviceException.Kind.NO_SPACE : DeviceException.Kind.IO_ERROR,
                        in.u8() % 101));
                default -> actions.add(new Crash());
            }
        }
        return new MirrorScenario(config, actions);
    }
}
