----------------------------- MODULE MirrorCopy -----------------------------
(***************************************************************************)
(* The mirror job of docs/DESIGN.md sections 2 and 3: a guest writes a    *)
(* source disk through the mirror filter while a copier copies it, chunk   *)
(* by chunk, to a target; READY, complete (pivot) and cancel conclude the  *)
(* job.                                                                    *)
(*                                                                         *)
(* What races with what.  The guest's writes and the copier's copies touch *)
(* the same chunk concurrently.  The mirror is safe because of a few       *)
(* orders, each of which is a separate step below, so that TLC can         *)
(* interleave everything else between them:                                *)
(*                                                                         *)
(*   guest  (background):  write source  ->  mark dirty  ->  return        *)
(*   guest  (write-blocking): claim -> clear the chunk -> write source -> *)
(*                  write target -> (mark again if it failed) -> release   *)
(*   copier:  claim -> test-and-clear -> read source -> write target ->    *)
(*            release (mark again first if the copy failed: IGNORE)        *)
(*   job:     READY / COMPLETED only when nothing is dirty and no copy is  *)
(*            in flight; the pivot only once held guest writes drained.    *)
(*                                                                         *)
(* The key invariant (CleanChunkInSync): a chunk that is neither dirty nor *)
(* in flight has the same content on source and target.  "In flight"       *)
(* covers copies and guest writes that have not returned yet.              *)
(*                                                                         *)
(* Broken variants.  The constant Bug switches one faulty step on (as the  *)
(* MongoDB specs do); each MC*_bug.cfg sets it and must fail:              *)
(*   "MarkBeforeWrite"        guest marks the chunk before writing source  *)
(*   "ClearAfterRead"         copier clears the bit after reading source   *)
(*   "OverlappingCopies"      tryClaim ignores a copy already in flight    *)
(*   "ReadyWithCopyInFlight"  convergence judged on the bitmap alone       *)
(*   "WriteBlockingUnordered" write-blocking write does not claim a chunk  *)
(*   "IgnoreClearsChunk"      a failed target write leaves the chunk clean *)
(*   "PivotWithoutDrain"      pivot while a guest write is still running   *)
(*   "WriteBlockingNoClear"   write-blocking write leaves its chunk dirty  *)
(* Each action's comment names the variant that removes its step.          *)
(*                                                                         *)
(* Abstractions.  A chunk's content is a value from Values; every guest    *)
(* write puts a different value there, so a lost update is a difference    *)
(* between source and target.  Writes cover whole chunks (a partial write  *)
(* is a background write: it marks the chunk).  buf-size is the number of  *)
(* copy slots (buf-size / granularity).  Durability (flush) and speed are  *)
(* not modelled: they decide when, not what, the target holds.             *)
(* Guest writes are unbounded; the state space is finite because Values,   *)
(* Chunks and Slots are.  Failures are bounded by MaxFailures.             *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS
    Chunks,       \* the chunks of the disk
    Values,       \* contents a guest write may put in a chunk (naturals > 0)
    Slots,        \* copy operations the copier may have in flight (buf-size)
    Mode,         \* "background" or "write-blocking"
    MaxFailures,  \* source-read or target-write failures a run may see
    Bug           \* "none" or the name of one broken variant (see above)

ASSUME Mode \in {"background", "write-blocking"}
ASSUME Values \subseteq (Nat \ {0}) /\ Cardinality(Values) >= 2
ASSUME MaxFailures \in Nat
ASSUME Bug \in {"none", "MarkBeforeWrite", "ClearAfterRead",
                "OverlappingCopies", "ReadyWithCopyInFlight",
                "WriteBlockingUnordered", "IgnoreClearsChunk", "PivotWithoutDrain",
                "WriteBlockingNoClear"}

(* ----------------------------------------------------------------------- *)
(*  State                                                                  *)
(* ----------------------------------------------------------------------- *)
VARIABLES
    src,       \* [Chunks -> Values]: the source device
    tgt,       \* [Chunks -> Values \cup {Unwritten}]: the target device
    dirty,     \* SUBSET Chunks: DirtyBitmap
    ops,       \* [Slots -> CopyOperation]: the copier's copies in flight
    guest,     \* the guest's current write through MirrorFilter
    acked,     \* [Chunks -> Values]: last write returned to the guest
    status,    \* MirrorJob state
    pivoted,   \* MirrorFilter routes the guest to the target
    failures   \* failures seen so far (IGNORE policy: retried later)

vars == <<src, tgt, dirty, ops, guest, acked, status, pivoted, failures>>

Unwritten == 0                               \* target content never written
SourceInit == CHOOSE v \in Values : TRUE     \* sync=full: the source has data
AnyChunk == CHOOSE c \in Chunks : TRUE       \* filler for unused record fields

(* The copier's steps, in protocol order.  A CopyOperation's field done    *)
(* counts how many of them it has taken (0 = the slot is free).  The only  *)
(* broken variant that reorders them is ClearAfterRead.                    *)
CopySteps ==
    IF Bug = "ClearAfterRead"
    THEN << "TryClaim", "ReadSource", "TestAndClear", "WriteTarget",
            "Release" >>
    ELSE << "TryClaim", "TestAndClear", "ReadSource", "WriteTarget",
            "Release" >>

FreeOp == [done |-> 0, c |-> AnyChunk, data |-> Unwritten, ok |-> TRUE]
IdleGuest == [pc |-> "idle", c |-> AnyChunk, v |-> SourceInit, ok |-> TRUE]

Busy(s) == ops[s].done > 0
NextCopyStep(s) == CopySteps[ops[s].done + 1]

(* The guest write's steps (guest.pc), per mode:                           *)
(*   background:      "idle" -> "sourceWritten" -> "idle"                  *)
(*                    (MarkBeforeWrite: "idle" -> "marked" -> "idle")      *)
(*   write-blocking:  "idle" -> "wbClaimed" -> "wbCleared" -> "wbSource"   *)
(*                    -> "wbTarget" [-> "wbMarked" if it failed] -> "idle" *)
(*   after the job concluded: one step, "idle" -> "idle".                  *)
GuestWriting(c) == guest.pc # "idle" /\ guest.c = c

(* InFlightChunks: a chunk claimed by a copy or by a write-blocking write. *)
CopyInFlight(c) == \E s \in Slots : Busy(s) /\ ops[s].c = c
WriteBlockingPcs == {"wbClaimed", "wbCleared", "wbSource", "wbTarget", "wbMarked"}
GuestClaims(c) ==
    /\ guest.pc \in WriteBlockingPcs
    /\ guest.c = c
    /\ Bug # "WriteBlockingUnordered"
InFlight(c) == CopyInFlight(c) \/ GuestClaims(c)
NoCopyInFlight == \A s \in Slots : ~Busy(s)

Concluded == status \in {"completed", "cancelled"}
(* The copier issues new copies while the job runs towards a conclusion    *)
(* that needs the target in sync.                                          *)
CopierRuns == status \in {"running", "ready", "completing", "draining"}
(* GuestGate: closed while complete or cancel-after-READY drain the job.   *)
GateOpen == status \notin {"completing", "draining"}

(* The convergence test shared by READY and the conclusions.               *)
Converged ==
    /\ dirty = {}
    /\ NoCopyInFlight \/ Bug = "ReadyWithCopyInFlight"

(* The device the guest's reads and writes go to.                          *)
Active == IF pivoted THEN tgt ELSE src

CanFail == failures < MaxFailures   \* a failure may still happen

(* ----------------------------------------------------------------------- *)
(*  Init                                                                   *)
(* ----------------------------------------------------------------------- *)
(* sync=full: every chunk starts dirty and the target holds nothing yet.   *)
Init ==
    /\ src = [c \in Chunks |-> SourceInit]
    /\ tgt = [c \in Chunks |-> Unwritten]
    /\ dirty = Chunks
    /\ ops = [s \in Slots |-> FreeOp]
    /\ guest = IdleGuest
    /\ acked = src
    /\ status = "running"
    /\ pivoted = FALSE
    /\ failures = 0

(* ----------------------------------------------------------------------- *)
(*  Guest writes in background mode: MirrorFilter.write                    *)
(* ----------------------------------------------------------------------- *)

(* MirrorFilter.write, first step: write the source.                       *)
(* The source must be written before the chunk is marked: a copy that      *)
(* claims the chunk after the mark then reads the new data.  Marking       *)
(* first (MarkBeforeWrite: MarkRange starts the write and this step ends   *)
(* it) lets a copy clear the bit, read the old data and finish before the  *)
(* write lands: the chunk ends clean with the old data on the target, a    *)
(* lost update (CleanChunkInSync).                                         *)
MirrorFilterWrite_WriteSource(c, v) ==
    /\ Mode = "background"
    /\ \/ /\ Bug # "MarkBeforeWrite"
          /\ guest.pc = "idle" /\ ~Concluded /\ GateOpen /\ v # src[c]
          /\ guest' = [pc |-> "sourceWritten", c |-> c, v |-> v, ok |-> TRUE]
          /\ UNCHANGED acked
       \/ /\ guest.pc = "marked" /\ c = guest.c /\ v = guest.v
          /\ acked' = [acked EXCEPT ![c] = v]
          /\ guest' = IdleGuest
    /\ src' = [src EXCEPT ![c] = v]
    /\ UNCHANGED <<tgt, dirty, ops, status, pivoted, failures>>

(* MirrorFilter.write, second step: DirtyBitmap.markRange, then return.    *)
(* Whatever a copy of this chunk did before the mark, the mark makes the   *)
(* copier copy it again, after the new data is on the source.              *)
MirrorFilterWrite_MarkRange(c, v) ==
    /\ Mode = "background"
    /\ \/ /\ guest.pc = "sourceWritten" /\ c = guest.c /\ v = guest.v
          /\ acked' = [acked EXCEPT ![c] = v]
          /\ guest' = IdleGuest
       \/ /\ Bug = "MarkBeforeWrite"
          /\ guest.pc = "idle" /\ ~Concluded /\ GateOpen /\ v # src[c]
          /\ guest' = [pc |-> "marked", c |-> c, v |-> v, ok |-> TRUE]
          /\ UNCHANGED acked
    /\ dirty' = dirty \cup {c}
    /\ UNCHANGED <<src, tgt, ops, status, pivoted, failures>>

(* ----------------------------------------------------------------------- *)
(*  Guest writes in write-blocking mode: MirrorFilter.write                *)
(* ----------------------------------------------------------------------- *)

(* MirrorFilter.writeBlocking: InFlightChunks.claim (waits while a copy    *)
(* holds the chunk).                                                       *)
(* The claim orders this write with any copy of the same chunk: without    *)
(* it (WriteBlockingUnordered) a copy that read the old data before this   *)
(* write can write the target after it, and the chunk, which this write    *)
(* has marked clean, keeps old data on the target (CleanChunkInSync).      *)
MirrorFilterWrite_Claim(c, v) ==
    /\ Mode = "write-blocking"
    /\ ~Concluded /\ GateOpen
    /\ guest.pc = "idle"
    /\ v # src[c]
    /\ ~InFlight(c) \/ Bug = "WriteBlockingUnordered"
    /\ guest' = [pc |-> "wbClaimed", c |-> c, v |-> v, ok |-> TRUE]
    /\ UNCHANGED <<src, tgt, dirty, ops, acked, status, pivoted, failures>>

(* MirrorFilter.writeBlocking: DirtyBitmap.clearCovered, holding the      *)
(* claim.  The write covers the chunk completely (writes here are whole    *)
(* chunks), so once it has written both devices the chunk is the same on   *)
(* both; the claim keeps copies out meanwhile, and a failure below marks   *)
(* it again before the release.  This is what makes write-blocking         *)
(* converge whatever the guest's write rate: a guest that keeps rewriting  *)
(* a dirty chunk, claiming it whenever the copier looks, would otherwise   *)
(* keep it dirty for ever (WriteBlockingNoClear: ReadyWhileWriting fails). *)
(* Clearing before the source write, as the copier clears before its read, *)
(* keeps a racing background mark from being erased.                       *)
MirrorFilterWrite_ClearCovered ==
    /\ guest.pc = "wbClaimed"
    /\ dirty' = IF Bug = "WriteBlockingNoClear" THEN dirty ELSE dirty \ {guest.c}
    /\ guest' = [guest EXCEPT !.pc = "wbCleared"]
    /\ UNCHANGED <<src, tgt, ops, acked, status, pivoted, failures>>

(* MirrorFilter.writeBlocking: the source write.                           *)
MirrorFilterWrite_WriteSourceBlocking ==
    /\ guest.pc = "wbCleared"
    /\ src' = [src EXCEPT ![guest.c] = guest.v]
    /\ guest' = [guest EXCEPT !.pc = "wbSource"]
    /\ UNCHANGED <<tgt, dirty, ops, acked, status, pivoted, failures>>

(* MirrorFilter.writeBlocking: the target write, synchronous.  It may      *)
(* fail.                                                                   *)
MirrorFilterWrite_WriteTarget ==
    /\ guest.pc = "wbSource"
    /\ \/ /\ tgt' = [tgt EXCEPT ![guest.c] = guest.v]
          /\ guest' = [guest EXCEPT !.pc = "wbTarget"]
          /\ UNCHANGED failures
       \/ /\ CanFail
          /\ failures' = failures + 1
          /\ guest' = [guest EXCEPT !.pc = "wbTarget", !.ok = FALSE]
          /\ UNCHANGED tgt
    /\ UNCHANGED <<src, dirty, ops, acked, status, pivoted>>

(* MirrorFilter.writeBlocking, after a failed target write:                *)
(* DirtyBitmap.markRange, before the claim is released, so that the        *)
(* copier retries the chunk.  Skipping it (IgnoreClearsChunk) leaves a     *)
(* clean chunk the target never got.                                       *)
MirrorFilterWrite_MarkFailed ==
    /\ guest.pc = "wbTarget" /\ ~guest.ok
    /\ dirty' = IF Bug = "IgnoreClearsChunk" THEN dirty ELSE dirty \cup {guest.c}
    /\ guest' = [guest EXCEPT !.pc = "wbMarked"]
    /\ UNCHANGED <<src, tgt, ops, acked, status, pivoted, failures>>

(* MirrorFilter.writeBlocking: InFlightChunks.release, and return.         *)
MirrorFilterWrite_Release ==
    /\ \/ guest.pc = "wbTarget" /\ guest.ok
       \/ guest.pc = "wbMarked"
    /\ acked' = [acked EXCEPT ![guest.c] = guest.v]
    /\ guest' = IdleGuest
    /\ UNCHANGED <<src, tgt, dirty, ops, status, pivoted, failures>>

(* After the job concluded the filter only routes: to the target after a   *)
(* pivot, to the source otherwise.  Nothing is marked any more.            *)
MirrorFilterWrite_Routed(c, v) ==
    /\ Concluded
    /\ guest.pc = "idle"
    /\ v # Active[c]
    /\ IF pivoted THEN /\ tgt' = [tgt EXCEPT ![c] = v]
                       /\ UNCHANGED src
                  ELSE /\ src' = [src EXCEPT ![c] = v]
                       /\ UNCHANGED tgt
    /\ acked' = [acked EXCEPT ![c] = v]
    /\ UNCHANGED <<dirty, ops, guest, status, pivoted, failures>>

(* ----------------------------------------------------------------------- *)
(*  The copier: Copier.issue and CopyOperation                             *)
(* ----------------------------------------------------------------------- *)

(* Copier.issue, first step: InFlightChunks.tryClaim on a dirty chunk, in  *)
(* a free slot (the buf-size bound on bytes in flight).                    *)
(* At most one copy of a chunk may be in flight: two overlapping copies    *)
(* (OverlappingCopies) can finish out of order and leave the older data    *)
(* on the target (OneCopyPerChunk; CleanChunkInSync when that invariant    *)
(* is not checked).                                                        *)
CopierIssue_TryClaim(s, c) ==
    /\ CopierRuns
    /\ ~Busy(s)
    /\ c \in dirty
    /\ ~InFlight(c) \/ (Bug = "OverlappingCopies" /\ ~GuestClaims(c))
    /\ ops' = [ops EXCEPT ![s] = [FreeOp EXCEPT !.done = 1, !.c = c]]
    /\ UNCHANGED <<src, tgt, dirty, guest, acked, status, pivoted, failures>>

(* Copier.issue, second step: DirtyBitmap.testAndClear.                    *)
(* The claim comes first: between the clear and the claim the chunk would  *)
(* be clean and not in flight while the target is stale.  The clear comes  *)
(* before the read: a guest write that lands after the read then finds     *)
(* the bit clear and marks it again, so it is copied later.  Clearing      *)
(* after the read (ClearAfterRead) erases the mark of a write that landed  *)
(* between read and clear: a lost update (CleanChunkInSync).               *)
CopierIssue_TestAndClear(s) ==
    /\ Busy(s) /\ NextCopyStep(s) = "TestAndClear"
    /\ dirty' = dirty \ {ops[s].c}
    /\ ops' = [ops EXCEPT ![s].done = @ + 1]
    /\ UNCHANGED <<src, tgt, guest, acked, status, pivoted, failures>>

(* CopyOperation.readSource.  A failed read (IGNORE) goes to release.      *)
CopyOperation_ReadSource(s) ==
    /\ Busy(s) /\ NextCopyStep(s) = "ReadSource"
    /\ \/ ops' = [ops EXCEPT ![s].done = @ + 1, ![s].data = src[ops[s].c]]
          /\ UNCHANGED failures
       \/ /\ CanFail
          /\ failures' = failures + 1
          /\ ops' = [ops EXCEPT ![s].done = 4, ![s].ok = FALSE]
    /\ UNCHANGED <<src, tgt, dirty, guest, acked, status, pivoted>>

(* CopyOperation.writeTarget: what was read, which may be older than the   *)
(* source by now (a later write marked the chunk again).  It may fail.     *)
CopyOperation_WriteTarget(s) ==
    /\ Busy(s) /\ NextCopyStep(s) = "WriteTarget"
    /\ \/ /\ tgt' = [tgt EXCEPT ![ops[s].c] = ops[s].data]
          /\ ops' = [ops EXCEPT ![s].done = @ + 1]
          /\ UNCHANGED failures
       \/ /\ CanFail
          /\ failures' = failures + 1
          /\ ops' = [ops EXCEPT ![s].done = 4, ![s].ok = FALSE]
          /\ UNCHANGED tgt
    /\ UNCHANGED <<src, dirty, guest, acked, status, pivoted>>

(* CopyOperation.release.  On failure with on-*-error=ignore the chunk is  *)
(* marked dirty again (DirtyBitmap.markRange) before the claim goes: the   *)
(* bit was cleared when the copy was issued, and the target did not get    *)
(* the data.  Both happen in this one step; releasing first would leave    *)
(* the chunk clean and unclaimed with a stale target for a moment.         *)
(* Skipping the mark (IgnoreClearsChunk) loses the chunk for good.         *)
CopyOperation_Release(s) ==
    /\ Busy(s) /\ NextCopyStep(s) = "Release"
    /\ dirty' = IF ops[s].ok \/ Bug = "IgnoreClearsChunk"
                THEN dirty
                ELSE dirty \cup {ops[s].c}
    /\ ops' = [ops EXCEPT ![s] = FreeOp]
    /\ UNCHANGED <<src, tgt, guest, acked, status, pivoted, failures>>

(* ----------------------------------------------------------------------- *)
(*  The job: MirrorJob                                                     *)
(* ----------------------------------------------------------------------- *)

(* MirrorJob.onConverged: READY, once, at the end of the bulk phase.       *)
(* A clean bitmap is not enough: a copy that cleared its bit may not have  *)
(* written the target yet.  Judging on the bitmap alone                    *)
(* (ReadyWithCopyInFlight) reports READY with a chunk not on the target    *)
(* (InSyncAtReadyAndCompleted).                                            *)
MirrorJob_OnConverged ==
    /\ status = "running"
    /\ Converged
    /\ status' = "ready"
    /\ UNCHANGED <<src, tgt, dirty, ops, guest, acked, pivoted, failures>>

(* MirrorJob.complete, first step: only when READY; GuestGate.close holds  *)
(* new guest writes so that the copier can catch up whatever the guest's   *)
(* write rate; the copier goes on.                                         *)
MirrorJob_Complete ==
    /\ status = "ready"
    /\ status' = "completing"
    /\ UNCHANGED <<src, tgt, dirty, ops, guest, acked, pivoted, failures>>

(* The job can conclude in sync when the copier has caught up and every    *)
(* guest write that passed the gate before it closed has returned.  A      *)
(* write still between its source write and its mark is on neither the     *)
(* bitmap nor the target: pivoting past it (PivotWithoutDrain) drops an    *)
(* acknowledged write (PivotLosesNoWrite).                                 *)
Drained ==
    /\ Converged
    /\ guest.pc = "idle" \/ Bug = "PivotWithoutDrain"

(* MirrorJob.complete, last step: drained and converged, the target is     *)
(* flushed, MirrorFilter switches to the target and GuestGate.open lets    *)
(* the held writes go there.  One step: no guest write can fall between    *)
(* the check and the switch because the gate is closed.  COMPLETED.        *)
MirrorJob_Complete_Pivot ==
    /\ status = "completing"
    /\ Drained
    /\ status' = "completed"
    /\ pivoted' = TRUE
    /\ UNCHANGED <<src, tgt, dirty, ops, guest, acked, failures>>

(* MirrorJob.cancel(force).  Before READY, or forced: the copier stops,    *)
(* copies in flight finish, then CANCELLED (the target is not in sync).    *)
(* After READY without force: hold the guest like complete, drain to a     *)
(* consistent target, then COMPLETED without a pivot.  A cancel racing     *)
(* with READY may therefore end COMPLETED: management can lose the race.   *)
MirrorJob_Cancel(force) ==
    /\ status \in {"running", "ready"}
    /\ status' = IF status = "ready" /\ ~force THEN "draining" ELSE "aborting"
    /\ UNCHANGED <<src, tgt, dirty, ops, guest, acked, pivoted, failures>>

(* MirrorJob.cancel, last step.                                            *)
MirrorJob_Cancel_Conclude ==
    \/ /\ status = "aborting"
       /\ NoCopyInFlight
       /\ status' = "cancelled"
    \/ /\ status = "draining"
       /\ Drained
       /\ status' = "completed"
    /\ UNCHANGED <<src, tgt, dirty, ops, guest, acked, pivoted, failures>>

(* ----------------------------------------------------------------------- *)
(*  Next state and specification                                           *)
(* ----------------------------------------------------------------------- *)
GuestWrites ==
    \/ \E c \in Chunks, v \in Values :
          \/ MirrorFilterWrite_WriteSource(c, v)
          \/ MirrorFilterWrite_MarkRange(c, v)
          \/ MirrorFilterWrite_Claim(c, v)
          \/ MirrorFilterWrite_Routed(c, v)
    \/ MirrorFilterWrite_ClearCovered
    \/ MirrorFilterWrite_WriteSourceBlocking
    \/ MirrorFilterWrite_WriteTarget
    \/ MirrorFilterWrite_MarkFailed
    \/ MirrorFilterWrite_Release

(* The guest's steps that finish a write it has started.                   *)
GuestContinues == guest.pc # "idle" /\ GuestWrites

CopierSteps(s) ==
    \/ CopierIssue_TestAndClear(s)
    \/ CopyOperation_ReadSource(s)
    \/ CopyOperation_WriteTarget(s)
    \/ CopyOperation_Release(s)

Management ==
    \/ MirrorJob_Complete
    \/ \E force \in BOOLEAN : MirrorJob_Cancel(force)

JobConcludes ==
    \/ MirrorJob_Complete_Pivot
    \/ MirrorJob_Cancel_Conclude

Next ==
    \/ GuestWrites
    \/ \E s \in Slots, c \in Chunks : CopierIssue_TryClaim(s, c)
    \/ \E s \in Slots : CopierSteps(s)
    \/ MirrorJob_OnConverged
    \/ Management
    \/ JobConcludes

(* Safety: the guest and management may act or not; nothing is forced.     *)
Spec == Init /\ [][Next]_vars

(* Liveness assumptions: a started guest write finishes; the copier and    *)
(* the job keep taking enabled steps.  Nothing forces the guest to write,  *)
(* nor management to complete or cancel.                                   *)
Fairness ==
    /\ WF_vars(GuestContinues)
    /\ WF_vars(\E s \in Slots, c \in Chunks : CopierIssue_TryClaim(s, c))
    /\ \A s \in Slots : WF_vars(CopierSteps(s))
    /\ WF_vars(MirrorJob_OnConverged)
    /\ WF_vars(JobConcludes)

FairSpec == Spec /\ Fairness

(* ----------------------------------------------------------------------- *)
(*  Invariants and properties                                              *)
(* ----------------------------------------------------------------------- *)
TypeOK ==
    /\ src \in [Chunks -> Values]
    /\ tgt \in [Chunks -> Values \cup {Unwritten}]
    /\ dirty \subseteq Chunks
    /\ \A s \in Slots : ops[s].done \in 0..4 /\ ops[s].c \in Chunks
    /\ guest.pc \in {"idle", "sourceWritten", "marked"} \cup WriteBlockingPcs
    /\ acked \in [Chunks -> Values]
    /\ status \in {"running", "ready", "completing", "draining", "aborting",
                   "completed", "cancelled"}
    /\ pivoted \in BOOLEAN
    /\ failures \in 0..MaxFailures

(* DESIGN 3.6, the key invariant: a chunk that is neither dirty nor in    *)
(* flight (a copy, or a guest write that has not returned) has the same    *)
(* content on source and target.  It holds while the job is live; once     *)
(* it concluded the filter stops marking.                                  *)
CleanChunkInSync ==
    ~Concluded =>
        \A c \in Chunks :
            (c \notin dirty /\ ~InFlight(c) /\ ~GuestWriting(c))
                => src[c] = tgt[c]

(* At most one claim per chunk: one copy, or one write-blocking write.     *)
OneCopyPerChunk ==
    /\ \A s1, s2 \in Slots :
          (s1 # s2 /\ Busy(s1) /\ Busy(s2)) => ops[s1].c # ops[s2].c
    /\ \A c \in Chunks : ~(GuestClaims(c) /\ CopyInFlight(c))

(* After the pivot the guest sees every write it was told had completed:   *)
(* the device it is routed to holds, for each chunk not being written,     *)
(* the content of the last acknowledged write.                             *)
PivotLosesNoWrite ==
    \A c \in Chunks : ~GuestWriting(c) => Active[c] = acked[c]

(* Buf-size: the copier never has more copies in flight than its slots.    *)
(* (By construction here; stated so that the mapping to Copier.issue's     *)
(* bound is explicit.)                                                     *)
BufSizeRespected == Cardinality({s \in Slots : Busy(s)}) <= Cardinality(Slots)

(* READY and COMPLETED: at the step that reports them, every chunk no      *)
(* guest write is touching holds the same content on both devices; for     *)
(* COMPLETED (nothing is touching any chunk then) the target equals the    *)
(* source at pivot or quiescence, a past state of the source.              *)
InSyncAtReadyAndCompleted ==
    [][ (status' \in {"ready", "completed"} /\ status' # status) =>
            \A c \in Chunks : ~GuestWriting(c) => src[c] = tgt[c] ]_vars

(* Liveness, background mode: if guest writes stop, READY is reached       *)
(* (unless the job was cancelled first).                                   *)
EverReadyOrCancelled ==
    status \in {"ready", "completing", "draining", "completed",
               "aborting", "cancelled"}
ReadyIfWritesStop == (<>[](guest.pc = "idle")) => <>EverReadyOrCancelled

(* Liveness, write-blocking mode: READY is reached even while the guest    *)
(* keeps writing.  (Fails in background mode: there the copier has to      *)
(* outrun the guest.)                                                      *)
ReadyWhileWriting == <>EverReadyOrCancelled

(* Liveness: once complete or cancel is under way, the job concludes.      *)
CompleteOrCancelConcludes ==
    (status \in {"completing", "draining", "aborting"}) ~> Concluded
=============================================================================
