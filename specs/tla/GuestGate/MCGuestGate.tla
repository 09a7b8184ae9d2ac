---------------------------- MODULE MCGuestGate ----------------------------
(***************************************************************************)
(* Model of GuestGate for TLC.  The constants come from the .cfg files     *)
(* beside this module (models.json lists each with its result):            *)
(*   MCGuestGate.cfg                 safety, liveness and the refinement   *)
(*   MCGuestGate_Liveness.cfg        no lost drain, under fairness         *)
(*   MCGuestGate_<Variant>_bug.cfg   one broken variant each: must fail    *)
(*   MCGuestGate_Large.cfg           two operations per guest, everything  *)
(*                                   (-Plarge-models)                      *)
(* Three guest threads on two cells: g1 and g2 share cell 1 (their ids     *)
(* have the same stripe), g3 has cell 2.                                   *)
(***************************************************************************)
EXTENDS GuestGate, TLC

CONSTANTS g1, g2, g3

MCCellOf == [g \in Guests |-> IF g = g3 THEN 2 ELSE 1]

(* g1 and g2 are interchangeable: a symmetry for the safety models (TLC    *)
(* does not allow symmetry when checking liveness).                        *)
SharedCellSymmetry == Permutations({g1, g2})
=============================================================================
