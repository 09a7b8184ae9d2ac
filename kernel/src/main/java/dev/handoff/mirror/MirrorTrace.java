package dev.handoff.mirror;

/**
 * The spec-level steps of a mirror job, for trace validation against {@code MirrorCopy.tla}
 * (specs/README.md). A test seam, not an API: a job gets one only through the package-private
 * {@link MirrorJob#create(dev.handoff.device.BlockDevice, dev.handoff.device.BlockDevice,
 * MirrorOptions, JobRuntime, MirrorTrace)}; every other job has none, and then each step the
 * kernel would record costs one load of a final field and one never-taken branch (no call, no
 * allocation; measured in {@code bench/FilterBench}).
 *
 * <p>Each step of the spec is one atomic piece of the kernel: a read-modify-write, a device call,
 * or a section under the job's lock. The kernel calls {@link #begin()} just before such a piece
 * and {@link #end} just after it, from whichever thread takes the step. An implementation makes
 * the piece and its record one atomic unit by holding a reentrant lock from {@code begin} to
 * {@code end} (so steps of other threads are ordered around it, as the spec orders them), and
 * records only the outermost piece of a nest: the claims, clears and gate operations inside a
 * section belong to the section's one step. Brackets never enclose a wait (a held gate, a claim
 * another holder has, the job's lock), so such a lock cannot deadlock the job.
 *
 * <p>Threading: called from guest threads, the runtime's threads and command callers at once.
 */
interface MirrorTrace {

    /** Opens an atomic step; every {@code begin} is followed by exactly one {@link #end}. */
    void begin();

    /**
     * Closes the step opened by the matching {@link #begin()}.
     *
     * @param step what the kernel did
     * @param op   the guest operation (one of the {@code OP_} constants) or a fail kind
     *             ({@code FAIL_} constants), as the step says
     * @param a    the step's first argument (an offset, a chunk, a copy's first chunk, or 1/0)
     * @param b    its second (a length, or 0)
     */
    void end(Step step, int op, long a, long b);

    /* Guest operations, as recorded in gate and path steps. */
    int OP_WRITE = 0;
    int OP_WRITE_ZEROES = 1;
    int OP_DISCARD = 2;
    int OP_READ = 3;
    int OP_FLUSH = 4;

    /* Outcomes of a device call. */
    int OK = 0;
    int FAIL_IO = 1;
    int FAIL_NO_SPACE = 2;

    /** The steps, named after the MirrorCopy.tla actions they are. */
    enum Step {
        /** Nothing happened that the spec sees (a claim attempt that found the chunk taken): record nothing. */
        NONE,
        /** MirrorFilter: an operation after the job ended, straight to the routed device (op, offset, length). */
        FAST_PATH,
        /** GuestGate.tryEnter succeeded; the route was read (op, offset, length). */
        GATE_ENTER,
        /** GuestGate.tryEnter found the gate closed and backed out (op, offset, length). */
        GATE_HELD,
        /** GuestGate.exit. */
        GATE_EXIT,
        /** A read or flush inside the gate, or a write the filter routed after the job ended (op). */
        GUEST_IO,
        /** writeBackground: the source write (outcome). */
        BG_SOURCE,
        /** writeBackground: DirtyBitmap.markRange (a = 1 if a chunk was newly dirtied). */
        BG_MARK,
        /** Copier.wakeIfIdle after a background mark (a = 1 if it queued a pump). */
        BG_WAKE,
        /**
         * InFlightChunks.tryClaimRun by a write-blocking write: one CAS claimed {@code b} chunks from
         * chunk {@code a} (the spec's claim of each, in order, with nothing between).
         */
        WB_CLAIM,
        /** writeBlocking: DirtyBitmap.clearCovered (a = 1 if a dirty chunk was cleared). */
        WB_CLEAR,
        /** writeBlocking: the source write (outcome). */
        WB_SOURCE,
        /** writeBlocking: the target write (outcome). */
        WB_TARGET,
        /** writeBlocking: markRange after a failed source or target write. */
        WB_MARK,
        /**
         * InFlightChunks.release, by a guest or a copy: one RMW released {@code b} chunks from chunk
         * {@code a} (the spec's release of each, in order, with nothing between).
         */
        RELEASE,
        /** writeBlocking: the dirty check after the release, and the wake it may call (a = 1 if it queued a pump). */
        WB_WAKE,
        /** CopyOperation.readSource (outcome; a = first chunk). */
        COPY_READ,
        /** CopyOperation.writeTarget (outcome; a = first chunk). */
        COPY_WRITE,
        /** Copier.release: markRange of a failed copy (a = first chunk). */
        COPY_MARK,
        /** MirrorJob.finishDrain: the target flush (outcome). */
        FINISH_FLUSH,
        /* Sections under the job's lock (a = 1 if the command was accepted, else 0). */
        START, PAUSE, RESUME, COMPLETE, FINALIZE, CANCEL, FORCE_CANCEL, SET_COPY_MODE, SET_SPEED,
        /** MirrorJob.pump. */
        PUMP,
        /** MirrorJob.onTimer. */
        TIMER,
        /** MirrorJob.onCopyFinished (a = first chunk; op = its error's fail kind or OK). */
        COPY_FINISHED,
        /** MirrorJob.onGuestTargetError (op = fail kind). */
        GUEST_TARGET_ERROR,
        /** MirrorJob.finishDrain: the check under the lock after the flush. */
        FINISH_CHECK,
        /*
         * The persistent write-intent bitmap (DESIGN §2.10): steps MirrorCopy.tla sees change none of
         * its variables; PersistentBitmap.tla models them.
         */
        /** WriteIntents.begin returned: the write's regions have durable bits (a = 1 if it waited for a sync). */
        INTENT_BEGIN,
        /** WriteIntents.end, after the write's dirty marks. */
        INTENT_END,
        /** MirrorJob.clearPass finished (a = the regions it found still idle and tried to clear). */
        CLEAR_PASS
    }

    /** The fail kind of a device error, for {@link #end}. */
    static int failKind(dev.handoff.device.DeviceException e) {
        return e.kind() == dev.handoff.device.DeviceException.Kind.NO_SPACE ? FAIL_NO_SPACE : FAIL_IO;
    }
}
