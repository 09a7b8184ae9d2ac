----------------------------- MODULE MirrorCopy -----------------------------
(***************************************************************************)
(* The mirror job of docs/DESIGN.md sections 2 and 3, at the grain of the  *)
(* kernel (package dev.handoff.mirror): every action is one step the Java  *)
(* code takes atomically, and its comment names the method it models with  *)
(* a machine-checked tag                                                   *)
(*     @java Class.method:FIRST-LAST "anchor"                              *)
(* (specs/README.md; SpecMapTest fails when the method, or the anchor text *)
(* inside it, no longer exists, or the line range has moved).              *)
(*                                                                         *)
(* The steps.  Guests (any number of threads) write through MirrorFilter   *)
(* without taking a lock; each of their shared-memory steps is one action: *)
(*   background:      enter the gate -> write the source -> mark           *)
(*                    -> [wake the copier] -> exit the gate                *)
(*   write-blocking:  enter -> claim each chunk, ascending -> clear the     *)
(*                    chunks covered completely -> write the source ->     *)
(*                    write the target -> [mark again if either failed,    *)
(*                    report a target error] -> release each chunk ->      *)
(*                    [wake] -> exit                                       *)
(* A copy (CopyOperation, on the job's runtime) reads the source, writes   *)
(* the target, marks its run dirty again if a step failed, releases each   *)
(* chunk, then reports (a section: a newer copy of the same chunk may run, *)
(* and report, between its release and its report).                       *)
(* Everything else happens in a section holding the                        *)
(* job's lock (MirrorJob's synchronized blocks): a command, a pump, a      *)
(* timer, a copy's report, the final drain's check.  A section is one      *)
(* action: sections exclude each other, and the lock-free steps they race  *)
(* with (a guest's mark, claim, clear or release) commute with the         *)
(* section's own claims and clears, except that a guest may then also see  *)
(* the copier idle and queue one more pump (harmless: a pump only advances *)
(* the job).  Every section ends in MirrorJob.advanceLocked, modelled by   *)
(* Advance: the copier issues copies (claims runs of dirty chunks, clears  *)
(* them) within buf-size and a depth of 1 to the runtime's parallelism     *)
(* (fewer while a guest writes; the spec leaves the depth free), or goes   *)
(* idle; the job judges READY and the end of a drain only when nothing is  *)
(* dirty and no copy is in flight; an abandoned job ends once its copies   *)
(* are back.                                                               *)
(*                                                                         *)
(* The key invariant (CleanChunkInSync): a chunk that is neither dirty nor *)
(* claimed, and that no guest write is in the middle of, has the same      *)
(* content on source and target.                                           *)
(*                                                                         *)
(* Abstractions.  A chunk has two halves, so that a write may cover it in  *)
(* part; a half holds a value (0 = zeroes).  Time is a flag: a back-off    *)
(* after an ignored error is due or not (Tick).  The speed limit is not    *)
(* modelled (it only delays the copier; the simulator checks it).  The     *)
(* dirty bitmap and the claims are atomic sets (their linearizability is   *)
(* checked by jcstress and Lincheck).  Durability is not modelled: the     *)
(* final flush is a step that may fail.                                    *)
(*                                                                         *)
(* Broken variants: the constant Bug switches one faulty step on; each     *)
(* MC*_bug.cfg sets one and must fail.  The action that a variant changes  *)
(* names it.                                                               *)
(* Each _bug model's counterexample, drawn as a sequence diagram:          *)
(* specs/counterexamples/MC<Spec>_<Variant>_bug.md.                        *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets, Bags

CONSTANTS
    N,              \* chunks of the disk: 1..N
    Values,         \* values a guest write may put in a half (naturals > 0)
    Guests,         \* guest threads
    MaxWriteChunks, \* chunks a guest write touches at most
    Partial,        \* whether guest writes may cover chunks in part
    Discards,       \* whether guests discard too (always the background path)
    Reads,          \* whether guests read and flush too (they only hold the gate)
    BufChunks,      \* buf-size, in chunks
    Parallelism,    \* the runtime's parallelism: copies in flight at most
    MaxRun,         \* max-copy-bytes, in chunks
    Sync,           \* "full" or "none"
    InitialMode,    \* "background" or "write-blocking"
    AutoFinalize,   \* MirrorOptions.autoFinalize: a drain ends COMPLETED, or PENDING
    Commands,       \* the management commands this model lets happen
    SourcePolicy,   \* on-source-error: "report", "ignore", "stop", "enospc"
    TargetPolicy,   \* on-target-error
    FailKinds,      \* kinds of device errors: SUBSET {"io", "nospace"}
    MaxFailures,    \* device errors in a run
    MaxPumps,       \* pump tasks queued at most (a bound for TLC)
    MaxWrites,      \* guest writes in a run (0: no bound)
    Bug             \* "none" or one broken variant

Chunks == 1..N
Halves == {1, 2}
Policies == {"report", "ignore", "stop", "enospc"}
AllCommands == {"start", "pause", "resume", "complete", "finalize", "cancel",
                "force", "writeBlocking", "speed"}

ASSUME N \in Nat \ {0} /\ Values \subseteq (Nat \ {0}) /\ Values # {}
ASSUME MaxWriteChunks \in 1..N /\ Partial \in BOOLEAN /\ Discards \in BOOLEAN
ASSUME Reads \in BOOLEAN
ASSUME BufChunks \in Nat \ {0} /\ Parallelism \in Nat \ {0}
ASSUME MaxRun \in 1..BufChunks
ASSUME Sync \in {"full", "none"}
ASSUME InitialMode \in {"background", "write-blocking"} /\ AutoFinalize \in BOOLEAN
ASSUME Commands \subseteq AllCommands
ASSUME SourcePolicy \in Policies /\ TargetPolicy \in Policies
ASSUME FailKinds \subseteq {"io", "nospace"} /\ MaxFailures \in Nat
ASSUME MaxPumps \in Nat \ {0} /\ MaxWrites \in Nat
ASSUME Bug \in {"none", "MarkBeforeWrite", "ClearAfterRead",
                "OverlappingCopies", "ReadyWithCopyInFlight",
                "WriteBlockingUnordered", "IgnoreClearsChunk",
                "PivotWithoutDrain", "WriteBlockingNoClear",
                "WbClearsPartialChunk", "WbClearsAfterTargetWrite",
                "ClaimUnordered", "FinishWithoutRecheck", "CopierNeverWoken",
                "DrainKeepsGateOpen", "ReleaseBeforeMark", "PendingReleasesGuest",
                "CopiesByFirstChunk"}

(* ----------------------------------------------------------------------- *)
(*  State                                                                  *)
(* ----------------------------------------------------------------------- *)
VARIABLES
    src,      \* [Chunks -> [Halves -> value]]: the source device
    tgt,      \* [Chunks -> [Halves -> value]]: the target device
    dirty,    \* SUBSET Chunks: DirtyBitmap
    claimed,  \* SUBSET Chunks: InFlightChunks
    gs,       \* [Guests -> guest record]: each guest thread's write
    ops,      \* [Chunks -> copy record]: copies holding their first chunk's claim
    unreported, \* bag of copy records: copies that released their first chunk
              \* and have not yet reported (Copier.release, then onCopyFinished)
    job,      \* MirrorJob's, Copier's, GuestGate's and MirrorFilter's state
    pumps,    \* pump tasks queued on the runtime
    failures, \* device errors so far
    writes    \* guest writes started so far (counted only under MaxWrites)

vars == <<src, tgt, dirty, claimed, gs, ops, unreported, job, pumps, failures, writes>>

Min(a, b) == IF a < b THEN a ELSE b
Content == [Halves -> Values \cup {0}]
Whole(v) == [h \in Halves |-> v]

(* A guest's write, and where it is.  c1/h1 .. c2/h2: the halves it       *)
(* covers, in order; held: the chunks it has claimed; k: the next chunk to *)
(* release.                                                                *)
NoWrite == [pc |-> "idle", kind |-> "write", c1 |-> 1, h1 |-> 1, c2 |-> 1,
            h2 |-> 2, v |-> 0, k |-> 0, held |-> {}, ok |-> TRUE,
            newly |-> FALSE, cleared |-> FALSE, fk |-> "io"]

(* A copy: its run is f..last (f is its key in ops); data: what it read;   *)
(* side, fk: the step that failed, and how.                                *)
NoOp == [ph |-> "none", last |-> 0, data |-> <<>>, side |-> "none",
         fk |-> "io"]

Touched(w) == w.c1..w.c2
Covers(w, c, h) ==
    /\ c \in Touched(w)
    /\ (c = w.c1 => h >= w.h1)
    /\ (c = w.c2 => h <= w.h2)
(* The chunks a write covers completely (DirtyBitmap.clearCovered).        *)
CoveredWhole(w) == {c \in Touched(w) : \A h \in Halves : Covers(w, c, h)}
Written(dev, w) ==
    IF w.kind = "read" THEN dev ELSE
    [c \in Chunks |-> IF c \in Touched(w)
                      THEN [h \in Halves |-> IF Covers(w, c, h) THEN w.v
                                             ELSE dev[c][h]]
                      ELSE dev[c]]

(* The writes a guest may start: a run of at most MaxWriteChunks chunks,   *)
(* whole unless Partial; a value that differs from the source there, so    *)
(* that a lost update is a difference between source and target.           *)
NewWrites ==
    { [NoWrite EXCEPT !.kind = kind, !.c1 = c1, !.h1 = h1, !.c2 = c2,
                      !.h2 = h2, !.v = v] :
        kind \in {"write"} \cup (IF Discards THEN {"discard"} ELSE {})
                         \cup (IF Reads THEN {"read"} ELSE {}),
        c1 \in Chunks, h1 \in IF Partial THEN Halves ELSE {1},
        c2 \in Chunks, h2 \in IF Partial THEN Halves ELSE {2},
        v \in Values \cup {0} }
Kinds == {"write"} \cup (IF Discards THEN {"discard"} ELSE {})
                  \cup (IF Reads THEN {"read"} ELSE {})
ValidWrite(w) ==
    /\ w.kind \in Kinds /\ w.c1 \in Chunks /\ w.c2 \in Chunks
    /\ w.h1 \in (IF Partial THEN Halves ELSE {1})
    /\ w.h2 \in (IF Partial THEN Halves ELSE {2})
    /\ w.v \in Values \cup {0}
    /\ w.c1 <= w.c2 /\ w.c2 - w.c1 < MaxWriteChunks
    /\ (w.c1 = w.c2 => w.h1 <= w.h2)
    /\ (w.kind # "write") <=> (w.v = 0)
    /\ w.kind = "write" => w.v # src[w.c1][w.h1]

OpFirsts(o) == {f \in Chunks : o[f].ph # "none"}
OpRun(o, f) == f..o[f].last

RECURSIVE SumOver(_, _)
SumOver(S, F) == IF S = {} THEN 0
                 ELSE LET x == CHOOSE x \in S : TRUE IN F[x] + SumOver(S \ {x}, F)

(* The copies in flight, as Copier counts them: from the issue to the      *)
(* report (Copier.finishedLocked), those holding claims (o) and those that *)
(* released them and wait to report (u).  Chunks are counted per copy, as  *)
(* Copier.bytesInFlight counts bytes: two copies of one chunk count twice. *)
NOps(o, u) == Cardinality(OpFirsts(o)) + BagCardinality(u)
ChunksInFlight(o, u) ==
    SumOver(OpFirsts(o), [f \in OpFirsts(o) |-> o[f].last - f + 1])
    + SumOver(DOMAIN u, [r \in DOMAIN u |-> u[r] * (r.last - r.f + 1)])

(* The job.  st: JobState; ready: READY was reached; drain: what a drain   *)
(* ends in; aband: the outcome an abandoned job ends in once its copies    *)
(* are back; fin: finishDrain queued ("queued"), or its flush done ("ok", *)
(* or the error's kind) and its check to come;                             *)
(* resumeTo: the state a pause left; mode: the copy mode; gate: the guest  *)
(* gate is closed; pass: where MirrorFilter routes after the end; retry,   *)
(* due, timer: the back-off after an ignored error; idle: Copier.idle;     *)
(* cursor: where Copier.claimRunLocked looks first; pauseOnStart: paused   *)
(* while CREATED.                                                          *)
InitJob ==
    [st |-> "created", ready |-> FALSE, drain |-> "none", aband |-> "none",
     fin |-> "none", resumeTo |-> "none", pauseOnStart |-> FALSE,
     mode |-> InitialMode, gate |-> FALSE, pass |-> "none", retry |-> FALSE,
     due |-> FALSE, timer |-> FALSE, idle |-> FALSE, cursor |-> 1]

Concluded(j) == j.st \in {"completed", "cancelled", "failed"}
Finishing(j) == j.fin # "none"

(* MirrorJob.updateWriteThroughLocked: guest writes also go to the target. *)
(* @java MirrorJob.updateWriteThroughLocked:743-745 "boolean on = lpCopyMode() == CopyMode.WRITE_BLOCKING && abandoning == null" *)
WriteThrough(j) ==
    /\ j.mode = "write-blocking" /\ j.aband = "none"
    /\ \/ j.st \in {"running", "ready", "completing"}
       \/ j.st = "cancelling" /\ j.drain # "none"

(* Guests between GuestGate.enter and exit.                                *)
InsidePcs == {"io", "bgSource", "bgMark", "bgWake", "wbClaim", "wbClear",
              "wbSource", "wbTarget", "wbMark", "wbReport", "wbRelease",
              "wbWake", "exit"}
Inside == {g \in Guests : gs[g].pc \in InsidePcs}
Drained(j) == j.gate /\ (Inside = {} \/ Bug = "PivotWithoutDrain")

Converged(d, o, u) ==
    /\ d = {}
    /\ NOps(o, u) = 0 \/ Bug = "ReadyWithCopyInFlight"

CanFail == failures < MaxFailures

(* ----------------------------------------------------------------------- *)
(*  MirrorJob.advanceLocked and the copier's issue (inside every section)  *)
(* ----------------------------------------------------------------------- *)

(* Copier.claimRunLocked: the run a copy starting at f claims: f and the   *)
(* dirty, unclaimed chunks after it, at most budget of them.               *)
(* @java Copier.claimRunLocked:299-299 "bitmap.testAndClear(last);"            *)
RECURSIVE RunEnd(_, _, _, _)
RunEnd(l, d, c, left) ==
    IF left > 0 /\ l + 1 \in Chunks /\ l + 1 \in d
       /\ (l + 1 \notin c \/ Bug = "OverlappingCopies")
    THEN RunEnd(l + 1, d, c, left - 1)
    ELSE l

(* Copier.findAndClaim: the first dirty chunk in from..to that can be      *)
(* claimed (0 if none).                                                    *)
Claimable(d, c, x) == x \in d /\ (x \notin c \/ Bug = "OverlappingCopies")
FirstClaimable(d, c, from, to) ==
    LET xs == {x \in from..to : Claimable(d, c, x)} IN
    IF xs = {} THEN 0 ELSE CHOOSE x \in xs : \A y \in xs : x <= y

(* Copier.issueLocked: issue copies until buf-size or the depth lim is     *)
(* used (lim copies in flight: the parallelism, or fewer while a guest     *)
(* writes; Advance chooses it), or no dirty chunk can be claimed; then the *)
(* copier is idle (it sets Copier.idle and scans once more, which finds    *)
(* nothing in a section).                                                  *)
(* Copier.claimRunLocked starts at the cursor, wrapping once, and claims   *)
(* a run: the first claimable dirty chunk and the dirty, claimable chunks  *)
(* after it, within the budget.  Each chunk is claimed                     *)
(* (InFlightChunks.tryClaim), then cleared (DirtyBitmap.testAndClear),     *)
(* before the copy exists: the copier clears before anybody reads the      *)
(* source (ClearAfterRead defers the clear to after the copy's read and    *)
(* loses a write that lands in between).  A chunk claimed by a guest is    *)
(* skipped: at most one copy or write-blocking write per chunk             *)
(* (OverlappingCopies lets a second copy of a chunk start).  A copy that   *)
(* released its claims and has not yet reported is no obstacle: its      *)
(* chunks may be dirty again, and a new copy of them may start, run and   *)
(* even report before it (CopiesByFirstChunk knows copies by their first  *)
(* chunk, as the copier's bookkeeping might: the new copy takes the old    *)
(* one's place, and the old one's remaining claims are held by nobody,     *)
(* OneClaimPerChunk).  Returns [d, c, o, u, idle, cursor] after it.        *)
(* @java Copier.issueLocked:217-217 "CopyOperation op = claimRunLocked();"     *)
(* @java Copier.claimRunLocked:285-285 "long first = findAndClaim(cursor, bitmap.chunkCount());" *)
(* @java Copier.findAndClaim:311-311 "if (claims.tryClaim(c)) {"               *)
(* @java Copier.claimRunLocked:294-294 "bitmap.testAndClear(first);"           *)
RECURSIVE Issue(_, _, _, _, _, _, _)
Issue(d, c, o, u, idle, cur, lim) ==
    LET n == NOps(o, u)
        inFlight == ChunksInFlight(o, u)
        f1 == FirstClaimable(d, c, cur, N)
        f == IF f1 # 0 THEN f1 ELSE FirstClaimable(d, c, 1, cur - 1)
    IN IF n > 0 /\ (inFlight + 1 > BufChunks \/ n >= lim)
       THEN [d |-> d, c |-> c, o |-> o, u |-> u, idle |-> idle, cur |-> cur]
       ELSE IF f = 0
       THEN [d |-> d, c |-> c, o |-> o, u |-> u, idle |-> TRUE, cur |-> cur]
       ELSE LET budget == IF n = 0 THEN MaxRun ELSE Min(MaxRun, BufChunks - inFlight)
                last == RunEnd(f, d, c, budget - 1)
                run == f..last
            IN Issue(IF Bug = "ClearAfterRead" THEN d ELSE d \ run,
                     c \cup run,
                     [o EXCEPT ![f] = [NoOp EXCEPT !.ph = "read", !.last = last]],
                     IF Bug = "CopiesByFirstChunk"
                     THEN [r \in {x \in DOMAIN u : x.f # f} |-> u[r]]
                     ELSE u,
                     idle, IF last < N THEN last + 1 ELSE 1, lim)

(* MirrorJob.concludeLocked: route the guest, reopen the gate, end.        *)
(* @java MirrorJob.concludeLocked:709-709 "filter.setPassthrough(pivot ? target : source);" *)
Conclude(j, outcome, pivot) ==
    [j EXCEPT !.pass = IF pivot THEN "target" ELSE "source", !.gate = FALSE,
              !.drain = "none", !.aband = "none", !.st = outcome]

(* The rest of advanceLocked after the issue: READY when nothing is dirty  *)
(* or in flight (ReadyWithCopyInFlight judges on the bitmap alone), then   *)
(* the drain: queue finishDrain once converged and every guest that had    *)
(* passed the gate has left (PivotWithoutDrain does not wait for them).    *)
AfterIssue(j, d, o, u) ==
    IF ~Converged(d, o, u) THEN j
    ELSE LET j2 == IF j.ready THEN j ELSE [j EXCEPT !.ready = TRUE, !.st = "ready"]
         IN IF j2.drain # "none" /\ ~Finishing(j2) /\ Drained(j2)
            THEN [j2 EXCEPT !.fin = "queued"]
            ELSE j2

(* The copier's depths: the default while a guest writes, and the full.    *)
Depths == {1, Parallelism}

(* MirrorJob.advanceLocked, as the set of possible [j, d, c, o, u].  In a  *)
(* back-off after an ignored error the copier issues nothing               *)
(* (Copier.issueLocked returns at once), but READY and the drain's end are *)
(* judged all the same: a failed copy whose run other copies have already  *)
(* copied again reports into a converged job.  The depth the copier issues *)
(* to is either of Depths (Copier.depthLocked: the parallelism, or         *)
(* MirrorOptions.copiesWhileGuestWrites, 1 by default, while the guest     *)
(* wrote within a few milliseconds, which depends on the clock and on a    *)
(* counter the guests bump outside any step modelled here; the spec leaves *)
(* the choice free).  Depths is {1, Parallelism}, not 1..Parallelism: the  *)
(* two are the same set in every model (Parallelism is 1 or 2), and a      *)
(* trace check whose Parallelism stands for "unbounded" (MirrorTraceTest,  *)
(* 1000) then tries two depths per Advance instead of a thousand.  A       *)
(* copiesWhileGuestWrites between 2 and the parallelism - 1 is not         *)
(* modelled.                                                               *)
(* @java MirrorJob.advanceLocked:613-613 "copier.issueLocked();"               *)
(* @java Copier.issueLocked:206-206 "int depth = depthLocked(now);"        *)
(* @java MirrorJob.advanceLocked:605-605 "if (gate.isDrained()) {"             *)
Advance(j, d, c, o, u) ==
    LET same == [j |-> j, d |-> d, c |-> c, o |-> o, u |-> u] IN
    IF Concluded(j) THEN {same}
    ELSE IF j.aband # "none"
    THEN IF NOps(o, u) > 0 \/ Finishing(j)
         THEN {same}
         ELSE LET jc == [j EXCEPT !.gate = TRUE]
              IN {[same EXCEPT !.j = IF Drained(jc) THEN Conclude(jc, j.aband, FALSE) ELSE jc]}
    ELSE IF j.st \in {"created", "paused", "pending"}
    THEN {same}
    ELSE IF j.retry /\ ~j.due     \* the back-off: no copies, but READY is judged
    THEN {[same EXCEPT !.j = AfterIssue([j EXCEPT !.timer = TRUE], d, o, u)]}
    ELSE {LET r == Issue(d, c, o, u, j.idle, j.cursor, lim) IN
           [j |-> AfterIssue([j EXCEPT !.retry = FALSE, !.due = FALSE, !.idle = r.idle,
                                       !.cursor = r.cur], r.d, r.o, r.u),
            d |-> r.d, c |-> r.c, o |-> r.o, u |-> r.u] : lim \in Depths}

(* MirrorJob.onErrorLocked: the side's policy decides (DESIGN 2.7).        *)
(* @java MirrorJob.onErrorLocked:757-757 "ErrorAction action = policy.actionFor(e.kind());" *)
Action(side, kind) ==
    LET p == IF side = "source" THEN SourcePolicy ELSE TargetPolicy
    IN CASE p = "enospc" -> IF kind = "nospace" THEN "stop" ELSE "report"
         [] OTHER -> p

(* MirrorJob.pauseLocked.                                                  *)
Pause(j) == [j EXCEPT !.resumeTo = j.st, !.st = "paused",
                      !.gate = IF j.drain # "none" THEN FALSE ELSE j.gate]

OnError(j, side, kind) ==
    IF Concluded(j) \/ j.aband # "none" THEN j
    ELSE CASE Action(side, kind) = "ignore" ->
                   [j EXCEPT !.retry = TRUE, !.due = FALSE, !.timer = TRUE]
           [] Action(side, kind) = "stop" ->
                   IF j.st \in {"paused", "created"} THEN j ELSE Pause(j)
           [] OTHER -> [j EXCEPT !.aband = "failed", !.drain = "none"]

(* A section: its own change to the job (and dirty bits), then advance.    *)
SectionThenAdvance(j, d) ==
    \E r \in Advance(j, d, claimed, ops, unreported) :
        /\ job' = r.j /\ dirty' = r.d /\ claimed' = r.c /\ ops' = r.o
        /\ unreported' = r.u

(* ----------------------------------------------------------------------- *)
(*  Init                                                                   *)
(* ----------------------------------------------------------------------- *)
(* The source holds data; sync=full: the target holds zeroes and start()   *)
(* marks everything; sync=none: the target already equals the source.      *)
Init ==
    /\ src = [c \in Chunks |-> Whole(CHOOSE v \in Values : TRUE)]
    /\ tgt = IF Sync = "full" THEN [c \in Chunks |-> Whole(0)] ELSE src
    /\ dirty = {}
    /\ claimed = {}
    /\ gs = [g \in Guests |-> NoWrite]
    /\ ops = [f \in Chunks |-> NoOp]
    /\ unreported = EmptyBag
    /\ job = InitJob
    /\ pumps = 0
    /\ failures = 0
    /\ writes = 0

Pump(p) == IF p < MaxPumps THEN p + 1 ELSE p

(* ----------------------------------------------------------------------- *)
(*  Guest writes: MirrorFilter.mutate                                      *)
(* ----------------------------------------------------------------------- *)

(* Where a guest's operation goes once it is past the gate.               *)
EnterPath(j, w) ==
    IF j.pass # "none" \/ w.kind = "read" THEN "io"
    ELSE IF WriteThrough(j) /\ w.kind # "discard" THEN "wbClaim"
    ELSE IF Bug = "MarkBeforeWrite" THEN "bgMark"
    ELSE "bgSource"

CanWrite == MaxWrites = 0 \/ writes < MaxWrites

(* MirrorFilter.mutate: a guest starts a write.  After the job concluded,  *)
(* MirrorFilter.passthrough routes it straight to the source or target     *)
(* (one device call, no gate).  Otherwise GuestGate.enter (an RMW of the   *)
(* thread's cell, then a read of the closed flag: one step here); a        *)
(* closed gate holds the guest (it backs out, and its exit may find the    *)
(* gate drained and queue a pump: onDrained).  One step, because the       *)
(* striped gate refines the atomic one: GuestGate.tla models it one        *)
(* volatile access per step and TLC checks its Refinement of AtomicGate    *)
(* (this gate), where an entry takes effect at its read of the flag and a  *)
(* back-out changes nothing; and the trace brackets (MirrorTrace begin and *)
(* end) serialize a traced tryEnter or exit, which then is this step.      *)
(* Inside, the guest reads the route and MirrorFilter.writeThrough once: a *)
(* write that entered before a switch to write-blocking finishes as a      *)
(* background write.                                                       *)
(* @java MirrorFilter.mutate:295-295 "apply(p, op, offset, length, src);"       *)
(* @java MirrorFilter.enterGate:382-382 "boolean entered = gate.tryEnter();"    *)
(* @java GuestGate.tryEnter:154-154 "getAndAddCell(stripe(Thread.currentThread().getId()), 1L);" *)
GuestEnter(g, w) ==
    /\ \/ /\ gs[g].pc = "idle" /\ ValidWrite(w) /\ CanWrite
          /\ writes' = IF MaxWrites = 0 THEN writes ELSE writes + 1
       \/ gs[g].pc = "held" /\ w = gs[g] /\ UNCHANGED writes
    /\ \/ /\ job.pass # "none" /\ gs[g].pc = "idle"      \* the fast path
          /\ IF job.pass = "target"
             THEN tgt' = Written(tgt, w) /\ UNCHANGED src
             ELSE src' = Written(src, w) /\ UNCHANGED tgt
          /\ UNCHANGED <<gs, pumps>>
       \/ /\ IF job.gate
             THEN /\ gs' = [gs EXCEPT ![g] = [w EXCEPT !.pc = "held"]]
                  /\ pumps' = IF Inside = {} THEN Pump(pumps) ELSE pumps
             ELSE /\ gs' = [gs EXCEPT ![g] = [w EXCEPT !.pc = EnterPath(job, w),
                                                        !.k = w.c1]]
                  /\ UNCHANGED pumps
          /\ UNCHANGED <<src, tgt>>
    /\ UNCHANGED <<dirty, claimed, ops, unreported, job, failures>>

(* A read or flush inside the gate (one device call, no change to the      *)
(* data), or a write of a guest that entered (or waited at the gate) while *)
(* the job concluded: it goes to the device passthrough names.             *)
(* @java MirrorFilter.mutate:310-310 "apply(lvPassthrough(), op, offset, length, src);" *)
(* @java MirrorFilter.read:158-158 "(p != null ? p : source).read(offset, dst);" *)
GuestIO(g) ==
    LET w == gs[g] IN
    /\ w.pc = "io"
    /\ IF job.pass = "target" THEN tgt' = Written(tgt, w) /\ UNCHANGED src
                              ELSE src' = Written(src, w) /\ UNCHANGED tgt
    /\ gs' = [gs EXCEPT ![g].pc = "exit"]
    /\ UNCHANGED <<dirty, claimed, ops, unreported, job, pumps, failures, writes>>

(* ----------------------------------------------------------------------- *)
(*  The background path: MirrorFilter.writeBackground                      *)
(* ----------------------------------------------------------------------- *)

(* writeBackground: the source write (one device call; a failed one may    *)
(* have landed in part: here, all or nothing).  It comes before the mark   *)
(* (order 1): a copy that claims the chunk after the mark reads the new    *)
(* data.  MarkBeforeWrite marks first: a copy may then clear the bit, read *)
(* the old data and finish before this write lands: a lost update.         *)
(* @java MirrorFilter.writeBackground:419-419 "apply(source, op, offset, length, src);" *)
BgSource(g) ==
    LET w == gs[g]
        next == IF Bug # "MarkBeforeWrite" THEN "bgMark"
                ELSE IF w.newly THEN "bgWake" ELSE "exit"
    IN
    /\ w.pc = "bgSource"
    /\ \/ /\ src' = Written(src, w) /\ UNCHANGED failures
          /\ gs' = [gs EXCEPT ![g].pc = next]
       \/ /\ CanFail /\ failures' = failures + 1
          /\ src' \in {src, Written(src, w)}
          /\ gs' = [gs EXCEPT ![g].pc = next, ![g].ok = FALSE]
    /\ UNCHANGED <<tgt, dirty, claimed, ops, unreported, job, pumps, writes>>

(* writeBackground: DirtyBitmap.markRange, after the source write, even if *)
(* it failed.  Whatever a copy did before, the mark makes the copier copy  *)
(* the chunks again, after the new data is on the source.                  *)
(* @java MirrorFilter.writeBackground:432-432 "boolean newlyDirty = bitmap.markRange(offset, length);" *)
(* @java DirtyBitmap.markRange:146-146 "newlyDirty |= setBits(w, mask);"        *)
BgMark(g) ==
    LET w == gs[g]
        newly == ~(Touched(w) \subseteq dirty)
    IN
    /\ w.pc = "bgMark"
    /\ dirty' = dirty \cup Touched(w)
    /\ gs' = [gs EXCEPT ![g].pc = IF Bug = "MarkBeforeWrite" THEN "bgSource"
                                  ELSE IF newly THEN "bgWake" ELSE "exit",
                        ![g].newly = newly]
    /\ UNCHANGED <<src, tgt, claimed, ops, unreported, job, pumps, failures, writes>>

(* Copier.wakeIfIdle, called by a guest that dirtied a clean chunk: if the *)
(* copier said it is idle (a volatile read, then a CAS), queue a pump.     *)
(* The copier sets idle before its last scan, the guest marks before it    *)
(* reads idle: one of them sees the other.  CopierNeverWoken skips the wake-up:    *)
(* the copier sleeps with dirty chunks (ReadyIfWritesStop).                *)
(* @java MirrorFilter.wakeCopier:448-448 "boolean woke = copier.wakeIfIdle();"  *)
(* @java Copier.wakeIfIdle:409-409 "if (lvIdle() && casIdle(true, false)) {" *)
Wake(g) ==
    LET w == gs[g] IN
    /\ \/ w.pc = "bgWake"
       \/ w.pc = "wbWake" /\ (w.cleared \/ Touched(w) \cap dirty # {})
    /\ IF job.idle /\ Bug # "CopierNeverWoken"
       THEN job' = [job EXCEPT !.idle = FALSE] /\ pumps' = Pump(pumps)
       ELSE UNCHANGED <<job, pumps, writes>>
    /\ gs' = [gs EXCEPT ![g].pc = "exit"]
    /\ UNCHANGED <<src, tgt, dirty, claimed, ops, unreported, failures, writes>>

(* GuestGate.exit (an RMW of the thread's cell, then the closed flag and   *)
(* the sum of the cells: one step here): the exit that leaves a closed     *)
(* gate empty runs onDrained, which queues a pump.  The write returns.     *)
(* One step, as GuestEnter is: in GuestGate.tla an exit takes effect at    *)
(* its cell's decrement.  What the atomic gate leaves out is who runs      *)
(* onDrained: with exits racing, a back-out's exit may run it instead of   *)
(* the last one, or two exits may (one pump more: a pump runs only         *)
(* advanceLocked, which is Advance, the end of every section); and         *)
(* GuestGate.tla's NoLostDrain shows that one always runs.                 *)
(* @java MirrorFilter.exitGate:406-406 "gate.exit();"                           *)
(* @java GuestGate.exit:167-167 "getAndAddCell(stripe(Thread.currentThread().getId()), -1L);" *)
Exit(g) ==
    /\ gs[g].pc = "exit"
    /\ gs' = [gs EXCEPT ![g] = NoWrite]
    /\ pumps' = IF job.gate /\ Inside = {g} THEN Pump(pumps) ELSE pumps
    /\ UNCHANGED <<src, tgt, dirty, claimed, ops, unreported, job, failures, writes>>

(* ----------------------------------------------------------------------- *)
(*  The write-blocking path: MirrorFilter.writeBlocking                    *)
(* ----------------------------------------------------------------------- *)

(* The chunks a range claim may take next: the lowest it does not hold.   *)
ClaimCandidates(w) ==
    LET rest == Touched(w) \ w.held IN
    IF Bug = "ClaimUnordered" THEN rest
    ELSE {CHOOSE x \in rest : \A y \in rest : x <= y}

(* InFlightChunks.claim: claim each chunk, ascending; a guest waits while *)
(* a copy or another guest holds it.  The kernel takes, per bitmap word,   *)
(* the free chunks below the first held one in one CAS (tryClaimRun): this *)
(* action for each of them, back to back with nothing between, which is a *)
(* behaviour of the spec (the trace records it so).  The claim             *)
(* orders this write with any copy of the chunk: without it                *)
(* (WriteBlockingUnordered) a copy that read the old data before this      *)
(* write can write the target after it.  Ascending order keeps two guests *)
(* from waiting on each other; ClaimUnordered claims a write's chunks      *)
(* in any order (NoClaimCycle).  A copy never waits while holding a claim. *)
(* @java InFlightChunks.claim:87-87 "c += guestTryClaimRun(c, wordLast);"   *)
(* @java InFlightChunks.guestTryClaimRun:122-122 "long claimed = tryClaimRun(from, to);" *)
(* @java InFlightChunks.tryClaimRun:109-109 "if (casWord(w, word, word | take)) {" *)
WbClaim(g) ==
    LET w == gs[g] IN
    /\ w.pc = "wbClaim"
    /\ IF Bug = "WriteBlockingUnordered"
       THEN /\ UNCHANGED claimed
            /\ gs' = [gs EXCEPT ![g].pc = "wbClear"]
       ELSE \E c \in ClaimCandidates(w) :
            /\ c \notin claimed
            /\ claimed' = claimed \cup {c}
            /\ gs' = [gs EXCEPT ![g].held = w.held \cup {c},
                                ![g].pc = IF w.held \cup {c} = Touched(w)
                                          THEN "wbClear" ELSE "wbClaim"]
    /\ UNCHANGED <<src, tgt, dirty, ops, unreported, job, pumps, failures, writes>>

(* The chunks a write-blocking write clears.                              *)
ClearSet(w) ==
    CASE Bug = "WriteBlockingNoClear" -> {}
      [] Bug = "WbClearsPartialChunk" -> Touched(w)
      [] OTHER -> CoveredWhole(w)

(* DirtyBitmap.clearCovered, holding every claim, before the source write: *)
(* the chunks the write covers completely will hold the same data on both  *)
(* sides, so the copier has nothing left to do there; this is what makes   *)
(* write-blocking converge whatever the guest's write rate                 *)
(* (WriteBlockingNoClear: ReadyWhileWriting fails).  A chunk covered in *)
(* part stays dirty: its other part may still differ (WbClearsPartialChunk    *)
(* clears it: CleanChunkInSync).  Clearing before the source write, as a   *)
(* copy clears before its read, keeps a racing background mark (a discard *)
(* or a write that entered before the switch to write-blocking): it sees   *)
(* the bit cleared and sets it again, or landed before this write, which   *)
(* overwrites it.  WbClearsAfterTargetWrite clears at the end and erases that *)
(* mark (CleanChunkInSync).                                                *)
(* @java MirrorFilter.writeBlocking:476-476 "cleared = bitmap.clearCovered(offset, length);" *)
(* @java DirtyBitmap.clearCovered:182-182 "long old = getAndAndWord(w, ~mask);" *)
WbClear(g) ==
    LET w == gs[g] IN
    /\ w.pc = "wbClear"
    /\ IF Bug = "WbClearsAfterTargetWrite"
       THEN UNCHANGED dirty
       ELSE dirty' = dirty \ ClearSet(w)
    /\ gs' = [gs EXCEPT ![g].pc = "wbSource",
                        ![g].cleared = Bug # "WbClearsAfterTargetWrite" /\ ClearSet(w) \cap dirty # {}]
    /\ UNCHANGED <<src, tgt, claimed, ops, unreported, job, pumps, failures, writes>>

(* writeBlocking: the source write.  If it fails (perhaps part way) the    *)
(* chunks are marked again before the release and the guest gets the      *)
(* error.                                                                  *)
(* @java MirrorFilter.writeBlocking:483-483 "apply(source, op, offset, length, src);" *)
WbSource(g) ==
    LET w == gs[g] IN
    /\ w.pc = "wbSource"
    /\ \/ /\ src' = Written(src, w) /\ UNCHANGED failures
          /\ gs' = [gs EXCEPT ![g].pc = "wbTarget"]
       \/ /\ CanFail /\ failures' = failures + 1
          /\ src' \in {src, Written(src, w)}
          /\ gs' = [gs EXCEPT ![g].pc = "wbMark", ![g].ok = FALSE]
    /\ UNCHANGED <<tgt, dirty, claimed, ops, unreported, job, pumps, writes>>

(* writeBlocking: the target write, synchronous; it may fail (and land in  *)
(* part).  WbClearsAfterTargetWrite clears here instead.                      *)
(* @java MirrorFilter.writeBlocking:503-503 "apply(target, op, offset, length, forTarget);" *)
WbTarget(g) ==
    LET w == gs[g] IN
    /\ w.pc = "wbTarget"
    /\ \/ /\ tgt' = Written(tgt, w) /\ UNCHANGED failures
          /\ gs' = [gs EXCEPT ![g].pc = "wbRelease",
                              ![g].cleared = IF Bug = "WbClearsAfterTargetWrite"
                                             THEN ClearSet(w) \cap dirty # {}
                                             ELSE w.cleared]
          /\ dirty' = IF Bug = "WbClearsAfterTargetWrite" THEN dirty \ ClearSet(w) ELSE dirty
       \/ /\ CanFail /\ failures' = failures + 1
          /\ tgt' \in {tgt, Written(tgt, w)}
          /\ \E fk \in FailKinds :
                gs' = [gs EXCEPT ![g].pc = "wbMark", ![g].fk = fk]
          /\ UNCHANGED dirty
    /\ UNCHANGED <<src, claimed, ops, unreported, job, pumps, writes>>

(* writeBlocking, after a failed source or target write:                   *)
(* DirtyBitmap.markRange, before the claims are released, so that the      *)
(* copier copies the chunks again.  IgnoreClearsChunk skips it: a clean    *)
(* chunk the target never got.                                             *)
(* @java MirrorFilter.writeBlocking:514-514 "bitmap.markRange(offset, length); // before the claim is released" *)
WbMark(g) ==
    LET w == gs[g] IN
    /\ w.pc = "wbMark"
    /\ dirty' = IF Bug = "IgnoreClearsChunk" THEN dirty ELSE dirty \cup Touched(w)
    /\ gs' = [gs EXCEPT ![g].pc = IF w.ok THEN "wbReport" ELSE "wbRelease"]
    /\ UNCHANGED <<src, tgt, claimed, ops, unreported, job, pumps, failures, writes>>

(* writeBlocking, after a failed target write: MirrorJob.onGuestTargetError *)
(* (a section: the target policy, then advance).  The guest's write still  *)
(* succeeds: the source has it.                                            *)
(* @java MirrorJob.onGuestTargetError:829-829 "onErrorLocked(MirrorEvent.Side.TARGET, operation, offset, length, e);" *)
WbReport(g) ==
    /\ gs[g].pc = "wbReport"
    /\ SectionThenAdvance(OnError(job, "target", gs[g].fk), dirty)
    /\ gs' = [gs EXCEPT ![g].pc = "wbRelease"]
    /\ UNCHANGED <<src, tgt, pumps, failures, writes>>

(* InFlightChunks.release: each chunk, ascending; the kernel clears a     *)
(* word's chunks in one RMW, which is this action for each of them back to *)
(* back (the spec also lets a waiting guest take a chunk in between).      *)
(* @java InFlightChunks.release:135-135 "getAndAndWord((int) (c >>> 6)," *)
WbRelease(g) ==
    LET w == gs[g] IN
    /\ w.pc = "wbRelease"
    /\ claimed' = IF w.k \in w.held THEN claimed \ {w.k} ELSE claimed
    /\ gs' = [gs EXCEPT ![g].pc = IF w.k = w.c2 THEN "wbWake" ELSE "wbRelease",
                        ![g].k = w.k + 1, ![g].held = w.held \ {w.k}]
    /\ UNCHANGED <<src, tgt, dirty, ops, unreported, job, pumps, failures, writes>>

(* writeBlocking, after the release: if a touched chunk is dirty (a copy   *)
(* skipped it, it was covered in part, or a failure marked it) or this     *)
(* write cleared one (it may have been the copier's last work), wake the   *)
(* copier.  Otherwise nothing: the next step is the exit.                  *)
(* @java MirrorFilter.writeBlocking:547-547 "if (cleared || bitmap.anyDirty(offset, length)) {" *)
WbWakeOrNot(g) ==
    LET w == gs[g] IN
    /\ w.pc = "wbWake"
    /\ ~(w.cleared \/ Touched(w) \cap dirty # {})
    /\ gs' = [gs EXCEPT ![g].pc = "exit"]
    /\ UNCHANGED <<src, tgt, dirty, claimed, ops, unreported, job, pumps, failures, writes>>

(* ----------------------------------------------------------------------- *)
(*  The copies: CopyOperation and Copier.release                           *)
(* ----------------------------------------------------------------------- *)

(* A copy is in ops[f], f its first chunk, from its issue until it         *)
(* releases f.  From then on a new copy of f may be issued (a guest        *)
(* dirtied f again), run, and even release and report before this one:    *)
(* Copier.release releases the claims, then reports under the job's lock   *)
(* (MirrorJob.onCopyFinished), and nothing orders that report with other  *)
(* copies.  So the release of f moves the copy into the bag unreported,    *)
(* where it releases the rest of its run and waits for its report; it     *)
(* still counts for buf-size, the parallelism and convergence until then  *)
(* (NOps, ChunksInFlight).  A record of the bag: its run f..last, k: the  *)
(* next chunk to release, ph: "release", "finish" (released all, waiting  *)
(* for the lock), or "mark" (ReleaseBeforeMark only); side, fk: a failed  *)
(* step.                                                                   *)
Leaving(op, f, k) ==
    [f |-> f, last |-> op.last, side |-> op.side, fk |-> op.fk,
     k |-> IF k <= op.last THEN k ELSE 0,
     ph |-> IF k <= op.last THEN "release"
            ELSE IF Bug = "ReleaseBeforeMark" /\ op.side # "none" THEN "mark"
            ELSE "finish"]

(* One record of the bag replaced by another.                              *)
Swap(u, r, r2) == (u (-) SetToBag({r})) (+) SetToBag({r2})

(* A failed step goes to the mark, which comes before the release:         *)
(* ReleaseBeforeMark releases first and marks after, leaving the run clean *)
(* and unclaimed with a stale target in between (CleanChunkInSync).        *)
FailedPhase == IF Bug = "ReleaseBeforeMark" THEN "release" ELSE "mark"

(* CopyOperation.readSource: a fence, then the source read (one device     *)
(* call).  A failed read goes to the mark.  ClearAfterRead clears only     *)
(* now, in a step of its own after the read.  A run the source reports     *)
(* as one hole is not read or filled (CopyOperation.allHole): it reads as  *)
(* zeroes all the same, and CopyWrite writes or finds zeroes; one step.    *)
(* @java CopyOperation.readSource:122-122 "source.read(pos, buffer);"           *)
CopyRead(f) ==
    LET op == ops[f] IN
    /\ op.ph = "read"
    /\ \/ /\ ops' = [ops EXCEPT ![f].ph = IF Bug = "ClearAfterRead" THEN "clear" ELSE "write",
                               ![f].data = [x \in OpRun(ops, f) |-> src[x]]]
          /\ UNCHANGED failures
       \/ /\ CanFail /\ failures' = failures + 1
          /\ \E fk \in FailKinds :
                ops' = [ops EXCEPT ![f].ph = FailedPhase, ![f].side = "source", ![f].fk = fk]
    /\ UNCHANGED <<src, tgt, dirty, claimed, gs, job, pumps, writes, unreported>>

(* ClearAfterRead only: the copy clears its run after it read the source.  *)
(* @bug-only: no kernel code takes this step.                             *)
CopyClearLate(f) ==
    /\ ops[f].ph = "clear"
    /\ dirty' = dirty \ OpRun(ops, f)
    /\ ops' = [ops EXCEPT ![f].ph = "write"]
    /\ UNCHANGED <<src, tgt, claimed, gs, job, pumps, failures, writes, unreported>>

(* CopyOperation.writeTarget: what was read, which may be older than the   *)
(* source by now (a later write marked the chunks again).  It may fail,    *)
(* and land in part.  (A zero run is written as zeroes, or not at all      *)
(* where the target is known to be zero: the same content.)                *)
(* @java CopyOperation.writeTarget:207-207 "target.write(at, slice(pos, end));" *)
CopyWrite(f) ==
    LET op == ops[f]
        wrote == [x \in Chunks |-> IF x \in OpRun(ops, f) THEN op.data[x] ELSE tgt[x]]
    IN
    /\ op.ph = "write"
    /\ \/ /\ tgt' = wrote /\ UNCHANGED failures
          /\ ops' = [ops EXCEPT ![f].ph = "release", ![f].data = <<>>]
       \/ /\ CanFail /\ failures' = failures + 1
          /\ tgt' \in {tgt, wrote}
          /\ \E fk \in FailKinds :
                ops' = [ops EXCEPT ![f].ph = FailedPhase, ![f].side = "target", ![f].fk = fk,
                                   ![f].data = <<>>]
    /\ UNCHANGED <<src, dirty, claimed, gs, job, pumps, writes, unreported>>

(* Copier.release after a failed step: DirtyBitmap.markRange before the    *)
(* claims go, whatever the policy: the run was cleared when it was issued  *)
(* and the target may not have it (IgnoreClearsChunk skips it).  Releasing *)
(* first would leave a clean, unclaimed chunk with a stale target.         *)
(* @java Copier.release:437-437 "bitmap.markRange(op.offset, op.length);"      *)
CopyMark(f) ==
    /\ ops[f].ph = "mark"
    /\ dirty' = IF Bug = "IgnoreClearsChunk" THEN dirty ELSE dirty \cup OpRun(ops, f)
    /\ ops' = [ops EXCEPT ![f].ph = "release"]
    /\ UNCHANGED <<src, tgt, claimed, gs, job, pumps, failures, writes, unreported>>

(* Copier.release: InFlightChunks.release, each chunk ascending (one RMW  *)
(* per word, as for a guest: this action and CopyReleaseRest back to back *)
(* for the chunks of a word); this is the first, f, after which the copy  *)
(* is in the bag unreported.  If it was the run's last chunk,             *)
(* Copier.release hands the copy to its report: MirrorJob.onCopyFinished,  *)
(* which waits for the job's lock.                                         *)
(* @java Copier.release:442-442 "claims.release(op.firstChunk, op.lastChunk);" *)
(* @java InFlightChunks.release:135-135 "getAndAndWord((int) (c >>> 6)," *)
(* @java Copier.release:443-443 "return job.onCopyFinished(op, side, operation, e);" *)
CopyRelease(f) ==
    /\ ops[f].ph = "release"
    /\ claimed' = claimed \ {f}
    /\ ops' = [ops EXCEPT ![f] = NoOp]
    /\ unreported' = unreported (+) SetToBag({Leaving(ops[f], f, f + 1)})
    /\ UNCHANGED <<src, tgt, dirty, gs, job, pumps, failures, writes>>

(* Copier.release: the release of each further chunk of the run, by a     *)
(* copy in the bag (in the same RMW as the one before, within a word; a    *)
(* run that crosses a word is released in two); after the last, the       *)
(* hand-over to the report.                                                *)
(* @java Copier.release:442-442 "claims.release(op.firstChunk, op.lastChunk);" *)
(* @java InFlightChunks.release:135-135 "getAndAndWord((int) (c >>> 6)," *)
(* @java Copier.release:443-443 "return job.onCopyFinished(op, side, operation, e);" *)
CopyReleaseRest(r) ==
    /\ r.ph = "release"
    /\ claimed' = claimed \ {r.k}
    /\ unreported' = Swap(unreported, r, Leaving(r, r.f, r.k + 1))
    /\ UNCHANGED <<src, tgt, dirty, gs, ops, job, pumps, failures, writes>>

(* ReleaseBeforeMark only: the failed copy marks its run after releasing   *)
(* it.                                                                     *)
(* @bug-only: no kernel code takes this step.                             *)
CopyMarkLate(r) ==
    /\ r.ph = "mark"
    /\ dirty' = dirty \cup r.f..r.last
    /\ unreported' = Swap(unreported, r, [r EXCEPT !.ph = "finish"])
    /\ UNCHANGED <<src, tgt, claimed, gs, ops, job, pumps, failures, writes>>

(* MirrorJob.onCopyFinished (a section): the copy is no longer in flight   *)
(* (Copier.finishedLocked); a failure goes to its side's policy; then      *)
(* advance.                                                                *)
(* @java MirrorJob.onCopyFinished:795-795 "copier.finishedLocked(op, e);"      *)
(* @java Copier.finishedLocked:331-331 "opsInFlight--;"                        *)
CopyFinished(r) ==
    LET j2 == IF r.side = "none" THEN job ELSE OnError(job, r.side, r.fk) IN
    /\ r.ph = "finish"
    /\ \E a \in Advance(j2, dirty, claimed, ops, unreported (-) SetToBag({r})) :
          /\ job' = a.j /\ dirty' = a.d /\ claimed' = a.c /\ ops' = a.o
          /\ unreported' = a.u
    /\ UNCHANGED <<src, tgt, gs, pumps, failures, writes>>

(* ----------------------------------------------------------------------- *)
(*  Tasks: pumps, timers, the final drain                                  *)
(* ----------------------------------------------------------------------- *)

(* MirrorJob.pump (a section): a wake-up from a guest or the gate.         *)
(* @java MirrorJob.pump:903-903 "advanceLocked();"                              *)
RunPump ==
    /\ pumps > 0
    /\ pumps' = pumps - 1
    /\ SectionThenAdvance(job, dirty)
    /\ UNCHANGED <<src, tgt, gs, failures, writes>>

(* MirrorJob.onTimer (a section): the back-off timer fired.  If a later    *)
(* error pushed the retry time out, advance schedules it again.            *)
(* @java MirrorJob.onTimer:919-919 "c.timerFiredLocked();"                     *)
TimerFires ==
    /\ job.timer
    /\ SectionThenAdvance([job EXCEPT !.timer = FALSE], dirty)
    /\ UNCHANGED <<src, tgt, gs, pumps, failures, writes>>

(* Time passes the retry time of the back-off (Copier.backOffLocked).      *)
(* @env: the clock, not the kernel.                                        *)
Tick ==
    /\ job.retry /\ ~job.due
    /\ job' = [job EXCEPT !.due = TRUE]
    /\ UNCHANGED <<src, tgt, dirty, claimed, gs, ops, unreported, pumps, failures, writes>>

(* MirrorJob.finishDrain, first step: the target flush (one device call,   *)
(* outside the lock: guests are held and no copy runs, but a pause or a    *)
(* forced cancel may come meanwhile).                                      *)
(* @java MirrorJob.finishDrain:637-637 "target.flush();"                       *)
FinishFlush ==
    /\ job.fin = "queued"
    /\ \/ job' = [job EXCEPT !.fin = "ok"] /\ UNCHANGED failures
       \/ /\ CanFail /\ failures' = failures + 1
          /\ \E fk \in FailKinds : job' = [job EXCEPT !.fin = fk]
    /\ UNCHANGED <<src, tgt, dirty, claimed, gs, ops, unreported, pumps, writes>>

(* MirrorJob.finishDrain, second step (a section): after a failed flush,   *)
(* the target policy (and advance if the job is ending anyway); after a    *)
(* good one, re-check that the drain still stands (not abandoned, not      *)
(* paused, converged, guests held and gone) and conclude: COMPLETED, with  *)
(* the pivot for complete() (PENDING instead with auto-finalize off,       *)
(* holding the guests until finalizeJob or a cancel: PendingReleasesGuest  *)
(* lets them write the source, which the pivot then leaves behind,         *)
(* PivotLosesNoWrite).  Otherwise advance,                                 *)
(* which may queue the flush again.  FinishWithoutRecheck concludes COMPLETED after any good flush:  *)
(* a cancel(force) that came during the flush is lost (EndsAsCommanded).   *)
(* @java MirrorJob.finishDrain:662-662 "concludeLocked(JobState.COMPLETED, drain == Drain.PIVOT);" *)
FinishCheck ==
    LET j1 == [job EXCEPT !.fin = "none"] IN
    /\ job.fin \in {"ok", "io", "nospace"}
    /\ IF job.fin # "ok"
       THEN LET j2 == OnError(j1, "target", job.fin) IN
            IF j2.aband # "none" THEN SectionThenAdvance(j2, dirty)
            ELSE job' = j2 /\ UNCHANGED <<dirty, claimed, ops, unreported, writes>>
       ELSE IF \/ Bug = "FinishWithoutRecheck"
               \/ /\ j1.aband = "none" /\ j1.drain # "none" /\ j1.st # "paused"
                  /\ Converged(dirty, ops, unreported) /\ Drained(j1)
            THEN /\ job' = IF AutoFinalize THEN Conclude(j1, "completed", j1.drain = "pivot")
                            ELSE [j1 EXCEPT !.st = "pending",   \* guests stay held
                                            !.gate = Bug # "PendingReleasesGuest"]
                 /\ UNCHANGED <<dirty, claimed, ops, unreported, writes>>
            ELSE SectionThenAdvance(j1, dirty)
    /\ UNCHANGED <<src, tgt, gs, pumps, failures, writes>>

(* ----------------------------------------------------------------------- *)
(*  Commands: MirrorJob's public methods (each a section)                  *)
(* ----------------------------------------------------------------------- *)

(* MirrorJob.start: mark every chunk (sync=full), RUNNING, advance; or,    *)
(* if it was paused while CREATED, PAUSED at once, before any copy.        *)
(* @java MirrorJob.start:289-289 "bitmap.markAll();"                           *)
Start ==
    LET d == IF Sync = "full" THEN Chunks ELSE dirty
        j == [job EXCEPT !.st = "running", !.pauseOnStart = FALSE]
    IN
    /\ "start" \in Commands
    /\ job.st = "created"
    /\ IF job.pauseOnStart
       THEN job' = Pause(j) /\ dirty' = d /\ UNCHANGED <<claimed, ops, unreported>>
       ELSE SectionThenAdvance(j, d)
    /\ UNCHANGED <<src, tgt, gs, pumps, failures, writes>>

(* MirrorJob.pause: no new copies; guests are not held while paused.  While *)
(* CREATED (once): the job pauses as soon as it starts.                     *)
(* @java MirrorJob.pause:324-324 "pauseLocked();"                              *)
PauseCmd ==
    /\ "pause" \in Commands
    /\ \/ job.st = "created" /\ ~job.pauseOnStart /\ job' = [job EXCEPT !.pauseOnStart = TRUE]
       \/ job.st \in {"running", "ready"} /\ job.aband = "none" /\ job' = Pause(job)
    /\ UNCHANGED <<src, tgt, dirty, claimed, gs, ops, unreported, pumps, failures, writes>>

(* MirrorJob.resume: back to the state it paused in; a drain holds the     *)
(* guest again.                                                            *)
(* @java MirrorJob.resume:350-350 "gate.close(); // the drain held the guest when it paused; hold it again" *)
Resume ==
    /\ "resume" \in Commands
    /\ \/ /\ job.st = "created" /\ job.pauseOnStart
          /\ job' = [job EXCEPT !.pauseOnStart = FALSE]
          /\ UNCHANGED <<dirty, claimed, ops, unreported, writes>>
       \/ /\ job.st = "paused" /\ job.aband = "none"
          /\ SectionThenAdvance(
                 [job EXCEPT !.st = job.resumeTo, !.resumeTo = "none",
                             !.gate = IF job.resumeTo \in {"completing", "cancelling"}
                                      THEN TRUE ELSE job.gate],
                 dirty)
    /\ UNCHANGED <<src, tgt, gs, pumps, failures, writes>>

(* MirrorJob.beginDrainLocked: hold new guest operations (GuestGate.close) *)
(* so that the copier can catch up whatever the guest's write rate; those  *)
(* inside finish.  DrainKeepsGateOpen does not hold them: a guest that     *)
(* never stops keeps the drain from ending (CompleteOrCancelConcludes).    *)
BeginDrain(j, kind, st) ==
    [j EXCEPT !.drain = kind, !.st = st, !.gate = Bug # "DrainKeepsGateOpen"]

(* MirrorJob.complete: only when READY; or PAUSED after READY (standby):   *)
(* the job completes once resumed.                                         *)
(* @java MirrorJob.complete:381-381 "beginDrainLocked(Drain.PIVOT, JobState.COMPLETING);" *)
Complete ==
    /\ "complete" \in Commands
    /\ job.aband = "none"
    /\ \/ /\ job.st = "paused" /\ job.resumeTo = "ready"
          /\ job' = [job EXCEPT !.drain = "pivot", !.resumeTo = "completing"]
          /\ UNCHANGED <<dirty, claimed, ops, unreported, writes>>
       \/ /\ job.st = "ready"
          /\ SectionThenAdvance(BeginDrain(job, "pivot", "completing"), dirty)
    /\ UNCHANGED <<src, tgt, gs, pumps, failures, writes>>

(* MirrorJob.finalizeJob: PENDING (auto-finalize off) -> COMPLETED, with   *)
(* the pivot for complete(); the held guests go on.                        *)
(* @java MirrorJob.finalizeJob:403-403 "concludeLocked(JobState.COMPLETED, drain == Drain.PIVOT);" *)
Finalize ==
    /\ "finalize" \in Commands
    /\ job.st = "pending"
    /\ job' = Conclude(job, "completed", job.drain = "pivot")
    /\ UNCHANGED <<src, tgt, dirty, claimed, gs, ops, unreported, pumps, failures, writes>>

(* MirrorJob.cancel(false): from CREATED or PENDING the job ends at once   *)
(* (CANCELLED, the guest on the source); after READY                      *)
(* (or paused in a drain) it drains as complete() does, without the pivot; *)
(* before READY it is abandoned: CANCELLED once its copies are back.       *)
(* @java MirrorJob.cancel:454-454 "beginDrainLocked(Drain.NO_PIVOT, JobState.CANCELLING);" *)
Cancel ==
    LET at == IF job.st = "paused" THEN job.resumeTo ELSE job.st IN
    /\ "cancel" \in Commands
    /\ ~Concluded(job) /\ job.aband = "none"
    /\ \/ /\ job.st \in {"created", "pending"}
          /\ job' = Conclude(job, "cancelled", FALSE)
          /\ UNCHANGED <<dirty, claimed, ops, unreported, writes>>
       \/ /\ \/ job.st \in {"running", "ready"}
             \/ job.st = "paused" /\ at \in {"running", "ready", "completing"}
          /\ LET j1 == [job EXCEPT !.resumeTo = "none"] IN
             IF job.ready \/ (job.st = "paused" /\ at = "completing")
             THEN SectionThenAdvance(BeginDrain(j1, "nopivot", "cancelling"), dirty)
             ELSE SectionThenAdvance([j1 EXCEPT !.st = "cancelling",
                                                !.aband = "cancelled",
                                                !.drain = "none"], dirty)
    /\ UNCHANGED <<src, tgt, gs, pumps, failures, writes>>

(* MirrorJob.cancel(true): abandon at once, from any live state.           *)
(* @java MirrorJob.cancel:445-445 "abandonLocked(JobState.CANCELLED);"         *)
ForceCancel ==
    /\ "force" \in Commands
    /\ ~Concluded(job)
    /\ IF job.aband # "none"      \* already ending: the outcome stands
       THEN UNCHANGED <<job, dirty, claimed, ops, unreported, writes>>
       ELSE IF job.st \in {"created", "pending"}
       THEN /\ job' = Conclude(job, "cancelled", FALSE)
            /\ UNCHANGED <<dirty, claimed, ops, unreported, writes>>
       ELSE SectionThenAdvance([job EXCEPT !.st = "cancelling",
                                          !.aband = "cancelled",
                                          !.drain = "none"], dirty)
    /\ UNCHANGED <<src, tgt, gs, pumps, failures, writes>>

(* MirrorJob.setCopyMode(WRITE_BLOCKING), at run time: guest writes that   *)
(* enter from now on go to the target too; those already inside finish as *)
(* they started.  Never back to background.                                *)
(* @java MirrorJob.setCopyMode:506-506 "svCopyMode(mode);"                      *)
SetWriteBlocking ==
    /\ "writeBlocking" \in Commands
    /\ ~Concluded(job) /\ job.st # "pending" /\ job.mode = "background"
    /\ SectionThenAdvance([job EXCEPT !.mode = "write-blocking"], dirty)
    /\ UNCHANGED <<src, tgt, gs, pumps, failures, writes>>

(* MirrorJob.setSpeed: the speed limit is not modelled (it only delays     *)
(* the copier): a section that advances.                                   *)
(* @java MirrorJob.setSpeed:480-480 "copier.setSpeedLocked(bytesPerSecond);"   *)
SetSpeed ==
    /\ "speed" \in Commands
    /\ ~Concluded(job) /\ job.st # "pending"
    /\ SectionThenAdvance(job, dirty)
    /\ UNCHANGED <<src, tgt, gs, pumps, failures, writes>>

(* ----------------------------------------------------------------------- *)
(*  Next state and specification                                           *)
(* ----------------------------------------------------------------------- *)
GuestSteps(g) ==
    \/ GuestIO(g)
    \/ BgSource(g) \/ BgMark(g) \/ Wake(g) \/ Exit(g)
    \/ WbClaim(g) \/ WbClear(g) \/ WbSource(g) \/ WbTarget(g) \/ WbMark(g)
    \/ WbReport(g) \/ WbRelease(g) \/ WbWakeOrNot(g)

(* The steps of the copies of first chunk f: the one holding f, and those  *)
(* that released it and have yet to report.                               *)
CopySteps(f) ==
    \/ CopyRead(f) \/ CopyClearLate(f) \/ CopyWrite(f) \/ CopyMark(f)
    \/ CopyRelease(f)
    \/ \E r \in DOMAIN unreported :
          r.f = f /\ (CopyReleaseRest(r) \/ CopyMarkLate(r) \/ CopyFinished(r))

Tasks == RunPump \/ TimerFires \/ FinishFlush \/ FinishCheck

Management ==
    Start \/ PauseCmd \/ Resume \/ Complete \/ Finalize \/ Cancel \/ ForceCancel
        \/ SetWriteBlocking \/ SetSpeed

Next ==
    \/ \E g \in Guests : \E w \in NewWrites \cup {gs[g]} : GuestEnter(g, w)
    \/ \E g \in Guests : GuestSteps(g)
    \/ \E f \in Chunks : CopySteps(f)
    \/ Tasks
    \/ Tick
    \/ Management

Spec == Init /\ [][Next]_vars

(* Fairness, all weak: a thread or task that can take its next step keeps *)
(* being able to until it does.  A guest that has started a write finishes *)
(* it (its thread runs; a claim it waits for is released by a copy, which  *)
(* never waits, or by a guest that never waits on it: ascending order).    *)
(* Queued tasks run (the runtime's threads), sections get the lock (each   *)
(* is short and there are finitely many contenders), and time passes.      *)
(* Nothing forces a guest to write, nor management to act.  No strong      *)
(* fairness: the kernel gives a claim to whoever tries first, not to one   *)
(* that waited, so a guest that keeps rewriting a chunk may hold its claim *)
(* whenever the copier looks (see PartialChunkStarves).                    *)
Fairness ==
    /\ \A g \in Guests : WF_vars(GuestEnter(g, gs[g]) /\ gs[g].pc = "held")
    /\ \A g \in Guests : WF_vars(GuestSteps(g))
    /\ \A f \in Chunks : WF_vars(CopySteps(f))
    /\ WF_vars(RunPump)
    /\ WF_vars(TimerFires)
    /\ WF_vars(FinishFlush)
    /\ WF_vars(FinishCheck)
    /\ WF_vars(Tick)

FairSpec == Spec /\ Fairness

(* ----------------------------------------------------------------------- *)
(*  Invariants and properties                                              *)
(* ----------------------------------------------------------------------- *)
TypeOK ==
    /\ src \in [Chunks -> Content] /\ tgt \in [Chunks -> Content]
    /\ dirty \subseteq Chunks /\ claimed \subseteq Chunks
    /\ \A g \in Guests : gs[g].pc \in {"idle", "held"} \cup InsidePcs
    /\ \A f \in Chunks : ops[f].ph \in {"none", "read", "clear", "write", "mark", "release"}
    /\ \A r \in DOMAIN unreported :
          /\ r.f \in Chunks /\ r.last \in r.f..N /\ unreported[r] \in Nat \ {0}
          /\ r.ph \in {"release", "mark", "finish"}
          /\ (r.ph = "release") <=> (r.k \in r.f + 1..r.last)
    /\ job.st \in {"created", "running", "ready", "paused", "completing",
                   "cancelling", "pending", "completed", "cancelled", "failed"}
    /\ pumps \in 0..MaxPumps
    /\ failures \in 0..MaxFailures

(* A guest write in the middle of a chunk: it may have written one device  *)
(* and not the other, or not yet marked.                                   *)
GuestWriting(c) ==
    \E g \in Guests : gs[g].pc \in InsidePcs \ {"wbClaim"} /\ c \in Touched(gs[g])

(* DESIGN 3.6, the key invariant, while the job is live (after start with  *)
(* sync=full: before it, the target is not yet a copy of anything).        *)
CleanChunkInSync ==
    (~Concluded(job) /\ ~(job.st = "created" /\ Sync = "full")) =>
        \A c \in Chunks :
            (c \notin dirty /\ c \notin claimed /\ ~GuestWriting(c))
                => src[c] = tgt[c]

(* DESIGN 3.3: exactly one holder per claimed chunk (a copy or a guest's   *)
(* write-blocking write) and none for the others: a claim for each copy in *)
(* flight that holds one, and no claim that nobody holds (it would never   *)
(* be released).  A copy in the bag holds the rest of its run.             *)
Holders(c) ==
    {<<"copy", f>> : f \in {f \in Chunks : ops[f].ph # "none" /\ c \in OpRun(ops, f)}}
    \cup {<<"leaving", r>> : r \in {r \in DOMAIN unreported :
                                      r.ph = "release" /\ c \in r.k..r.last}}
    \cup {<<"guest", g>> : g \in {g \in Guests : c \in gs[g].held}}
OneClaimPerChunk ==
    /\ \A c \in Chunks : Cardinality(Holders(c)) = IF c \in claimed THEN 1 ELSE 0
    /\ \A r \in DOMAIN unreported : r.ph = "release" => unreported[r] = 1

(* Claims are taken in ascending order, so no two guests ever wait for     *)
(* each other: deadlock freedom of range claims (copies never wait).       *)
WaitsFor(g, h) ==
    /\ gs[g].pc = "wbClaim"
    /\ \A c \in ClaimCandidates(gs[g]) : c \in claimed
    /\ \E c \in ClaimCandidates(gs[g]) : <<"guest", h>> \in Holders(c)
NoClaimCycle == \A g, h \in Guests : ~(WaitsFor(g, h) /\ WaitsFor(h, g))

(* Buf-size and the runtime's parallelism bound the copies in flight.      *)
BufSizeRespected ==
    /\ ChunksInFlight(ops, unreported) <= BufChunks
    /\ NOps(ops, unreported) <= Parallelism

(* READY: at the step that reaches it, nothing is in flight and every      *)
(* chunk that no guest write is in the middle of is the same on both       *)
(* devices.                                                                *)
InSyncAtReady ==
    [][(~job.ready /\ job'.ready) =>
          /\ NOps(ops', unreported') = 0
          /\ \A c \in Chunks : ~GuestWriting(c)' => src'[c] = tgt'[c]]_vars

(* COMPLETED: the target equals the source (no guest write is inside then) *)
(* and the guest is routed to the target exactly after a pivot; CANCELLED  *)
(* and FAILED leave it on the source.                                      *)
PivotLosesNoWrite ==
    [][(~Concluded(job) /\ Concluded(job')) =>
          IF job'.st = "completed"
          THEN /\ src' = tgt'
               /\ job'.pass = IF job.drain = "pivot" THEN "target" ELSE "source"
          ELSE job'.pass = "source"]_vars

(* A job that is being abandoned (cancel before READY, cancel(force), a   *)
(* REPORT error) ends as it was abandoned: not COMPLETED.                  *)
EndsAsCommanded ==
    [][(job.aband # "none" /\ Concluded(job')) => job'.st = job.aband]_vars

(* Liveness.  Ready or ended (or paused, which only management undoes).    *)
ReadyOrEnded == job.ready \/ Concluded(job) \/ job.aband # "none"
NoGuestWrites == \A g \in Guests : gs[g].pc \in {"idle", "held"}

(* Background mode: once guest writes stop (and the job is not left        *)
(* paused), READY.                                                         *)
ReadyIfWritesStop ==
    (<>[](NoGuestWrites /\ job.st \notin {"created", "paused"})) => <>ReadyOrEnded

(* Write-blocking mode: READY even while the guest keeps writing (unless   *)
(* left paused).  Fails in background mode: the copier has to outrun the   *)
(* guest (BackgroundNoConvergence), and with partial writes a guest that   *)
(* keeps rewriting part of one chunk may hold it whenever the copier looks *)
(* (PartialChunkStarves).                                                  *)
ReadyWhileWriting == (<>[](job.st \notin {"created", "paused"})) => <>ReadyOrEnded

(* Once complete or cancel is under way, the job ends (or a STOP error     *)
(* pauses it, or it waits in PENDING with auto-finalize off: only          *)
(* management moves it on).                                                *)
CompleteOrCancelConcludes ==
    (job.st \in {"completing", "cancelling"})
        ~> (Concluded(job) \/ job.st \in {"paused", "pending"})
=============================================================================
