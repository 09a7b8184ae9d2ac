--------------------------- MODULE TraceMirrorCopy --------------------------
(***************************************************************************)
(* Trace validation of MirrorCopy: TLC checks that the spec can take       *)
(* exactly the steps a real mirror job took, in order.  The kernel records *)
(* its spec-level steps through the MirrorTrace seam (MirrorTraceRecorder, *)
(* in the kernel's test jar) and writes them as the module TraceData       *)
(* (Trace == << [...], ... >>); each record names the step, its actor and  *)
(* arguments, and the dirty chunks, the claimed chunks and the job's state *)
(* right after it.  In the style of the published trace-validation work    *)
(* (etcd-raft's Traceetcdraft.tla, CCF): a variable i walks the trace;     *)
(* each step of TraceNext takes event i with the MirrorCopy action it      *)
(* names (choosing what the trace does not say, such as the value a write  *)
(* puts), and requires the observed state after it.  The only step        *)
(* without an event is Tick (time passing a back-off's retry time), which  *)
(* the kernel does not record.                                             *)
(*                                                                         *)
(* Verdict: the trace is accepted iff some behaviour reaches i > Len(Trace) *)
(* (the invariant TraceNotFinished is then violated); if TLC exhausts the  *)
(* reachable states without, the trace is rejected at the deepest event    *)
(* reached (TLC's depth of the state graph).                               *)
(***************************************************************************)
EXTENDS MirrorCopy, TraceData, Sequences, TLC

VARIABLE i

TraceVars == <<vars, i>>

Ev == Trace[i]

FailOf(ok) == IF ok = 2 THEN "nospace" ELSE "io"

(* The guest's write as the event describes it; the value is chosen.       *)
EvWrite(e) == [NoWrite EXCEPT !.kind = e.kind, !.c1 = e.c1, !.h1 = e.h1,
                              !.c2 = e.c2, !.h2 = e.h2]

GuestStarts(e) ==
    IF gs[e.g].pc = "held" THEN GuestEnter(e.g, gs[e.g])
    ELSE \E v \in Values \cup {0} : GuestEnter(e.g, [EvWrite(e) EXCEPT !.v = v])

Refused(A) == ~ENABLED A /\ UNCHANGED vars

Command(e, A) == IF e.a = 1 THEN A ELSE Refused(A)

(* The copy whose report event e is: several copies of one first chunk    *)
(* may wait to report (MirrorCopy's bag unreported); the event names the  *)
(* first chunk and the outcome, and TLC tries each copy that fits.         *)
Reports(r, e) ==
    /\ r.f = e.f
    /\ IF e.ok = 0 THEN r.side = "none" ELSE r.side # "none" /\ r.fk = FailOf(e.ok)

(* The MirrorCopy action of event e.                                        *)
StepOf(e) ==
    CASE e.s = "FAST_PATH" ->
            /\ job.pass # "none" /\ gs[e.g].pc = "idle"
            /\ GuestStarts(e) /\ gs' = gs
      [] e.s = "GATE_ENTER" -> GuestStarts(e) /\ gs'[e.g].pc \notin {"idle", "held"}
      [] e.s = "GATE_HELD" -> GuestStarts(e) /\ gs'[e.g].pc = "held"
      [] e.s = "GATE_EXIT" -> Exit(e.g)
      [] e.s = "GUEST_IO" -> GuestIO(e.g)
      [] e.s = "BG_SOURCE" -> BgSource(e.g) /\ gs'[e.g].ok = (e.ok = 0)
      [] e.s = "BG_MARK" -> BgMark(e.g) /\ gs'[e.g].newly = (e.a = 1)
      [] e.s = "BG_WAKE" -> Wake(e.g) /\ (pumps' # pumps) = (e.a = 1)
      [] e.s = "WB_CLAIM" -> WbClaim(e.g) /\ claimed' = claimed \cup {e.c}
      [] e.s = "WB_CLEAR" -> WbClear(e.g) /\ gs'[e.g].cleared = (e.a = 1)
      [] e.s = "WB_SOURCE" -> WbSource(e.g) /\ (gs'[e.g].pc = "wbMark") = (e.ok # 0)
      [] e.s = "WB_TARGET" ->
            /\ WbTarget(e.g) /\ (gs'[e.g].pc = "wbMark") = (e.ok # 0)
            /\ e.ok # 0 => gs'[e.g].fk = FailOf(e.ok)
      [] e.s = "WB_MARK" -> WbMark(e.g)
      [] e.s = "RELEASE" ->
            IF e.g # "none"
            THEN WbRelease(e.g) /\ gs[e.g].k = e.c
            ELSE \/ CopyRelease(e.c)
                 \/ \E r \in DOMAIN unreported : r.k = e.c /\ CopyReleaseRest(r)
      [] e.s = "WB_WAKE" ->
            IF e.a = 1 THEN Wake(e.g) /\ pumps' # pumps
            ELSE (Wake(e.g) /\ pumps' = pumps) \/ WbWakeOrNot(e.g)
      [] e.s = "COPY_READ" ->
            /\ CopyRead(e.f) /\ (ops'[e.f].ph = "mark") = (e.ok # 0)
            /\ e.ok # 0 => ops'[e.f].fk = FailOf(e.ok)
      [] e.s = "COPY_WRITE" ->
            /\ CopyWrite(e.f) /\ (ops'[e.f].ph = "mark") = (e.ok # 0)
            /\ e.ok # 0 => ops'[e.f].fk = FailOf(e.ok)
      [] e.s = "COPY_MARK" -> CopyMark(e.f)
      [] e.s = "COPY_FINISHED" -> \E r \in DOMAIN unreported : Reports(r, e) /\ CopyFinished(r)
      [] e.s = "GUEST_TARGET_ERROR" -> WbReport(e.g)
      [] e.s = "PUMP" -> RunPump
      [] e.s = "TIMER" -> TimerFires
      [] e.s = "FINISH_FLUSH" ->
            FinishFlush /\ job'.fin = IF e.ok = 0 THEN "ok" ELSE FailOf(e.ok)
      [] e.s = "FINISH_CHECK" -> FinishCheck
      [] e.s = "START" -> Command(e, Start)
      [] e.s = "PAUSE" -> Command(e, PauseCmd)
      [] e.s = "RESUME" -> Command(e, Resume)
      [] e.s = "COMPLETE" -> Command(e, Complete)
      [] e.s = "FINALIZE" -> Command(e, Finalize)
      [] e.s = "CANCEL" -> Command(e, Cancel)
      [] e.s = "FORCE_CANCEL" -> Command(e, ForceCancel)
      [] e.s = "SET_COPY_MODE" ->
            IF e.a = 1 /\ job.mode = "write-blocking" THEN UNCHANGED vars
            ELSE Command(e, SetWriteBlocking)
      [] e.s = "SET_SPEED" -> Command(e, SetSpeed)
      \* The persistent write-intent bitmap (DESIGN 2.10): WriteIntents.begin and
      \* end around a guest write, MirrorJob.clearPass.  They change nothing this
      \* spec has; PersistentBitmap.tla models them (WStart..WEnd, Clear*).
      [] e.s \in {"INTENT_BEGIN", "INTENT_END", "CLEAR_PASS"} -> UNCHANGED vars
      [] OTHER -> FALSE

(* What the recorder saw right after the step.                             *)
Observed(e) ==
    /\ dirty' = e.dirty
    /\ claimed' = e.claimed
    /\ job'.st = e.st

TraceInit == Init /\ i = 1

TraceNext ==
    \/ /\ i <= Len(Trace)
       /\ StepOf(Ev)
       /\ Observed(Ev)
       /\ i' = i + 1
    \/ /\ Tick
       /\ UNCHANGED i

TraceSpec == TraceInit /\ [][TraceNext]_TraceVars

(* Violated exactly when the whole trace was matched.                      *)
TraceNotFinished == i <= Len(Trace)
=============================================================================
