----------------------------- MODULE AtomicGate -----------------------------
(***************************************************************************)
(* The guest gate as MirrorCopy.tla models it: an entry and an exit are    *)
(* one step each.  A guest enters only while the gate is open; the closer  *)
(* closes it, concludes "drained" only while it is closed and nobody is    *)
(* inside (MirrorCopy's Drained), and opens it again.  GuestGate.tla, the  *)
(* striped gate at the code's grain, refines this module (its property     *)
(* Refinement): that is why MirrorCopy.tla keeps GuestEnter and Exit as    *)
(* one step each.                                                          *)
(***************************************************************************)
CONSTANTS Guests

VARIABLES
    gateClosed, \* the gate holds new entries out
    inside,     \* the guests inside (entered, not yet left)
    concluded   \* the closer concluded "drained" and has not opened since

vars == <<gateClosed, inside, concluded>>

Init == gateClosed = FALSE /\ inside = {} /\ concluded = FALSE

Enter(g) ==
    /\ ~gateClosed /\ g \notin inside
    /\ inside' = inside \cup {g}
    /\ UNCHANGED <<gateClosed, concluded>>

Exit(g) ==
    /\ g \in inside
    /\ inside' = inside \ {g}
    /\ UNCHANGED <<gateClosed, concluded>>

Close ==
    /\ ~gateClosed /\ gateClosed' = TRUE
    /\ UNCHANGED <<inside, concluded>>

Conclude ==
    /\ gateClosed /\ inside = {} /\ ~concluded
    /\ concluded' = TRUE
    /\ UNCHANGED <<gateClosed, inside>>

Open ==
    /\ gateClosed /\ gateClosed' = FALSE /\ concluded' = FALSE
    /\ UNCHANGED inside

Next ==
    \/ \E g \in Guests : Enter(g) \/ Exit(g)
    \/ Close \/ Conclude \/ Open

Spec == Init /\ [][Next]_vars
=============================================================================
