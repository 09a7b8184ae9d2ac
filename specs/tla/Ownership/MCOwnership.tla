----------------------------- MODULE MCOwnership -----------------------------
(***************************************************************************)
(* Model of Ownership for TLC.  The constants come from the .cfg files     *)
(* beside this module; specs/models.json lists each with its expected      *)
(* result, and each config's first comment says what it covers:           *)
(*   MCOwnership*.cfg                 good models (safety, or liveness)    *)
(*   MCOwnership_<Variant>_bug.cfg    one broken variant each: must fail   *)
(*   MCOwnership_Large.cfg            larger constants (-Plarge-models)    *)
(***************************************************************************)
EXTENDS Ownership, TLC
=============================================================================
