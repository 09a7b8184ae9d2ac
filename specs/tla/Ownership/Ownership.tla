------------------------------ MODULE Ownership ------------------------------
(***************************************************************************)
(* Inactivation and ownership handoff of docs/DESIGN.md section 4, at the  *)
(* grain of the kernel (OwnedImage and its parts Transitions and          *)
(* WriteAdmission, package dev.handoff.ownership): an                      *)
(* image on shared storage is held by several handles (nodes: processes or *)
(* hosts), at most one of them active.  Every action is one step a handle  *)
(* takes that another holder can observe: an OwnershipLock acquire or      *)
(* release, a RecordStore read or compare-and-write, a device write or     *)
(* flush.  What a handle does between them is local: its transitions       *)
(* (activate, inactivate, handoff, close) are serialized by its own locks  *)
(* and exclude its own I/O (WriteAdmission's drain), so each node runs one *)
(* transition or one I/O operation at a time here (pc).  Each action's     *)
(* comment names the Java it models with a machine-checked tag (see        *)
(* MirrorCopy.tla and specs/README.md).                                    *)
(*                                                                         *)
(* The protocol (the class comments of OwnedImage and Transitions):       *)
(*   activate:   lock.acquire -> drop caches, read the record (epoch e) -> *)
(*               compare-and-write record(max(e, newest seen) + 1) ->      *)
(*               ACTIVE; on a refusal, release the lock.                   *)
(*   inactivate: (drained) -> read the record, fenced? -> flush ->         *)
(*               compare-and-write record(clean) -> INACTIVE -> release.   *)
(*   write:      state check, re-read the record now and then, fenced? ->  *)
(*               device write (two steps: a raw file has no compare-and-   *)
(*               write for data, so fencing bounds, and the lock           *)
(*               prevents, a stale write: docs/OWNERSHIP.md).              *)
(*   flush:      read the record, fenced? -> device flush.                 *)
(*   A fenced handle only refuses (ImageFencedException): it stays ACTIVE  *)
(*   until inactivated (which then writes nothing and releases the lock).  *)
(*                                                                         *)
(* Data.  A write is visible on the image at once (a shared file) and      *)
(* durable after a flush; StorageLoss drops what was not flushed.          *)
(* The header cache of a handle holds what it read while ACTIVE.           *)
(*                                                                         *)
(* What races with what: management calls anything on any node; nodes     *)
(* crash (the OS releases a dead process's lock), lose their lock while    *)
(* alive (an expired lease: LoseLock, where a coordination service's       *)
(* session expiry fits too), and the storage loses unflushed data.         *)
(*                                                                         *)
(* Broken variants (the constant Bug; MC*_bug.cfg): each action that a     *)
(* variant changes names it.                                               *)
(* Each _bug model's counterexample, drawn as a sequence diagram:          *)
(* specs/counterexamples/MC<Spec>_<Variant>_bug.md.                        *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS
    Nodes,        \* the handles on the image
    Source,       \* the node that is active at first and hands off
    Destination,  \* the node the handoff goes to
    NoNode,       \* nobody holds the lock
    Commands,     \* management commands this model lets happen
    MaxWrites,    \* guest writes in a run
    MaxEpoch,     \* activations start only below this epoch
    MaxCrashes,   \* process crashes in a run
    MaxLostLocks, \* locks lost under a live node in a run
    MaxStorageLosses, \* storage restarts that lose unflushed data, in a run
    Bug           \* "none" or one broken variant

AllCommands == {"activate", "inactivate", "prepare", "accept", "abort", "close",
                "write", "flush", "read"}

ASSUME Source \in Nodes /\ Destination \in Nodes /\ Source # Destination
ASSUME NoNode \notin Nodes
ASSUME Commands \subseteq AllCommands
ASSUME Bug \in {"none", "InactivateWithoutFlush", "ActivateKeepsCache",
                "CloseInactiveWritesRecord", "ActivateWithoutLock", "NoFencing",
                "BumpWithoutCompare", "SourceKeepsLock"}

VARIABLES
    img,        \* SUBSET WriteIds: the data on the image (visible to all)
    durable,    \* SUBSET WriteIds: what a storage loss keeps
    record,     \* the OwnershipRecord: [epoch, owner, clean]
    lockHolder, \* who holds the OwnershipLock (NoNode: nobody)
    st,         \* [Nodes -> "inactive" | "active" | "closed" | "crashed"]
    epoch,      \* [Nodes -> Nat]: the epoch of the node's last activation
    newest,     \* [Nodes -> Nat]: the newest epoch it has seen (newestEpoch)
    pc,         \* [Nodes -> step record]: the transition or I/O in progress
    cache,      \* [Nodes -> [valid, data]]: the header cache
    pending,    \* [Nodes -> token or none]: a prepared, unresolved handoff
    msgs,       \* HandoffTokens management carries: [epoch, owner]
    nextWrite,  \* guest writes so far
    by,         \* ghost: [WriteIds -> Nodes \cup {NoNode}]: who wrote each write
    handedOver, \* writes acknowledged before a completed inactivation
    lockLost,   \* [Nodes -> BOOLEAN]: lost its lock since taking it
    bad,        \* ghost: the name of a forbidden step taken, or "none"
    env         \* [crashes, lost, storage]: failures so far

vars == <<img, durable, record, lockHolder, st, epoch, newest, pc, cache,
          pending, msgs, nextWrite, by, handedOver, lockLost, bad, env>>

WriteIds == 1..MaxWrites
Max(a, b) == IF a > b THEN a ELSE b
Idle == [s |-> "idle", kind |-> "none", read |-> 0, w |-> 0,
         tok |-> [epoch |-> 0, owner |-> NoNode]]
NoToken == [epoch |-> 0, owner |-> NoNode]
NoCache == [valid |-> FALSE, data |-> {}]

Alive(n) == st[n] \in {"inactive", "active"}
Fenced(n) == newest[n] > epoch[n]
AnyLockLost == \E m \in Nodes : lockLost[m]
(* A writer: an active node whose epoch is the record's.                   *)
Writer(n) == st[n] = "active" /\ epoch[n] = record.epoch
Saw(n, e) == newest' = [newest EXCEPT ![n] = Max(@, e)]
Release(n) == lockHolder' = IF lockHolder = n THEN NoNode ELSE lockHolder
Mgmt(c) == c \in Commands
Forbidden(n, what) == bad' = IF bad = "none" THEN what ELSE bad

Init ==
    /\ img = {} /\ durable = {}
    /\ record = [epoch |-> 1, owner |-> Source, clean |-> FALSE]
    /\ lockHolder = Source
    /\ st = [n \in Nodes |-> IF n = Source THEN "active" ELSE "inactive"]
    /\ epoch = [n \in Nodes |-> IF n = Source THEN 1 ELSE 0]
    /\ newest = [n \in Nodes |-> 1]
    /\ pc = [n \in Nodes |-> Idle]
    /\ cache = [n \in Nodes |-> NoCache]
    /\ pending = [n \in Nodes |-> NoToken]
    /\ msgs = {}
    /\ nextWrite = 0
    /\ by = [w \in WriteIds |-> NoNode]
    /\ handedOver = {}
    /\ lockLost = [n \in Nodes |-> FALSE]
    /\ bad = "none"
    /\ env = [crashes |-> 0, lost |-> 0, storage |-> 0]

(* ----------------------------------------------------------------------- *)
(*  Activation: OwnedImage.activate, acceptHandoff, abortHandoff           *)
(* ----------------------------------------------------------------------- *)

(* Transitions.activateLocked: OwnershipLock.acquire, never waiting: a    *)
(* lock another holder has refuses the activation (ImageInactiveException) *)
(* and nothing changes.  accept carries the token management gave it;      *)
(* abort the token this node prepared.  ActivateWithoutLock takes no lock: *)
(* it takes the image from a live owner (AtMostOneActiveHolder).           *)
(* @java Transitions.activateLocked:264-264 "ownership.acquire();"                   *)
ActLock(n, kind, tok) ==
    /\ Alive(n) /\ st[n] = "inactive" /\ pc[n].s = "idle"
    /\ record.epoch < MaxEpoch
    /\ CASE kind = "activate" -> Mgmt("activate") /\ tok = NoToken
         [] kind = "accept" -> Mgmt("accept") /\ tok \in msgs /\ tok.owner # n
         [] kind = "abort" -> Mgmt("abort") /\ pending[n] # NoToken /\ tok = pending[n]
    /\ IF lockHolder \in {NoNode, n} \/ Bug = "ActivateWithoutLock"
       THEN /\ lockHolder' = IF Bug = "ActivateWithoutLock" THEN lockHolder ELSE n
            /\ lockLost' = [lockLost EXCEPT ![n] = FALSE]
            /\ pc' = [pc EXCEPT ![n] = [Idle EXCEPT !.s = "actRead", !.kind = kind, !.tok = tok]]
       ELSE UNCHANGED <<lockHolder, lockLost, pc>>             \* refused
    /\ UNCHANGED <<img, durable, record, st, epoch, newest, cache, pending,
                   msgs, nextWrite, by, handedOver, bad, env>>

(* Transitions.continues: the token is the record's last clean owner.    *)
Continues(tok, r) == tok.epoch = r.epoch /\ tok.owner = r.owner /\ r.clean

(* activateLocked: drop every cache, then RecordStore.read.  What a node   *)
(* cached while inactive may be stale (ActivateKeepsCache keeps it:        *)
(* NoStaleCache).  A token the record no longer continues (continues:     *)
(* epoch, owner, clean) is refused: ImageFencedException.                  *)
(* @java Transitions.activateLocked:280-280 "current = records.read();"          *)
ActRead(n) ==
    /\ pc[n].s = "actRead"
    /\ cache' = IF Bug = "ActivateKeepsCache" THEN cache ELSE [cache EXCEPT ![n] = NoCache]
    /\ Saw(n, record.epoch)
    /\ pc' = [pc EXCEPT ![n] = [@ EXCEPT !.read = record.epoch,
              !.s = IF pc[n].kind # "activate" /\ ~Continues(pc[n].tok, record)
                    THEN "actFail" ELSE "actCas"]]
    /\ UNCHANGED <<img, durable, record, lockHolder, st, epoch, pending, msgs,
                   nextWrite, by, handedOver, lockLost, bad, env>>

(* activateLocked: RecordStore.compareAndWrite(e, record(max(e, newest) +  *)
(* 1, this owner, unclean)): ACTIVE.  The compare is what decides between  *)
(* two activations whose locks both succeeded (a lost lock): one moves the *)
(* epoch, the other finds it moved and is refused.  BumpWithoutCompare     *)
(* writes blindly: two writers (AtMostOneWriter).                          *)
(* @java Transitions.activateLocked:299-299 "found = records.compareAndWrite(current.epoch(), mine);" *)
ActCas(n) ==
    LET e == pc[n].read
        next == Max(e, newest[n]) + 1
    IN
    /\ pc[n].s = "actCas"
    /\ IF record.epoch = e \/ Bug = "BumpWithoutCompare"
       THEN /\ record' = [epoch |-> next, owner |-> n, clean |-> FALSE]
            /\ epoch' = [epoch EXCEPT ![n] = next]
            /\ Saw(n, next)
            /\ st' = [st EXCEPT ![n] = "active"]
            /\ pending' = [pending EXCEPT ![n] = NoToken]
            /\ msgs' = IF pc[n].kind = "accept" THEN msgs \ {pc[n].tok} ELSE msgs
            /\ pc' = [pc EXCEPT ![n] = Idle]
       ELSE /\ Saw(n, record.epoch)
            /\ pc' = [pc EXCEPT ![n].s = "actFail"]
            /\ UNCHANGED <<record, epoch, st, pending, msgs>>
    /\ UNCHANGED <<img, durable, lockHolder, cache, nextWrite, by, handedOver,
                   lockLost, bad, env>>

(* activateLocked, refused after the lock was taken: OwnershipLock.release; *)
(* still INACTIVE.                                                          *)
(* @java Transitions.activateLocked:327-327 "ownership.release();"                    *)
ActFail(n) ==
    /\ pc[n].s = "actFail"
    /\ Release(n)
    /\ pc' = [pc EXCEPT ![n] = Idle]
    /\ UNCHANGED <<img, durable, record, st, epoch, newest, cache, pending,
                   msgs, nextWrite, by, handedOver, lockLost, bad, env>>

(* ----------------------------------------------------------------------- *)
(*  Inactivation: OwnedImage.inactivate, prepareHandoff                    *)
(* ----------------------------------------------------------------------- *)

(* inactivateLocked, once the handle's own writes drained (io.writeLock):  *)
(* recheckRecord (RecordStore.read).                                       *)
(* @java WriteAdmission.recheckRecord:231-231 "OwnershipRecord r = records.read();" *)
InRead(n, kind) ==
    /\ st[n] = "active" /\ pc[n].s = "idle"
    /\ kind \in {"inactivate", "prepare"} /\ Mgmt(kind)
    /\ kind = "prepare" => record.epoch < MaxEpoch   \* a bound for TLC: the token can be taken
    /\ Saw(n, record.epoch)
    /\ pc' = [pc EXCEPT ![n] = [Idle EXCEPT !.kind = kind,
              !.s = IF Max(newest[n], record.epoch) > epoch[n] THEN "inFenced" ELSE "inFlush"]]
    /\ UNCHANGED <<img, durable, record, lockHolder, st, epoch, cache, pending,
                   msgs, nextWrite, by, handedOver, lockLost, bad, env>>

(* fencedInactivation: a fenced handle writes nothing on its way out:      *)
(* INACTIVE, then OwnershipLock.release, then ImageFencedException.        *)
(* @java Transitions.fencedInactivationStep:466-466 "ownership.release();"           *)
InFenced(n) ==
    /\ pc[n].s = "inFenced"
    /\ st' = [st EXCEPT ![n] = "inactive"]
    /\ Release(n)
    /\ pc' = [pc EXCEPT ![n] = Idle]
    /\ UNCHANGED <<img, durable, record, epoch, newest, cache, pending, msgs,
                   nextWrite, by, handedOver, lockLost, bad, env>>

(* inactivateLocked: the device flush, before the record says the image    *)
(* may change hands: a new owner then finds every acknowledged write       *)
(* durable.  InactivateWithoutFlush skips it: a storage loss after the     *)
(* handoff loses acknowledged writes (HandoffLosesNoWrite).                *)
(* @java Transitions.inactivateLocked:379-379 "device.flush();"                 *)
InFlush(n) ==
    /\ pc[n].s = "inFlush"
    /\ durable' = IF Bug = "InactivateWithoutFlush" THEN durable ELSE durable \cup img
    /\ pc' = [pc EXCEPT ![n].s = "inCas"]
    /\ UNCHANGED <<img, record, lockHolder, st, epoch, newest, cache, pending,
                   msgs, nextWrite, by, handedOver, lockLost, bad, env>>

(* inactivateLocked: RecordStore.compareAndWrite(epoch, clean): INACTIVE   *)
(* (prepareHandoff keeps the token).  A record another owner moved         *)
(* refuses it: fenced, INACTIVE, the lock released.                        *)
(* @java Transitions.inactivateLocked:396-396 "found = records.compareAndWrite(epoch, clean);" *)
InCas(n) ==
    /\ pc[n].s = "inCas"
    /\ IF record.epoch = epoch[n]
       THEN /\ record' = [record EXCEPT !.clean = TRUE]
            /\ st' = [st EXCEPT ![n] = "inactive"]
            /\ handedOver' = handedOver \cup {w \in img : by[w] = n}
            /\ pending' = IF pc[n].kind = "prepare"
                          THEN [pending EXCEPT ![n] = [epoch |-> epoch[n], owner |-> n]]
                          ELSE pending
            /\ pc' = [pc EXCEPT ![n].s = "inRelease"]
            /\ UNCHANGED <<newest, lockHolder>>
       ELSE /\ Saw(n, record.epoch)
            /\ st' = [st EXCEPT ![n] = "inactive"]
            /\ Release(n)
            /\ pc' = [pc EXCEPT ![n] = Idle]
            /\ UNCHANGED <<record, handedOver, pending>>
    /\ UNCHANGED <<img, durable, epoch, cache, msgs, nextWrite, by, lockLost, bad, env>>

(* inactivateLocked: OwnershipLock.release, after the record is clean:     *)
(* whoever takes the lock finds no live writer.  prepareHandoff then       *)
(* returns the token, which management carries to the destination.        *)
(* SourceKeepsLock does not release it: the destination can never activate *)
(* (HandoffActivatesDestination).                                          *)
(* @java Transitions.inactivateLocked:422-422 "ownership.release();"                 *)
InRelease(n) ==
    /\ pc[n].s = "inRelease"
    /\ IF Bug = "SourceKeepsLock" THEN UNCHANGED lockHolder ELSE Release(n)
    /\ msgs' = IF pc[n].kind = "prepare" THEN msgs \cup {pending[n]} ELSE msgs
    /\ pc' = [pc EXCEPT ![n] = Idle]
    /\ UNCHANGED <<img, durable, record, st, epoch, newest, cache, pending,
                   nextWrite, by, handedOver, lockLost, bad, env>>

(* ----------------------------------------------------------------------- *)
(*  OwnedImage.close                                                       *)
(* ----------------------------------------------------------------------- *)

(* close of an INACTIVE handle writes nothing (OwnershipLock.release is a  *)
(* no-op unless held).  CloseInactiveWritesRecord marks the record clean:  *)
(* a write by a node that does not own the image (NoWriteByInactive).      *)
(* close of an ACTIVE handle: closeActiveLocked reads the record, then     *)
(* (not fenced) flushes and marks it clean, then the lock goes.            *)
(* @java Transitions.close:230-230 "ownership.release(); // writes nothing; a no-op unless held" *)
CloseInactive(n) ==
    /\ Mgmt("close") /\ st[n] = "inactive" /\ pc[n].s = "idle"
    /\ IF Bug = "CloseInactiveWritesRecord"
       THEN /\ record' = [record EXCEPT !.clean = TRUE]
            /\ Forbidden(n, "record written by an inactive node")
       ELSE UNCHANGED <<record, bad>>
    /\ st' = [st EXCEPT ![n] = "closed"]
    /\ Release(n)
    /\ UNCHANGED <<img, durable, epoch, newest, pc, cache, pending, msgs,
                   nextWrite, by, handedOver, lockLost, env>>

(* @java Transitions.closeActiveLocked:485-485 "admission.recheckRecord();"               *)
CloseRead(n) ==
    /\ Mgmt("close") /\ st[n] = "active" /\ pc[n].s = "idle"
    /\ Saw(n, record.epoch)
    /\ pc' = [pc EXCEPT ![n] = [Idle EXCEPT !.kind = "close",
              !.s = IF Max(newest[n], record.epoch) > epoch[n] THEN "closeEnd" ELSE "closeFlush"]]
    /\ UNCHANGED <<img, durable, record, lockHolder, st, epoch, cache, pending,
                   msgs, nextWrite, by, handedOver, lockLost, bad, env>>

(* @java Transitions.closeActiveLocked:498-498 "device.flush();"                *)
CloseFlush(n) ==
    /\ pc[n].s = "closeFlush"
    /\ durable' = durable \cup img
    /\ pc' = [pc EXCEPT ![n].s = "closeCas"]
    /\ UNCHANGED <<img, record, lockHolder, st, epoch, newest, cache, pending,
                   msgs, nextWrite, by, handedOver, lockLost, bad, env>>

(* @java Transitions.closeActiveLocked:511-511 "OwnershipRecord found = records.compareAndWrite(epoch, clean);" *)
CloseCas(n) ==
    /\ pc[n].s = "closeCas"
    /\ IF record.epoch = epoch[n]
       THEN record' = [record EXCEPT !.clean = TRUE] /\ UNCHANGED newest
       ELSE Saw(n, record.epoch) /\ UNCHANGED record
    /\ pc' = [pc EXCEPT ![n].s = "closeEnd"]
    /\ UNCHANGED <<img, durable, lockHolder, st, epoch, cache, pending, msgs,
                   nextWrite, by, handedOver, lockLost, bad, env>>

(* close: closed (INACTIVE), the lock released.                            *)
(* @java Transitions.close:227-227 "admission.markClosed();"                             *)
CloseEnd(n) ==
    /\ pc[n].s = "closeEnd"
    /\ st' = [st EXCEPT ![n] = "closed"]
    /\ Release(n)
    /\ pc' = [pc EXCEPT ![n] = Idle]
    /\ UNCHANGED <<img, durable, record, epoch, newest, cache, pending, msgs,
                   nextWrite, by, handedOver, lockLost, bad, env>>

(* ----------------------------------------------------------------------- *)
(*  The owner's I/O: OwnedImage.write, flush, read                         *)
(* ----------------------------------------------------------------------- *)

(* WriteAdmission.admitWrite: refused while INACTIVE (ImageInactiveException; *)
(* nothing changes); when the recheck interval has passed, RecordStore.read *)
(* (here: whenever the model chooses to); refused if the handle has seen a *)
(* newer epoch (ImageFencedException).  NoFencing skips the check: a       *)
(* handle that knows it is fenced writes (NoForbiddenWrite).               *)
(* @java WriteAdmission.admitWrite:148-148 "checkNotFenced(op);"                   *)
WriteAdmit(n, reread) ==
    LET seen == IF reread THEN Max(newest[n], record.epoch) ELSE newest[n] IN
    /\ Mgmt("write") /\ Alive(n) /\ pc[n].s = "idle" /\ nextWrite < MaxWrites
    /\ reread \in BOOLEAN /\ (reread => st[n] = "active")
    /\ newest' = [newest EXCEPT ![n] = seen]
    /\ IF st[n] = "active" /\ (seen <= epoch[n] \/ Bug = "NoFencing")
       THEN /\ pc' = [pc EXCEPT ![n] = [Idle EXCEPT !.s = "wrDevice", !.w = nextWrite + 1]]
            /\ nextWrite' = nextWrite + 1
       ELSE UNCHANGED <<pc, nextWrite>>                        \* refused
    /\ UNCHANGED <<img, durable, record, lockHolder, st, epoch, cache, pending,
                   msgs, by, handedOver, lockLost, bad, env>>

(* OwnedImage.write: the device write, a step after the check: another     *)
(* owner may have moved the epoch in between (only if a lock was lost: the *)
(* lock keeps a second activation out).  The handle's header cache drops   *)
(* it overlaps (here: all of it).                                          *)
(* @java OwnedImage.deviceWrite:382-382 "case 0 -> device.write(offset, src);" *)
WriteDevice(n) ==
    /\ pc[n].s = "wrDevice"
    /\ img' = img \cup {pc[n].w}
    /\ by' = [by EXCEPT ![pc[n].w] = n]
    /\ cache' = [cache EXCEPT ![n] = NoCache]
    /\ \/ /\ st[n] # "active"
          /\ Forbidden(n, "data written by an inactive node")
       \/ /\ st[n] = "active" /\ Fenced(n)
          /\ Forbidden(n, "data written by a node that knew it was fenced")
       \/ /\ st[n] = "active" /\ ~Fenced(n) /\ epoch[n] < record.epoch /\ ~AnyLockLost
          /\ Forbidden(n, "a stale write although no lock was lost")
       \/ /\ st[n] = "active" /\ ~Fenced(n) /\ (epoch[n] = record.epoch \/ AnyLockLost)
          /\ UNCHANGED bad
    /\ pc' = [pc EXCEPT ![n] = Idle]
    /\ UNCHANGED <<durable, record, lockHolder, st, epoch, newest, pending, msgs,
                   nextWrite, handedOver, lockLost, env>>

(* WriteAdmission.admitFlush: refused while INACTIVE; RecordStore.read, then *)
(* refused if fenced (NoFencing flushes anyway).                           *)
(* @java WriteAdmission.admitFlush:178-178 "recheckRecord();"                           *)
FlushRead(n) ==
    LET seen == Max(newest[n], record.epoch) IN
    /\ Mgmt("flush") /\ Alive(n) /\ pc[n].s = "idle"
    /\ newest' = IF st[n] = "active" THEN [newest EXCEPT ![n] = seen] ELSE newest
    /\ pc' = IF st[n] = "active" /\ (seen <= epoch[n] \/ Bug = "NoFencing")
             THEN [pc EXCEPT ![n] = [Idle EXCEPT !.s = "flDevice"]]
             ELSE pc
    /\ UNCHANGED <<img, durable, record, lockHolder, st, epoch, cache, pending,
                   msgs, nextWrite, by, handedOver, lockLost, bad, env>>

(* OwnedImage.flush: the device flush: every write on the image so far is  *)
(* durable.  Of a node that knew it was fenced: forbidden.                 *)
(* @java OwnedImage.flush:360-360 "device.flush();"                            *)
FlushDevice(n) ==
    /\ pc[n].s = "flDevice"
    /\ durable' = durable \cup img
    /\ IF Fenced(n) THEN Forbidden(n, "a flush of a node that knew it was fenced")
       ELSE UNCHANGED bad
    /\ pc' = [pc EXCEPT ![n] = Idle]
    /\ UNCHANGED <<img, record, lockHolder, st, epoch, newest, cache, pending,
                   msgs, nextWrite, by, handedOver, lockLost, env>>

(* OwnedImage.read while ACTIVE: the header cache loads from the image on  *)
(* a miss (HeaderCache.read).  An INACTIVE handle reads the device and     *)
(* caches nothing, but keeps what it cached while it was ACTIVE.           *)
(* @java HeaderCache.read:63-63 "device.read(0, ByteBuffer.wrap(bytes));"     *)
ReadHeader(n) ==
    /\ Mgmt("read") /\ st[n] = "active" /\ pc[n].s = "idle" /\ ~cache[n].valid
    /\ cache' = [cache EXCEPT ![n] = [valid |-> TRUE, data |-> img]]
    /\ UNCHANGED <<img, durable, record, lockHolder, st, epoch, newest, pc,
                   pending, msgs, nextWrite, by, handedOver, lockLost, bad, env>>

(* ----------------------------------------------------------------------- *)
(*  Failures                                                               *)
(* ----------------------------------------------------------------------- *)

(* The process dies: the OS releases its lock (QemuFileLock); its writes   *)
(* stay on the image (a shared file keeps them, not yet durable).          *)
(* @env: the process dies, not the kernel.                                  *)
Crash(n) ==
    /\ Alive(n) /\ env.crashes < MaxCrashes
    /\ st' = [st EXCEPT ![n] = "crashed"]
    /\ Release(n)
    /\ pc' = [pc EXCEPT ![n] = Idle]
    /\ env' = [env EXCEPT !.crashes = @ + 1]
    /\ UNCHANGED <<img, durable, record, epoch, newest, cache, pending, msgs,
                   nextWrite, by, handedOver, lockLost, bad>>

(* The lock is released under a live node that does not notice (an NFS    *)
(* lease, or a coordination service's session, that expired).             *)
(* @env: a lease expires, not the kernel.                                   *)
LoseLock(n) ==
    /\ lockHolder = n /\ env.lost < MaxLostLocks
    /\ lockHolder' = NoNode
    /\ lockLost' = [lockLost EXCEPT ![n] = TRUE]
    /\ env' = [env EXCEPT !.lost = @ + 1]
    /\ UNCHANGED <<img, durable, record, st, epoch, newest, pc, cache, pending,
                   msgs, nextWrite, by, handedOver, bad>>

(* The storage restarts and loses what no flush made durable; the handles  *)
(* do not notice (a power loss of a storage server, say).                  *)
(* @env: the storage restarts, not the kernel.                              *)
StorageLoss ==
    /\ env.storage < MaxStorageLosses
    /\ img' = durable
    /\ env' = [env EXCEPT !.storage = @ + 1]
    /\ UNCHANGED <<durable, record, lockHolder, st, epoch, newest, pc, cache,
                   pending, msgs, nextWrite, by, handedOver, lockLost, bad>>

(* ----------------------------------------------------------------------- *)
(*  Specification                                                          *)
(* ----------------------------------------------------------------------- *)
Tokens == {[epoch |-> e, owner |-> o] : e \in 0..MaxEpoch, o \in Nodes \cup {NoNode}}

(* The steps that finish a transition or an I/O a node has started.        *)
Continue(n) ==
    \/ ActRead(n) \/ ActCas(n) \/ ActFail(n)
    \/ InFenced(n) \/ InFlush(n) \/ InCas(n) \/ InRelease(n)
    \/ CloseFlush(n) \/ CloseCas(n) \/ CloseEnd(n)
    \/ WriteDevice(n) \/ FlushDevice(n)

Start(n) ==
    \/ \E kind \in {"activate", "accept", "abort"}, t \in Tokens : ActLock(n, kind, t)
    \/ \E kind \in {"inactivate", "prepare"} : InRead(n, kind)
    \/ CloseInactive(n) \/ CloseRead(n)
    \/ \E reread \in BOOLEAN : WriteAdmit(n, reread)
    \/ FlushRead(n) \/ ReadHeader(n)

Next ==
    \/ \E n \in Nodes : Start(n) \/ Continue(n) \/ Crash(n) \/ LoseLock(n)
    \/ StorageLoss

Spec == Init /\ [][Next]_vars

(* Fairness, all weak: a node that started a transition or an I/O finishes *)
(* it (its thread runs; no step here waits for another node), and the      *)
(* destination keeps trying to accept a token management holds for it     *)
(* (an assumption about management, which retries a refused accept).       *)
Fairness ==
    /\ \A n \in Nodes : WF_vars(Continue(n))
    /\ \A t \in Tokens : WF_vars(ActLock(Destination, "accept", t))

FairSpec == Spec /\ Fairness

(* ----------------------------------------------------------------------- *)
(*  Invariants and properties                                              *)
(* ----------------------------------------------------------------------- *)
TypeOK ==
    /\ img \subseteq WriteIds /\ durable \subseteq WriteIds
    /\ by \in [WriteIds -> Nodes \cup {NoNode}]
    /\ record.epoch \in Nat /\ record.clean \in BOOLEAN
    /\ lockHolder \in Nodes \cup {NoNode}
    /\ \A n \in Nodes : st[n] \in {"inactive", "active", "closed", "crashed"}
    /\ nextWrite \in 0..MaxWrites

(* DESIGN 4.5.1: two active holders only when one of them lost its lock.   *)
AtMostOneActiveHolder ==
    \A n, m \in Nodes :
        (n # m /\ st[n] = "active" /\ st[m] = "active") => (lockLost[n] \/ lockLost[m])

(* At most one active node whose epoch is the record's, lost locks or not. *)
AtMostOneWriter == \A n, m \in Nodes : (n # m /\ Writer(n)) => ~Writer(m)

(* DESIGN 4.5.2 and 4.5.5: no write of data or record by a node that is    *)
(* inactive, or that knows it is fenced; a stale write (after a newer      *)
(* owner's epoch, before this node saw it: the check-then-write window)    *)
(* only once a lock was lost, which is what the lock prevents; fencing     *)
(* bounds the window in time (docs/OWNERSHIP.md).                          *)
NoForbiddenWrite == bad = "none"

(* DESIGN 4.5.4: no stale cache survives activation: a writer's header     *)
(* cache is what the image holds.  (After a lost lock, the old owner's     *)
(* stale writes can change the image under it: fencing guards writes, not *)
(* reads, docs/OWNERSHIP.md; and a storage that loses unflushed data       *)
(* changes it under every reader.)                                         *)
NoStaleCache ==
    (~AnyLockLost /\ env.storage = 0) =>
        \A n \in Nodes : (Writer(n) /\ cache[n].valid) => cache[n].data = img

(* DESIGN 4.5.3: a writer sees every write its predecessors acknowledged   *)
(* before they inactivated, even after the storage lost unflushed data.    *)
HandoffLosesNoWrite == \A n \in Nodes : Writer(n) => handedOver \subseteq img

(* Liveness: a prepared handoff ends with the destination active, when     *)
(* management carries the token to it and nothing else happens (the model *)
(* that checks this allows only the handoff's own commands, no crash, no   *)
(* lost lock, no storage loss).                                            *)
HandoffActivatesDestination ==
    (\E t \in msgs : t.owner = Source) ~> Writer(Destination)
=============================================================================
