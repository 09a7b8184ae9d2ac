------------------------- MODULE MCPersistentBitmap -------------------------
(***************************************************************************)
(* Model of PersistentBitmap for TLC.  The constants come from the .cfg    *)
(* files beside this module (models.json lists each with its result):      *)
(*   MCPersistentBitmap.cfg               two regions, two crashes: safety *)
(*   MCPersistentBitmap_<Variant>_bug.cfg one broken variant each: fails   *)
(***************************************************************************)
EXTENDS PersistentBitmap, TLC
=============================================================================
