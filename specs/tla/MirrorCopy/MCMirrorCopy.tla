---------------------------- MODULE MCMirrorCopy ----------------------------
(***************************************************************************)
(* Model of MirrorCopy for TLC.  The constants come from the .cfg files    *)
(* beside this module (models.json lists each with its expected result):   *)
(*   MCMirrorCopy.cfg                   background mode, safety            *)
(*   MCMirrorCopy_WriteBlocking.cfg     write-blocking, safety + liveness  *)
(*   MCMirrorCopy_Liveness.cfg          background, safety + liveness      *)
(*   MCMirrorCopy_<Variant>_bug.cfg     one broken variant each: must fail *)
(*   MCMirrorCopy_*Large.cfg            larger constants (-Plarge-models)  *)
(***************************************************************************)
EXTENDS MirrorCopy, TLC

(* Copy slots are interchangeable: a symmetry for the safety-only models   *)
(* (TLC does not allow symmetry when checking liveness).                   *)
SlotSymmetry == Permutations(Slots)
=============================================================================
