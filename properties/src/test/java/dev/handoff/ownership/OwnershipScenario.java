package dev.handoff.ownership;

import dev.handoff.sim.ByteCodec;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One run of the ownership simulator: two holders (side 0 = the migration's source, side 1 = its
 * destination) of one image on shared storage, and the actions applied to them in order. From a
 * seed ({@link #generate}) or fuzzer bytes ({@link #decode}; {@link #encode} is its inverse).
 */
public record OwnershipScenario(int size, int headerBytes, List<Action> actions) {

    /** What a side does. */
    public enum Op {
        WRITE, READ, FLUSH, ACTIVATE, INACTIVATE, PREPARE, ACCEPT, ABORT, CRASH, RESTART, CLOSE, LOSE_LOCK
    }

    /** One action of {@code side}; offset and length matter for WRITE and READ (taken modulo the image). */
    public record Action(Op op, int side, int offset, int length) {
        @Override
        public String toString() {
            return (op == Op.WRITE || op == Op.READ) ? op + "(side " + side + ", " + offset + "+" + length + ")"
                    : op + "(side " + side + ")";
        }
    }

    public OwnershipScenario withActions(List<Action> other) {
        return new OwnershipScenario(size, headerBytes, List.copyOf(other));
    }

    /** A random scenario; {@code loseLocks} allows LOSE_LOCK (a lock lost under a live holder). */
    public static OwnershipScenario generate(long seed, int maxActions, boolean loseLocks) {
        SplittableRandom r = new SplittableRandom(seed);
        int size = 4096 * (1 + r.nextInt(8)) - (r.nextBoolean() ? r.nextInt(512) : 0);
        int header = 512 << r.nextInt(4);
        int n = 10 + r.nextInt(maxActions);
        List<Action> actions = new ArrayList<>();
        actions.add(new Action(Op.ACTIVATE, 0, 0, 0)); // the source runs the guest at first
        for (int i = 1; i < n; i++) {
            int side = r.nextInt(2);
            int x = r.nextInt(100);
            Op op;
            if (x < 35) {
                op = Op.WRITE;
            } else if (x < 45) {
                op = Op.READ;
            } else if (x < 52) {
                op = Op.FLUSH;
            } else if (x < 58) {
                op = Op.ACTIVATE;
            } else if (x < 63) {
                op = Op.INACTIVATE;
            } else if (x < 72) {
                op = Op.PREPARE;
            } else if (x < 81) {
                op = Op.ACCEPT;
            } else if (x < 85) {
                op = Op.ABORT;
            } else if (x < 89) {
                op = Op.CRASH;
            } else if (x < 95) {
                op = Op.RESTART;
            } else if (x < 98 || !loseLocks) {
                op = Op.CLOSE;
            } else {
                op = Op.LOSE_LOCK;
            }
            int off = r.nextInt(4) == 0 ? r.nextInt(Math.min(header, size)) : r.nextInt(size);
            int len = 1 + r.nextInt(Math.min(size - off, 2 * header));
            actions.add(new Action(op, side, off, len));
        }
        return new OwnershipScenario(size, header, actions);
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
