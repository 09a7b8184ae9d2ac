------------------------------ MODULE GuestGate ------------------------------
(***************************************************************************)
(* The striped guest gate (dev.handoff.mirror.GuestGate) at the grain of   *)
(* the code: every action is one volatile access of the Java, and names    *)
(* it with a machine-checked tag (specs/README.md, SpecMapTest).           *)
(*                                                                         *)
(* The gate counts the guest operations inside the mirror filter in        *)
(* striped cells (one counter per stripe; a thread's stripe is its id      *)
(* masked, so several threads may share a cell) and holds new ones out     *)
(* with a separate flag, closed.  What races with what:                    *)
(*   tryEnter:  add 1 to the thread's cell (announce) -> read closed: open *)
(*              -> inside; closed -> back out through exit, then wait in   *)
(*              awaitOpen (a read of closed that finds it clear) and retry *)
(*   exit:      subtract 1 from the cell -> read closed -> if closed, sum  *)
(*              the cells, one volatile load per step -> if the sum is 0,  *)
(*              run onDrained                                              *)
(*   the job (MirrorJob, under its lock, so one closer):                   *)
(*     close:     store closed = true -> sum the cells (true: drained)     *)
(*     isDrained: read closed -> sum the cells                             *)
(*     open:      store closed = false (then wakes the waiters)            *)
(* Each side of the gate writes first and reads the other side's variable  *)
(* after (a Dekker pair): every access is volatile, so they lie in one     *)
(* order consistent with each thread's program order, which is what the    *)
(* interleaving of this spec is.  So either a guest's check sees closed,   *)
(* or the closer's read of that guest's cell sees its announce.            *)
(*                                                                         *)
(* What it checks:                                                         *)
(*   DrainedMeansEmpty (safety): when close or the job's isDrained         *)
(*     concludes "drained", no guest that passed the check is inside, and  *)
(*     the flag is still set, so none passes it before the next open.      *)
(*   NoLostDrain (liveness): with the gate closed and staying closed, once *)
(*     every guest is out, a drained signal comes (close returned true, or *)
(*     an exit ran onDrained) after the last one left, unless the job's    *)
(*     isDrained concluded first: the job, which otherwise learns of the   *)
(*     drain only from them, is not left waiting.                          *)
(*   Refinement: this spec implements AtomicGate.tla, the gate as          *)
(*     MirrorCopy.tla models it (an entry and an exit one step each).      *)
(*                                                                         *)
(* The refinement, and why MirrorCopy.tla keeps GuestEnter and Exit        *)
(* atomic.  Under the mapping below, an entry takes effect at its check    *)
(* (the read of closed that finds it clear: AtomicGate's Enter, which      *)
(* needs the gate open), an exit at its cell's decrement (Exit), close and *)
(* open at their stores, and the job's "drained" at the last load of its   *)
(* sum (Conclude, which needs the gate closed and nobody inside); every    *)
(* other step (an announce, a check that finds the gate closed and the     *)
(* back-out it starts, the loads of a sum, onDrained, the waiter's read)   *)
(* leaves the atomic gate unchanged.  TLC checks Spec => AG!Spec on the    *)
(* models.  What the atomic gate does not say is who runs onDrained: here  *)
(* it may run on an exit other than the last (a back-out's), or on two     *)
(* exits.  MirrorCopy's onDrained queues a pump: one pump more runs only   *)
(* advanceLocked (Advance, the end of every section), and NoLostDrain      *)
(* shows that one comes.  Trace validation (MirrorTraceTest) records each  *)
(* tryEnter and each exit between MirrorTrace's begin and end, which a     *)
(* recorder makes atomic, and the job's calls inside its sections: a       *)
(* traced run serializes them, and a serialized striped gate is exactly    *)
(* the atomic one (an exit's sum is 0 exactly when it was the last one     *)
(* inside, and a back-out's exactly when nobody is inside).                *)
(*                                                                         *)
(* Broken variants (the constant Bug; each has an MC*_bug.cfg that fails): *)
(*   "EntryChecksBeforeAnnounce"  tryEnter reads closed before its cell's  *)
(*                                 add: a close in between counts nobody   *)
(*                                 (DrainedMeansEmpty)                     *)
(*   "CloseSumsBeforeClosing"     close sums the cells, then sets closed:  *)
(*                                 an entry in between passes uncounted    *)
(*                                 (DrainedMeansEmpty)                     *)
(*   "ExitSkipsDrainedCheck"      exit never reads closed nor runs         *)
(*                                 onDrained: the last guest out of a      *)
(*                                 closed gate tells nobody (NoLostDrain)  *)
(* Each _bug model's counterexample, drawn as a sequence diagram:          *)
(* specs/counterexamples/MC<Spec>_<Variant>_bug.md.                        *)
(*                                                                         *)
(* Abstractions: the lock and condition of awaitOpen are one read of       *)
(* closed that can only find it clear (a waiter sleeps while it is set;    *)
(* open's signalAll under the lock loses no wake-up: WakeUpLincheckTest);  *)
(* the sum's loop reads the cells in index order, one per step, and keeps  *)
(* the partial sum in the thread's state, as the Java does, but only as 0  *)
(* or more than 0 (all that decides anything).                             *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS
    Guests,      \* guest threads
    NCells,      \* stripes: cells 1..NCells
    CellOf,      \* [Guests -> 1..NCells]: a thread's stripe (its id masked)
    MaxEntries,  \* operations per guest thread (a bound for TLC; a retry after
                 \* awaitOpen is the same operation)
    MaxCloses,   \* close calls by the job (a bound for TLC)
    Bug          \* "none" or one broken variant (see above)

Cells == 1..NCells

ASSUME NCells \in Nat \ {0}
ASSUME CellOf \in [Guests -> Cells]
ASSUME MaxEntries \in Nat /\ MaxCloses \in Nat
ASSUME Bug \in {"none", "EntryChecksBeforeAnnounce", "CloseSumsBeforeClosing",
                "ExitSkipsDrainedCheck"}

VARIABLES
    cells,     \* GuestGate.cells: [Cells -> Nat], one counter per stripe
    closed,    \* GuestGate.closed
    gs,        \* [Guests -> [pc, back, sum, next]]: each guest thread in
               \* tryEnter, exit (back: a back-out) and awaitOpen; sum and
               \* next: its sum so far and the cell it loads next
    job,       \* [pc, sum, next]: MirrorJob calling close, isDrained, open
    signalled, \* ghost: a drained signal (close returned true, or an exit
               \* ran onDrained) since the last close, announce and decrement
    entries,   \* [Guests -> Nat]: operations started so far
    closes     \* close calls so far

vars == <<cells, closed, gs, job, signalled, entries, closes>>

(* A guest outside the gate (idle: its next operation may call tryEnter;   *)
(* held: it backed out and waits in awaitOpen; retry: awaitOpen returned   *)
(* and it calls tryEnter again), its other fields reset so that they do    *)
(* not tell otherwise equal states apart.                                  *)
Out(pc) == [pc |-> pc, back |-> FALSE, sum |-> 0, next |-> 1]

(* Where an exit returns to: the caller's next operation, or (a back-out)  *)
(* awaitOpen.                                                              *)
Done(g) == Out(IF gs[g].back THEN "held" ELSE "idle")

(* A thread starting a sum: sumCells' local sum, at cell 1.                *)
Summing(r, pc) == [r EXCEPT !.pc = pc, !.sum = 0, !.next = 1]

(* Only whether a sum is 0 decides anything (cells never go below 0): a    *)
(* partial sum is kept as 0 or 1 (more than 0), so that states that differ *)
(* only by its value are one.                                              *)
Min1(n) == IF n > 0 THEN 1 ELSE 0

(* One load of a sum (GuestGate.sumCells: sum += lvCell(i)).  Last(r): it  *)
(* loads the last cell; Total(r): the sum it then returns.                 *)
Last(r) == r.next = NCells
Loaded(r) == [r EXCEPT !.sum = Min1(r.sum + cells[r.next]), !.next = r.next + 1]
Total(r) == Min1(r.sum + cells[r.next])

(* The guests that passed the check (or, EntryChecksBeforeAnnounce, found  *)
(* the gate open before they announced) and have not left.                 *)
Passed == {g \in Guests : gs[g].pc \in {"inside", "announce"}}

(* The guests counted in a cell: announced, not yet decremented.           *)
Counted(c) == {g \in Guests : CellOf[g] = c /\ gs[g].pc \in {"check", "inside", "backout"}}

TypeOK ==
    /\ cells \in [Cells -> Nat]
    /\ closed \in BOOLEAN
    /\ \A g \in Guests :
          /\ gs[g].pc \in {"idle", "retry", "announce", "check", "inside", "backout",
                            "exitRead", "exitSum", "onDrained", "held"}
          /\ gs[g].back \in BOOLEAN
          /\ gs[g].sum \in {0, 1} /\ gs[g].next \in Cells
    /\ job.pc \in {"open", "closeSum", "closeStore", "closed", "drainSum", "drained"}
    /\ job.sum \in {0, 1} /\ job.next \in Cells
    /\ signalled \in BOOLEAN
    /\ entries \in [Guests -> 0..MaxEntries]
    /\ closes \in 0..MaxCloses

Init ==
    /\ cells = [c \in Cells |-> 0]
    /\ closed = FALSE
    /\ gs = [g \in Guests |-> Out("idle")]
    /\ job = [pc |-> "open", sum |-> 0, next |-> 1]
    /\ signalled = FALSE
    /\ entries = [g \in Guests |-> 0]
    /\ closes = 0

---------------------------------------------------------------------------
(* A guest: GuestGate.tryEnter, exit, awaitOpen.                           *)

(* tryEnter's first step: a new operation of a guest that has some left    *)
(* (MaxEntries), or the retry after awaitOpen (MirrorFilter.enterGate's    *)
(* loop), which is the same operation.                                     *)
Starts(g) ==
    \/ gs[g].pc = "idle" /\ entries[g] < MaxEntries
       /\ entries' = [entries EXCEPT ![g] = @ + 1]
    \/ gs[g].pc = "retry" /\ UNCHANGED entries

(* tryEnter: getAndAddCell(mine, +1), the announce: the guest's write of   *)
(* its Dekker pair, before its read of closed.  A new entry clears the     *)
(* ghost signalled: a drain signal must come after it.  Broken             *)
(* (EntryChecksBeforeAnnounce): the check came first and found the gate    *)
(* open, so the guest is inside without reading closed again.              *)
(* @java GuestGate.tryEnter:154-154 "getAndAddCell(stripe(Thread.currentThread().getId()), 1L);" *)
Announce(g) ==
    /\ IF Bug = "EntryChecksBeforeAnnounce"
         THEN /\ gs[g].pc = "announce"
              /\ gs' = [gs EXCEPT ![g].pc = "inside"]
              /\ UNCHANGED entries
         ELSE /\ Starts(g)
              /\ gs' = [gs EXCEPT ![g].pc = "check"]
    /\ cells' = [cells EXCEPT ![CellOf[g]] = @ + 1]
    /\ signalled' = FALSE
    /\ UNCHANGED <<closed, job, closes>>

(* tryEnter: lvClosed(), after the announce.  Clear: the guest is inside   *)
(* (the atomic gate's Enter); set: it backs out through exit, so that the  *)
(* closer, whose sum may have counted it, does not wait for it.  Broken    *)
(* (EntryChecksBeforeAnnounce): tryEnter's first step; set, it returns     *)
(* false with nothing to undo; clear, it announces next.                   *)
(* @java GuestGate.tryEnter:155-155 "if (!lvClosed()) {" *)
Check(g) ==
    /\ IF Bug = "EntryChecksBeforeAnnounce"
         THEN /\ Starts(g)
              /\ gs' = [gs EXCEPT ![g].pc = IF closed THEN "held" ELSE "announce"]
         ELSE /\ gs[g].pc = "check"
              /\ gs' = [gs EXCEPT ![g].pc = IF closed THEN "backout" ELSE "inside",
                                  ![g].back = closed]
              /\ UNCHANGED entries
    /\ UNCHANGED <<cells, closed, job, signalled, closes>>

(* exit: getAndAddCell(mine, -1), on the thread that entered (its cell):   *)
(* the operation leaves (the atomic gate's Exit), its work published to    *)
(* whoever sums the cell after.  It clears the ghost signalled: a drain    *)
(* signal must come after the last guest left.  Broken                     *)
(* (ExitSkipsDrainedCheck): exit ends here, never reading closed.          *)
(* @java GuestGate.exit:167-167 "getAndAddCell(stripe(Thread.currentThread().getId()), -1L);" *)
ExitDec(g) ==
    /\ gs[g].pc \in {"inside", "backout"}
    /\ cells' = [cells EXCEPT ![CellOf[g]] = @ - 1]
    /\ gs' = [gs EXCEPT ![g] = IF Bug = "ExitSkipsDrainedCheck" THEN Done(g)
                                ELSE [@ EXCEPT !.pc = "exitRead"]]
    /\ signalled' = FALSE
    /\ UNCHANGED <<closed, job, entries, closes>>

(* exit: lvClosed(), after the decrement.  Set: the exit sums the cells    *)
(* (this read is the last exits' half of the drain: the exit whose         *)
(* decrement comes last reads closed and sums after every other one).      *)
(* Clear: the exit returns (a close after this read sums after the         *)
(* decrement).                                                             *)
(* @java GuestGate.exit:168-168 "if (lvClosed() && sumCells() == 0) {" *)
ExitRead(g) ==
    /\ gs[g].pc = "exitRead"
    /\ gs' = [gs EXCEPT ![g] = IF closed THEN Summing(@, "exitSum") ELSE Done(g)]
    /\ UNCHANGED <<cells, closed, job, signalled, entries, closes>>

(* exit: sumCells(), one cell per step; a sum of 0 runs onDrained.         *)
(* @java GuestGate.sumCells:233-233 "sum += lvCell(i);" *)
ExitSum(g) ==
    LET r == gs[g] IN
    /\ r.pc = "exitSum"
    /\ gs' = [gs EXCEPT ![g] = IF ~Last(r) THEN Loaded(r)
                                ELSE IF Total(r) = 0
                                     THEN [r EXCEPT !.pc = "onDrained", !.sum = 0, !.next = 1]
                                     ELSE Done(g)]
    /\ UNCHANGED <<cells, closed, job, signalled, entries, closes>>

(* exit: onDrained.run(): the drained signal (MirrorJob.onGuestsDrained    *)
(* queues a pump, which calls isDrained).  It may run on more than one     *)
(* exit, and on a back-out's: it must be idempotent.                       *)
(* @java GuestGate.exit:169-169 "onDrained.run();" *)
OnDrained(g) ==
    /\ gs[g].pc = "onDrained"
    /\ signalled' = TRUE
    /\ gs' = [gs EXCEPT ![g] = Done(g)]
    /\ UNCHANGED <<cells, closed, job, entries, closes>>

(* awaitOpen: the read of closed under the lock that finds it clear (while *)
(* it is set the waiter sleeps; open signals under the same lock).  The    *)
(* guest then retries tryEnter (MirrorFilter.enterGate's loop).            *)
(* @java GuestGate.awaitOpen:213-213 "while (lvClosed()) {" *)
AwaitOpen(g) ==
    /\ gs[g].pc = "held" /\ ~closed
    /\ gs' = [gs EXCEPT ![g] = Out("retry")]
    /\ UNCHANGED <<cells, closed, job, signalled, entries, closes>>

---------------------------------------------------------------------------
(* The job: MirrorJob calls close, isDrained and open under its lock, so   *)
(* one after another (MirrorJob.beginDrainLocked, advanceLocked,           *)
(* finishDrain, concludeLocked, pauseLocked).                              *)

(* close: svClosed(true), the closer's write of its Dekker pair, before    *)
(* its sum.  A close clears the ghost signalled.  Broken                   *)
(* (CloseSumsBeforeClosing): the sum comes first, the store after it.      *)
(* @java GuestGate.close:179-179 "svClosed(true);" *)
Close ==
    /\ job.pc = "open" /\ closes < MaxCloses
    /\ closes' = closes + 1
    /\ closed' = IF Bug = "CloseSumsBeforeClosing" THEN closed ELSE TRUE
    /\ job' = Summing(job, "closeSum")
    /\ signalled' = FALSE
    /\ UNCHANGED <<cells, gs, entries>>

(* The end of close (its result) or of isDrained: drained (a signal, for   *)
(* close) or not.                                                          *)
Concluded(total, isClose) ==
    /\ job' = [pc |-> IF total = 0 THEN "drained" ELSE "closed", sum |-> 0, next |-> 1]
    /\ signalled' = (signalled \/ (isClose /\ total = 0))

(* close: sumCells(), one cell per step; 0: close returns true (MirrorJob  *)
(* calls isDrained next in the same section, which sums again).  Broken    *)
(* (CloseSumsBeforeClosing): the sum ends in the store.                    *)
(* @java GuestGate.close:180-180 "return sumCells() == 0;" *)
(* @java GuestGate.sumCells:233-233 "sum += lvCell(i);" *)
CloseSum ==
    /\ job.pc = "closeSum"
    /\ IF ~Last(job)
         THEN job' = Loaded(job) /\ UNCHANGED signalled
         ELSE IF Bug = "CloseSumsBeforeClosing"
              THEN job' = [job EXCEPT !.pc = "closeStore", !.sum = Total(job)]
                   /\ UNCHANGED signalled
              ELSE Concluded(Total(job), TRUE)
    /\ UNCHANGED <<cells, closed, gs, entries, closes>>

(* CloseSumsBeforeClosing's close: the store of closed after its sum, and  *)
(* the result of that sum.                                                 *)
(* @bug-only: the broken close's store, after its sum *)
CloseStore ==
    /\ job.pc = "closeStore"
    /\ closed' = TRUE
    /\ Concluded(job.sum, TRUE)
    /\ UNCHANGED <<cells, gs, entries, closes>>

(* isDrained (MirrorJob.advanceLocked, finishDrain): lvClosed(), then the  *)
(* sum.  The job calls it only while it holds the gate closed.             *)
(* @java GuestGate.isDrained:200-200 "return lvClosed() && sumCells() == 0;" *)
DrainRead ==
    /\ job.pc = "closed"
    /\ job' = IF closed THEN Summing(job, "drainSum") ELSE job
    /\ UNCHANGED <<cells, closed, gs, signalled, entries, closes>>

(* isDrained: sumCells(), one cell per step; 0: the job concludes drained  *)
(* (and ends the drain: MirrorJob.concludeLocked).                         *)
(* @java GuestGate.sumCells:233-233 "sum += lvCell(i);" *)
DrainSum ==
    /\ job.pc = "drainSum"
    /\ IF ~Last(job)
         THEN job' = Loaded(job) /\ UNCHANGED signalled
         ELSE Concluded(Total(job), FALSE)
    /\ UNCHANGED <<cells, closed, gs, entries, closes>>

(* open: svClosed(false), publishing the route written before it           *)
(* (MirrorJob.concludeLocked) to every check that reads it; then           *)
(* signalAll under the lock (AwaitOpen).  The job opens a drained gate     *)
(* when it concludes, or a closed one when it pauses.                      *)
(* @java GuestGate.open:185-185 "svClosed(false);" *)
Open ==
    /\ job.pc \in {"closed", "drained"}
    /\ closed' = FALSE
    /\ job' = [pc |-> "open", sum |-> 0, next |-> 1]
    /\ UNCHANGED <<cells, gs, signalled, entries, closes>>

Next ==
    \/ \E g \in Guests :
          \/ Announce(g) \/ Check(g) \/ ExitDec(g) \/ ExitRead(g)
          \/ ExitSum(g) \/ OnDrained(g) \/ AwaitOpen(g)
    \/ Close \/ CloseSum \/ CloseStore \/ DrainRead \/ DrainSum \/ Open

Spec == Init /\ [][Next]_vars

(* Fairness, weak: a thread inside tryEnter, exit or awaitOpen takes its   *)
(* next step, and the job finishes a close or an isDrained it started.     *)
(* Nothing forces a guest to start an operation (tryEnter from idle), nor  *)
(* the job to close, call isDrained or open.  (A busy guest has one step   *)
(* enabled at a time, or none while it waits at a closed gate: one weak    *)
(* fairness per guest is one per step.)                                    *)
GuestStep(g) ==
    \/ Announce(g) \/ Check(g) \/ ExitDec(g) \/ ExitRead(g) \/ ExitSum(g)
    \/ OnDrained(g) \/ AwaitOpen(g)

Fairness ==
    /\ \A g \in Guests : WF_vars(GuestStep(g) /\ gs[g].pc # "idle")
    /\ WF_vars(CloseSum \/ CloseStore \/ DrainSum)

FairSpec == Spec /\ Fairness

---------------------------------------------------------------------------
(* Properties.                                                             *)

(* Each cell counts its guests that announced and have not decremented:    *)
(* never below zero (an exit runs on the thread that entered).             *)
CellsCountTheirGuests ==
    \A c \in Cells : cells[c] = Cardinality(Counted(c))

(* When close or the job's isDrained concludes "drained", no guest that    *)
(* passed the check is inside, and the gate is still closed: none passes   *)
(* the check until the job opens it.                                       *)
DrainedMeansEmpty ==
    job.pc = "drained" => closed /\ Passed = {}

(* Every guest is out: none passed the check or is counted in a cell       *)
(* (exits may still be reading closed and summing).                        *)
AllOut == \A g \in Guests : gs[g].pc \in {"idle", "retry", "held", "exitRead", "exitSum", "onDrained"}

(* With the gate closed and staying closed, once every guest is out the    *)
(* job learns it: a drained signal comes after the last guest left (close  *)
(* returns true, or an exit runs onDrained), unless the job's own          *)
(* isDrained concluded "drained" first.                                    *)
NoLostDrain == (closed /\ AllOut) ~> (signalled \/ job.pc = "drained" \/ ~closed)

(* The gate as MirrorCopy.tla sees it: an entry takes effect at the check  *)
(* that finds the gate open, an exit at its decrement, the job's "drained" *)
(* at the last load of its sum.                                            *)
AG == INSTANCE AtomicGate WITH
        gateClosed <- closed,
        inside <- {g \in Guests : gs[g].pc = "inside"},
        concluded <- job.pc = "drained"

(* Spec refines the atomic gate (checked as a temporal property).          *)
Refinement == AG!Spec
=============================================================================
