package dev.handoff.properties.ownership;

import dev.handoff.properties.sim.ByteCodec;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One run of the ownership simulator: two holders (side 0 = the migration's source, side 1 = its
 * destination) of one image on shared storage, and the actions applied to them in order. From a
 * seed ({@link #generate}) or fuzzer bytes ({@link #decode}; {@link #encode} is its inverse).
 */
public record OwnershipScenario(int size, int headerBytes, List<Action> actions) {

    /**
     * What a side does. The first twelve keep their numbers in the encoding (committed fuzzer
     * inputs decode as they did before the rest were added).
     */
    public enum Op {
        WRITE, READ, FLUSH, ACTIVATE, INACTIVATE, PREPARE, ACCEPT, ABORT, CRASH, RESTART, CLOSE, LOSE_LOCK,
        /** Virtual time moves on by {@code length % 151} ms (the recheck interval is 100 ms). */
        ADVANCE,
        /** Arms one fault ({@link Fault}, by {@code length}); {@code offset} sizes a power cut. */
        FAULT,
        /** The whole site loses power: both processes die, the record's file system keeps what was synced. */
        POWER_LOSS
    }

    /** The faults FAULT arms, by {@code length % 8}. */
    public enum Fault {
        /** The side's next device write fails. */
        DEVICE_WRITE,
        /** The side's next device flush fails. */
        DEVICE_FLUSH,
        /** The next write to a record file fails. */
        RECORD_WRITE,
        /** The next fsync of a record write fails (of the new file, before its rename). */
        RECORD_FSYNC,
        /** The fsync after the next one fails (of the directory, after the rename). */
        RECORD_DIR_FSYNC,
        /** The next rename of a record file fails. */
        RECORD_RENAME,
        /** The next file creation (the new record's, or the lock file's) fails. */
        RECORD_CREATE,
        /** The power fails after {@code offset % 7} more record file system calls, inside a record write. */
        POWER_CUT;

        static Fault of(int length) {
            return values()[Math.floorMod(length, 8)];
        }
    }

    /** One action of {@code side}; offset and length matter for WRITE and READ (taken modulo the image), ADVANCE, FAULT. */
    public record Action(Op op, int side, int offset, int length) {
        @Override
        public String toString() {
            return switch (op) {
                case WRITE, READ -> op + "(side " + side + ", " + offset + "+" + length + ")";
                case ADVANCE -> "ADVANCE(" + OwnershipSimulation.advanceMillis(this) + " ms)";
                case FAULT -> Fault.of(length) == Fault.POWER_CUT ? "FAULT(POWER_CUT after " + Math.floorMod(offset, 7)
                        + " calls)" : "FAULT(side " + side + ", " + Fault.of(length) + ")";
                case POWER_LOSS -> "POWER_LOSS";
                default -> op + "(side " + side + ")";
            };
        }
    }

    public OwnershipScenario withActions(List<Action> other) {
        return new OwnershipScenario(size, headerBytes, List.copyOf(other));
    }

    /**
     * A random scenario; {@code loseLocks} allows LOSE_LOCK (a lock lost under a live holder), half
     * of them followed at once by the other side's activation and the old holder's steady writes
     * as time passes.
     */
    public static OwnershipScenario generate(long seed, int maxActions, boolean loseLocks) {
        SplittableRandom r = new SplittableRandom(seed);
        int size = 4096 * (1 + r.nextInt(8)) - (r.nextBoolean() ? r.nextInt(512) : 0);
        int header = 512 << r.nextInt(4);
        int n = 10 + r.nextInt(maxActions);
        List<Action> actions = new ArrayList<>();
        actions.add(new Action(Op.ACTIVATE, 0, 0, 0)); // the source runs the guest at first
        for (int i = 1; i < n; i++) {
            int side = r.nextInt(2);
            Op op = pick(r.nextInt(100), loseLocks);
            if (op == Op.LOSE_LOCK && r.nextBoolean()) {
                // A takeover under a holder that goes on writing steadily, each write less than
                // one recheck interval after the one before, past the interval since the takeover.
                actions.add(new Action(Op.LOSE_LOCK, side, 0, 0));
                actions.add(new Action(Op.ACTIVATE, 1 - side, 0, 0));
                for (int w = 2 + r.nextInt(5); w > 0; w--) {
                    actions.add(new Action(Op.ADVANCE, side, 0, 20 + r.nextInt(80)));
                    int off = r.nextInt(size);
                    actions.add(new Action(Op.WRITE, side, off, 1 + r.nextInt(Math.min(size - off, 2 * header))));
                }
                continue;
            }
            int off = r.nextInt(4) == 0 ? r.nextInt(Math.min(header, size)) : r.nextInt(size);
            int len = switch (op) {
                case ADVANCE -> r.nextInt(151);
                case FAULT -> r.nextInt(8);
                default -> 1 + r.nextInt(Math.min(size - off, 2 * header));
            };
            actions.add(new Action(op, side, off, len));
        }
        return new OwnershipScenario(size, header, actions);
    }

    private static Op pick(int x, boolean loseLocks) {
        if (loseLocks && x < 3) {
            return Op.LOSE_LOCK;
        }
        if (x < 31) {
            return Op.WRITE;
        } else if (x < 39) {
            return Op.READ;
        } else if (x < 45) {
            return Op.FLUSH;
        } else if (x < 51) {
            return Op.ACTIVATE;
        } else if (x < 55) {
            return Op.INACTIVATE;
        } else if (x < 63) {
            return Op.PREPARE;
        } else if (x < 71) {
            return Op.ACCEPT;
        } else if (x < 75) {
            return Op.ABORT;
        } else if (x < 78) {
            return Op.CRASH;
        } else if (x < 84) {
            return Op.RESTART;
        } else if (x < 86) {
            return Op.CLOSE;
        } else if (x < 94) {
            return Op.ADVANCE;
        } else if (x < 99) {
            return Op.FAULT;
        }
        return Op.POWER_LOSS;
    }

    public byte[] encode() {
        ByteCodec.Writer w = new ByteCodec.Writer().u16(size).u8(Integer.numberOfTrailingZeros(headerBytes) - 9);
        for (Action a : actions) {
            w.u8(a.op.ordinal()).u8(a.side).u16(a.offset).u16(a.length);
        }
        return w.toByteArray();
    }

    public static OwnershipScenario decode(byte[] bytes) {
        ByteCodec.Reader in = new ByteCodec.Reader(bytes);
        int size = Math.max(1, in.u16());
        int header = 512 << (in.u8() % 4);
        List<Action> actions = new ArrayList<>();
        Op[] ops = Op.values();
        while (in.remaining() > 0 && actions.size() < 2_000) {
            actions.add(new Action(ops[in.u8() % ops.length], in.u8() % 2, in.u16(), Math.max(1, in.u16())));
        }
        return new OwnershipScenario(size, header, actions);
    }
}
