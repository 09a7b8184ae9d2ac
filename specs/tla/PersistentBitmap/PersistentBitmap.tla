-------------------------- MODULE PersistentBitmap --------------------------
(***************************************************************************)
(* The persistent write-intent bitmap of docs/DESIGN.md section 2.10: what *)
(* makes a mirror job that crashes, or loses power, resume by copying only *)
(* the regions whose bit survived, and still end with target = source.     *)
(*                                                                         *)
(* Each region has a source and a target, each with a live content (what a *)
(* read returns) and a durable one (what survives a crash: the content at  *)
(* its last flush).  The bitmap file has live bits (written) and durable   *)
(* bits (synced).  A crash keeps, per region and per device, either the    *)
(* live or the durable content (an unflushed write is lost or not, torn    *)
(* between regions), restarts the job, and the job resumes from the bits   *)
(* that survived (WriteIntents.forEachPersistedRange marks them dirty).    *)
(*                                                                         *)
(* What races with what:                                                   *)
(*   guest write:  count the write (WriteIntents.begin's getAndAdd) ->     *)
(*                 read the durable bit -> [set the bit and sync it] ->    *)
(*                 write the source -> mark the chunk dirty -> end         *)
(*   copier:       claim + clear dirty -> read source -> write target ->   *)
(*                 release  (Copier, CopyOperation; as in MirrorCopy.tla)  *)
(*   clear pass:   candidates (bit set, no write in progress, clean and    *)
(*                 unclaimed) -> flush source and target -> per candidate: *)
(*                 clear the durable bit -> read the write count -> clear  *)
(*                 the bit (written, not synced) or restore it             *)
(*                                                                         *)
(* The two rules, each an order the broken variants below break:          *)
(*   1. durable bit before the write (so before the acknowledgement);      *)
(*   2. clear only after the copy is durable: the target flushed, and the  *)
(*      source too (else a crash can leave the target ahead of a source    *)
(*      that lost an unflushed write), and only if no write started since. *)
(*                                                                         *)
(* The invariant CrashLosesNoDifference: a region where some crash outcome *)
(* leaves source and target different has its bit in the file both live   *)
(* and synced, so every outcome resumes with it set.  CleanRegionInSync is *)
(* the mirror's key invariant (DESIGN 3.6), checked across restarts.       *)
(*                                                                         *)
(* Broken variants (the constant Bug; each has an MC*_bug.cfg that fails): *)
(*   "WriteBeforeDurableBit"   the source write is issued before the bit   *)
(*                              is synced (synced after it, before the ack) *)
(*   "ClearBeforeDurableCopy"  the clear pass does not flush the target    *)
(*   "ClearWithoutSourceFlush" the clear pass flushes the target only      *)
(*   "ClearIgnoresWriters"     a clear does not re-check the write count   *)
(* Each _bug model's counterexample, drawn as a sequence diagram:          *)
(* specs/counterexamples/MC<Spec>_<Variant>_bug.md.                        *)
(*                                                                         *)
(* Abstractions: one chunk per region; one guest writer, one copy at a     *)
(* time and one clear pass (their steps interleave freely); a batch of the *)
(* group commit is one step (batching decides how many syncs, not which    *)
(* bits are durable); copy failures and write-blocking writes are left to  *)
(* MirrorCopy.tla, whose orders this spec reuses unchanged.                *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS
    Regions,     \* the regions of the disk (one bit each)
    Values,      \* contents a guest write may put in a region (naturals > 1)
    MaxCrashes,  \* crashes (power losses) a run may see
    Bug          \* "none" or one broken variant (see above)

ASSUME Values \subseteq (Nat \ {0, 1}) /\ Values # {}
ASSUME MaxCrashes \in Nat
ASSUME Bug \in {"none", "WriteBeforeDurableBit", "ClearBeforeDurableCopy",
                "ClearWithoutSourceFlush", "ClearIgnoresWriters"}

VARIABLES
    srcLive, srcDur,   \* source content per region: live, durable
    tgtLive, tgtDur,   \* target content per region: live, durable
    bitFile, bitDisk,  \* regions whose bit the file holds: written, synced
    bitMem,            \* WriteIntents.bits: the bits the job wants on file
    durMem,            \* WriteIntents.durable: the bits the job knows synced
    dirty, claimed,    \* the in-memory dirty bitmap and claims
    active,            \* regions with a write in progress (count > 0)
    fresh,             \* candidates to which no write has started since
    w,                 \* the guest writer: [pc, r, v]
    c,                 \* the copier: [pc, r, v]
    p,                 \* the clear pass: [pc, cands, r]
    crashes

vars == <<srcLive, srcDur, tgtLive, tgtDur, bitFile, bitDisk, bitMem, durMem,
          dirty, claimed, active, fresh, w, c, p, crashes>>

Content == {0, 1} \cup Values

(* A process between operations; its fields are reset so that they do not  *)
(* tell otherwise equal states apart.                                      *)
Idle == [pc |-> "idle", r |-> 0, v |-> 0]

TypeOK ==
    /\ srcLive \in [Regions -> Content] /\ srcDur \in [Regions -> Content]
    /\ tgtLive \in [Regions -> Content] /\ tgtDur \in [Regions -> Content]
    /\ bitFile \subseteq Regions /\ bitDisk \subseteq Regions
    /\ bitMem \subseteq Regions /\ durMem \subseteq bitMem
    /\ dirty \subseteq Regions /\ claimed \subseteq Regions
    /\ active \subseteq Regions /\ fresh \subseteq Regions
    /\ w.pc \in {"idle", "check", "sync", "write", "lateSync", "mark", "end"}
    /\ c.pc \in {"idle", "read", "write", "release"}
    /\ p.pc \in {"idle", "flush", "clear", "check"}
    /\ crashes \in 0..MaxCrashes

(* A new job for a full copy: the source holds data (1), the target not    *)
(* yet (0); FileBitmapStore.create(allDirty) sets and syncs every bit, and *)
(* the job starts with every chunk dirty.                                  *)
Init ==
    /\ srcLive = [r \in Regions |-> 1] /\ srcDur = srcLive
    /\ tgtLive = [r \in Regions |-> 0] /\ tgtDur = tgtLive
    /\ bitFile = Regions /\ bitDisk = Regions
    /\ bitMem = Regions /\ durMem = Regions
    /\ dirty = Regions /\ claimed = {}
    /\ active = {} /\ fresh = {}
    /\ w = Idle
    /\ c = Idle
    /\ p = [pc |-> "idle", cands |-> {}, r |-> 0]
    /\ crashes = 0

---------------------------------------------------------------------------
(* The guest writer (MirrorFilter.mutate around its write path).           *)

(* WriteIntents.begin: getAndAddWrites(r, ONE_STARTED + 1).  The           *)
(* write is counted before the durable bit is read: the writer's half of   *)
(* the store-load pair with ClearBit/ClearCheck.                           *)
(* @java WriteIntents.begin:198-198 "getAndAddWrites(r, ONE_STARTED + 1);" *)
WStart(r, v) ==
    /\ w.pc = "idle"
    /\ active' = active \cup {r}
    /\ fresh' = fresh \ {r}
    /\ w' = [pc |-> "check", r |-> r, v |-> v]
    /\ UNCHANGED <<srcLive, srcDur, tgtLive, tgtDur, bitFile, bitDisk, bitMem,
                   durMem, dirty, claimed, c, p, crashes>>

(* WriteIntents.begin: lvDurable(...); if the bit is not                   *)
(* durable, makeDurable sets it in bits.  Broken (WriteBeforeDurableBit):  *)
(* the source write goes first and the bit is synced after it.             *)
(* @java WriteIntents.begin:201-201 "allDurable = (lvDurable((int) (r >>> 6)) & (1L << r)) != 0;" *)
(* @java WriteIntents.makeDurable:233-233 "bits[(int) (r >>> 6)] |= 1L << r;" *)
WCheck ==
    /\ w.pc = "check"
    /\ IF w.r \in durMem
         THEN /\ w' = [w EXCEPT !.pc = "write"]
              /\ UNCHANGED bitMem
         ELSE /\ bitMem' = bitMem \cup {w.r}
              /\ w' = [w EXCEPT !.pc = IF Bug = "WriteBeforeDurableBit"
                                         THEN "write" ELSE "sync"]
    /\ UNCHANGED <<srcLive, srcDur, tgtLive, tgtDur, bitFile, bitDisk, durMem,
                   dirty, claimed, active, fresh, c, p, crashes>>

(* WriteIntents.runBatchLocked(true): the pending words written, the file  *)
(* synced (everything written so far becomes durable, clears included),    *)
(* then the batch's bits published in durable.  A batch takes the lock     *)
(* that a clear holds from its ClearBit to its ClearCheck.                 *)
SyncBatch ==
    /\ p.pc # "check"
    /\ bitFile' = bitFile \cup bitMem
    /\ bitDisk' = bitFile \cup bitMem
    /\ durMem' = durMem \cup bitMem

(* @java WriteIntents.runBatchLocked:296-296 "store.sync();" *)
WSync ==
    /\ w.pc \in {"sync", "lateSync"}
    /\ SyncBatch
    /\ w' = [w EXCEPT !.pc = IF w.pc = "sync" THEN "write" ELSE "mark"]
    /\ UNCHANGED <<srcLive, srcDur, tgtLive, tgtDur, bitMem, dirty, claimed,
                   active, fresh, c, p, crashes>>

(* MirrorFilter: the source write (apply(source, ...)).                    *)
(* @java MirrorFilter.writeBackground:419-419 "apply(source, op, offset, length, src);" *)
WWrite ==
    /\ w.pc = "write"
    /\ srcLive' = [srcLive EXCEPT ![w.r] = w.v]
    /\ w' = [w EXCEPT !.pc = IF Bug = "WriteBeforeDurableBit" /\ w.r \notin durMem
                               THEN "lateSync" ELSE "mark"]
    /\ UNCHANGED <<srcDur, tgtLive, tgtDur, bitFile, bitDisk, bitMem, durMem,
                   dirty, claimed, active, fresh, c, p, crashes>>

(* MirrorFilter.writeBackground: bitmap.markRange after the write (order 1).*)
(* @java MirrorFilter.writeBackground:432-432 "boolean newlyDirty = bitmap.markRange(offset, length);" *)
WMark ==
    /\ w.pc = "mark"
    /\ dirty' = dirty \cup {w.r}
    /\ w' = [w EXCEPT !.pc = "end"]
    /\ UNCHANGED <<srcLive, srcDur, tgtLive, tgtDur, bitFile, bitDisk, bitMem,
                   durMem, claimed, active, fresh, c, p, crashes>>

(* WriteIntents.end: getAndAddWrites(r, -1); the write returns.            *)
(* @java WriteIntents.end:223-223 "getAndAddWrites(r, -1L);" *)
WEnd ==
    /\ w.pc = "end"
    /\ active' = active \ {w.r}
    /\ w' = Idle
    /\ UNCHANGED <<srcLive, srcDur, tgtLive, tgtDur, bitFile, bitDisk, bitMem,
                   durMem, dirty, claimed, fresh, c, p, crashes>>

---------------------------------------------------------------------------
(* The copier (Copier.claimRunLocked, CopyOperation), as in MirrorCopy.tla. *)

(* @java Copier.claimRunLocked:294-294 "bitmap.testAndClear(first);" *)
CClaim(r) ==
    /\ c.pc = "idle" /\ r \in dirty /\ r \notin claimed
    /\ claimed' = claimed \cup {r}
    /\ dirty' = dirty \ {r}
    /\ c' = [c EXCEPT !.pc = "read", !.r = r]
    /\ UNCHANGED <<srcLive, srcDur, tgtLive, tgtDur, bitFile, bitDisk, bitMem,
                   durMem, active, fresh, w, p, crashes>>

(* @java CopyOperation.readSource:122-122 "source.read(pos, buffer);" *)
CRead ==
    /\ c.pc = "read"
    /\ c' = [c EXCEPT !.pc = "write", !.v = srcLive[c.r]]
    /\ UNCHANGED <<srcLive, srcDur, tgtLive, tgtDur, bitFile, bitDisk, bitMem,
                   durMem, dirty, claimed, active, fresh, w, p, crashes>>

(* @java CopyOperation.writeTarget:207-207 "target.write(at, slice(pos, end));" *)
CWrite ==
    /\ c.pc = "write"
    /\ tgtLive' = [tgtLive EXCEPT ![c.r] = c.v]
    /\ c' = [c EXCEPT !.pc = "release"]
    /\ UNCHANGED <<srcLive, srcDur, tgtDur, bitFile, bitDisk, bitMem, durMem,
                   dirty, claimed, active, fresh, w, p, crashes>>

(* @java Copier.release:442-442 "claims.release(op.firstChunk, op.lastChunk);" *)
CRelease ==
    /\ c.pc = "release"
    /\ claimed' = claimed \ {c.r}
    /\ c' = Idle
    /\ UNCHANGED <<srcLive, srcDur, tgtLive, tgtDur, bitFile, bitDisk, bitMem,
                   durMem, dirty, active, fresh, w, p, crashes>>

---------------------------------------------------------------------------
(* The clear pass (the job's timer: WriteIntents.candidates, the flushes,  *)
(* WriteIntents.clear).                                                    *)

(* WriteIntents.candidates: bit set, no write in progress, no chunk dirty  *)
(* or claimed; each with its write count (here: fresh until a write        *)
(* starts).                                                                *)
(* @java WriteIntents.candidates:364-364 "long count = lvWrites(r);" *)
ClearCandidates ==
    /\ p.pc = "idle"
    /\ LET cands == {r \in bitMem : r \notin active \cup dirty \cup claimed}
       IN /\ cands # {}
          /\ p' = [p EXCEPT !.pc = "flush", !.cands = cands]
          /\ fresh' = cands
    /\ UNCHANGED <<srcLive, srcDur, tgtLive, tgtDur, bitFile, bitDisk, bitMem,
                   durMem, dirty, claimed, active, w, c, crashes>>

(* The pass flushes the source and the target after taking the candidates:*)
(* every copy into them has returned, so the flushes make it durable on    *)
(* both sides.  Broken: ClearBeforeDurableCopy (no target flush),          *)
(* ClearWithoutSourceFlush (no source flush).                              *)
(* @java MirrorJob.clearPass:860-860 "source.flush();" *)
(* @java MirrorJob.clearPass:861-861 "target.flush();" *)
ClearFlush ==
    /\ p.pc = "flush"
    /\ srcDur' = IF Bug = "ClearWithoutSourceFlush" THEN srcDur ELSE srcLive
    /\ tgtDur' = IF Bug = "ClearBeforeDurableCopy" THEN tgtDur ELSE tgtLive
    /\ p' = [p EXCEPT !.pc = "clear"]
    /\ UNCHANGED <<srcLive, tgtLive, bitFile, bitDisk, bitMem, durMem, dirty,
                   claimed, active, fresh, w, c, crashes>>

(* WriteIntents.clear: getAndAndDurable(w, ~bit), the                      *)
(* clear's half of the store-load pair.                                    *)
(* @java WriteIntents.clear:428-428 "getAndAndDurable(w, ~bit);" *)
ClearBit(r) ==
    /\ p.pc = "clear" /\ r \in p.cands
    /\ durMem' = durMem \ {r}
    /\ p' = [p EXCEPT !.pc = "check", !.r = r, !.cands = p.cands \ {r}]
    /\ UNCHANGED <<srcLive, srcDur, tgtLive, tgtDur, bitFile, bitDisk, bitMem,
                   dirty, claimed, active, fresh, w, c, crashes>>

(* WriteIntents.clear: lvWrites(r) compared with the                       *)
(* candidate's count: unchanged, the bit is cleared and its word written   *)
(* (no sync); changed, the durable bit is restored.  Broken                *)
(* (ClearIgnoresWriters): cleared whatever the count.                      *)
(* @java WriteIntents.clear:429-429 "long now = lvWrites(r);" *)
ClearCheck ==
    /\ p.pc = "check"
    /\ IF p.r \in fresh \/ Bug = "ClearIgnoresWriters"
         THEN /\ bitMem' = bitMem \ {p.r}
              /\ bitFile' = bitFile \ {p.r}
              /\ UNCHANGED durMem
         ELSE /\ durMem' = durMem \cup {p.r}
              /\ UNCHANGED <<bitMem, bitFile>>
    /\ p' = [p EXCEPT !.pc = "clear"]
    /\ UNCHANGED <<srcLive, srcDur, tgtLive, tgtDur, bitDisk, dirty, claimed,
                   active, fresh, w, c, crashes>>

(* @java WriteIntents.clear:445-445 "return cleared;" *)
ClearDone ==
    /\ p.pc = "clear" /\ p.cands = {}
    /\ p' = [pc |-> "idle", cands |-> {}, r |-> 0]
    /\ fresh' = {}
    /\ UNCHANGED <<srcLive, srcDur, tgtLive, tgtDur, bitFile, bitDisk, bitMem,
                   durMem, dirty, claimed, active, w, c, crashes>>

---------------------------------------------------------------------------
(* The environment: a crash or power loss, and the restart that resumes.   *)

Outcomes(live, dur) == {f \in [Regions -> Content] : \A r \in Regions : f[r] \in {live[r], dur[r]}}

(* Each device keeps, per region, its live or its durable content; the     *)
(* bitmap file its written or its synced bit.  The job restarts: a new     *)
(* WriteIntents over the surviving bits, and the dirty bitmap marked from  *)
(* them (MirrorJob.start on a resumed store).                              *)
(* @env a power loss and a restart: no code of the job, which is gone.     *)
Crash ==
    /\ crashes < MaxCrashes
    /\ \E s \in Outcomes(srcLive, srcDur), t \in Outcomes(tgtLive, tgtDur),
          b \in SUBSET Regions :
          /\ \A r \in Regions : (r \in b) \in {r \in bitFile, r \in bitDisk}
          /\ srcLive' = s /\ srcDur' = s
          /\ tgtLive' = t /\ tgtDur' = t
          /\ bitFile' = b /\ bitDisk' = b /\ bitMem' = b /\ durMem' = b
          /\ dirty' = b
    /\ claimed' = {} /\ active' = {} /\ fresh' = {}
    /\ w' = Idle
    /\ c' = Idle
    /\ p' = [pc |-> "idle", cands |-> {}, r |-> 0]
    /\ crashes' = crashes + 1

Next ==
    \/ \E r \in Regions, v \in Values : WStart(r, v)
    \/ WCheck \/ WSync \/ WWrite \/ WMark \/ WEnd
    \/ \E r \in Regions : CClaim(r)
    \/ CRead \/ CWrite \/ CRelease
    \/ ClearCandidates \/ ClearFlush \/ ClearCheck \/ ClearDone
    \/ \E r \in Regions : ClearBit(r)
    \/ Crash

Spec == Init /\ [][Next]_vars

---------------------------------------------------------------------------
(* Properties.                                                             *)

(* Whatever a crash keeps of each device, a region where source and target *)
(* may then differ has its bit both written and synced: the resumed job    *)
(* copies it.                                                              *)
CrashLosesNoDifference ==
    \A r \in Regions :
        (\E s \in {srcLive[r], srcDur[r]}, t \in {tgtLive[r], tgtDur[r]} : s # t)
            => r \in bitFile \cap bitDisk

(* The mirror's key invariant (DESIGN 3.6), across restarts: a region that *)
(* is neither dirty, nor claimed, nor being written between its source     *)
(* write and its mark, has the same content on source and target.          *)
CleanRegionInSync ==
    \A r \in Regions :
        (/\ r \notin dirty /\ r \notin claimed
         /\ ~(w.pc \in {"mark", "lateSync"} /\ w.r = r))
            => srcLive[r] = tgtLive[r]
=============================================================================
