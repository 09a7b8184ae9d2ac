---------------------------- MODULE MCMirrorCopy ----------------------------
(***************************************************************************)
(* Model of MirrorCopy for TLC.  The constants come from the .cfg files    *)
(* beside this module; specs/models.json lists each with its expected      *)
(* result, and each config's first comment says what it covers:           *)
(*   MCMirrorCopy*.cfg            good models: safety, or liveness under   *)
(*                                fairness (FairSpec)                      *)
(*   MCMirrorCopy_<Variant>_bug.cfg  one broken variant each: must fail    *)
(*   MCMirrorCopy_*Large.cfg      larger constants (-Plarge-models)        *)
(***************************************************************************)
EXTENDS MirrorCopy, TLC

(* Guest threads are interchangeable: a symmetry for the safety models     *)
(* (TLC does not allow symmetry when checking liveness).                   *)
GuestSymmetry == Permutations(Guests)
=============================================================================
