-------------------------- MODULE MCLeasedOwnership --------------------------
(***************************************************************************)
(* Model of LeasedOwnership for TLC.  The constants come from the .cfg    *)
(* files beside this module; specs/models.json lists each with its        *)
(* expected result, and each config's first comment says what it covers: *)
(*   MCLeasedOwnership.cfg                 the good model (safety)         *)
(*   MCLeasedOwnership_<Variant>_bug.cfg   one broken variant each: must   *)
(*                                         fail (named after mutants/'s id)*)
(***************************************************************************)
EXTENDS LeasedOwnership, TLC
=============================================================================
