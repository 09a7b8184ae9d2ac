--------------------------- MODULE TraceOwnership ---------------------------
(***************************************************************************)
(* Trace validation of Ownership: TLC checks that the spec can take        *)
(* exactly the steps real OwnedImage handles took, in several processes,   *)
(* in the order they took effect (OwnershipTraceRecorder: every step holds *)
(* a file lock shared by the processes while it acts and logs).  The      *)
(* generated module TraceData holds Trace == << [...], ... >>: the step,   *)
(* the node, whether it went through, its argument (a token), and what the *)
(* recorder saw right after it: the ownership record, and the node's       *)
(* state, epoch and newest epoch seen.  A CRASH event is a process the     *)
(* test killed (holding the same lock).  A LOSE_LOCK event is a holder's   *)
(* lock lost under it, alive: its ZooKeeper session ended at the ensemble  *)
(* (the test expired it; the ensemble deleted the ephemeral lock znode),   *)
(* recorded with what the holder and the record looked like right after,  *)
(* which LoseLock must leave as they were.  As in TraceMirrorCopy: i walks *)
(* the trace, each step takes event i with the action it names, and the    *)
(* trace is accepted iff TraceNotFinished is violated.                     *)
(***************************************************************************)
EXTENDS Ownership, TraceData, Sequences, TLC

VARIABLE i

Ev == Trace[i]

Tok(e) == IF e.owner = "none" THEN NoToken ELSE [epoch |-> e.a, owner |-> e.owner]

Lock(e, kind) == ActLock(e.n, kind, Tok(e)) /\ (pc'[e.n].s = "actRead") = e.ok

StepOf(e) ==
    CASE e.s = "ACTIVATE_LOCK" -> Lock(e, "activate")
      [] e.s = "ACCEPT_LOCK" -> Lock(e, "accept")
      [] e.s = "ABORT_LOCK" -> Lock(e, "abort")
      [] e.s = "ACT_READ" -> ActRead(e.n) /\ (pc'[e.n].s = "actCas") = e.ok
      [] e.s = "ACT_CAS" -> ActCas(e.n) /\ (st'[e.n] = "active") = e.ok
      [] e.s = "ACT_FAIL" -> ActFail(e.n)
      [] e.s = "INACTIVATE_READ" -> InRead(e.n, "inactivate") /\ (pc'[e.n].s = "inFlush") = e.ok
      [] e.s = "PREPARE_READ" -> InRead(e.n, "prepare") /\ (pc'[e.n].s = "inFlush") = e.ok
      [] e.s = "IN_FENCED" -> InFenced(e.n)
      [] e.s = "IN_FLUSH" -> InFlush(e.n)
      [] e.s = "IN_CAS" -> InCas(e.n) /\ (pc'[e.n].s = "inRelease") = e.ok
      [] e.s = "IN_RELEASE" -> InRelease(e.n)
      [] e.s = "CLOSE_INACTIVE" -> CloseInactive(e.n)
      [] e.s = "CLOSE_READ" -> CloseRead(e.n) /\ (pc'[e.n].s = "closeFlush") = e.ok
      [] e.s = "CLOSE_FLUSH" -> CloseFlush(e.n)
      [] e.s = "CLOSE_CAS" -> CloseCas(e.n)
      [] e.s = "CLOSE_END" -> CloseEnd(e.n)
      [] e.s = "WRITE_ADMIT" -> WriteAdmit(e.n, e.a = 1) /\ (pc'[e.n].s = "wrDevice") = e.ok
      [] e.s = "WRITE_DEVICE" -> WriteDevice(e.n)
      [] e.s = "FLUSH_READ" -> FlushRead(e.n) /\ (pc'[e.n].s = "flDevice") = e.ok
      [] e.s = "FLUSH_DEVICE" -> FlushDevice(e.n)
      [] e.s = "CRASH" -> Crash(e.n)
      [] e.s = "LOSE_LOCK" -> LoseLock(e.n)
      [] OTHER -> FALSE

(* What the recorder saw right after the step (a crashed node shows       *)
(* nothing; one that lost its lock is looked at as after its own steps).  *)
Observed(e) ==
    e.s # "CRASH" =>
        /\ record'.epoch = e.rec.epoch /\ record'.owner = e.rec.owner
        /\ record'.clean = e.rec.clean
        /\ st'[e.n] = e.st
        /\ epoch'[e.n] = e.epoch
        /\ newest'[e.n] = e.newest

TraceInit == Init /\ i = 1

TraceNext ==
    /\ i <= Len(Trace)
    /\ StepOf(Ev)
    /\ Observed(Ev)
    /\ i' = i + 1

(* Violated exactly when the whole trace was matched.                      *)
TraceNotFinished == i <= Len(Trace)
=============================================================================
