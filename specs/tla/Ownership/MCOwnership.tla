----------------------------- MODULE MCOwnership -----------------------------
(***************************************************************************)
(* Model of Ownership for TLC.  The constants come from the .cfg files     *)
(* beside this module (models.json lists each with its expected result):   *)
(*   MCOwnership.cfg                  two nodes, crashes and lost locks,   *)
(*                                    safety + liveness                    *)
(*   MCOwnership_<Variant>_bug.cfg    one broken variant each: must fail   *)
(*   MCOwnership_Large.cfg            three nodes (-Plarge-models)         *)
(***************************************************************************)
EXTENDS Ownership, TLC
=============================================================================
