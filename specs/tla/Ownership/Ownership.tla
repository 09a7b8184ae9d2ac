------------------------------ MODULE Ownership ------------------------------
(***************************************************************************)
(* Inactivation and ownership handoff of docs/DESIGN.md section 4: an     *)
(* image on shared storage is opened by several processes (nodes); only  *)
(* one may be active, that is, allowed to write data or metadata.          *)
(*                                                                         *)
(* The protocol.  An OwnedImage is ACTIVE or INACTIVE.                     *)
(*   activate():   take the OwnershipLock, re-read the OwnershipRecord,    *)
(*                 drop every cache, bump the epoch in the record: ACTIVE. *)
(*   inactivate(): stop and drain writes, flush data and record: INACTIVE, *)
(*                 then release the lock.                                  *)
(*   write/flush:  refused while INACTIVE; fenced (refused) when the       *)
(*                 record shows an epoch newer than the writer's.          *)
(*   close():      INACTIVE writes nothing; ACTIVE flushes and marks the   *)
(*                 record clean.                                           *)
(*   prepareHandoff() = inactivate() and hand a HandoffToken (the epoch)   *)
(*   to the destination; acceptHandoff(token) = activate() checking that   *)
(*   the record still has the token's epoch; abortHandoff() = the source's *)
(*   activate() again when the migration failed.                           *)
(*                                                                         *)
(* What races with what.  Management may call anything on any node at any  *)
(* time (QEMU leaves double activation to management); nodes crash (the OS *)
(* releases a dead process's lock) and lose their lock while alive (e.g.   *)
(* an NFS lease that expired).  The lock serialises activations; the epoch *)
(* (a fencing token) stops an owner that lost its lock without knowing it. *)
(*                                                                         *)
(* Invariants: AtMostOneActiveHolder, AtMostOneWriter,                     *)
(* NoWriteByInactiveOrFenced, NoStaleCache, HandoffLosesNoWrite;           *)
(* liveness: HandoffActivatesDestination.                                  *)
(*                                                                         *)
(* Broken variants, switched on by the constant Bug (MC*_bug.cfg):         *)
(*   "InactivateWithoutFlush"     inactivate() skips the flush             *)
(*   "ActivateKeepsCache"         activate() keeps what it cached before   *)
(*   "CloseInactiveWritesRecord"  close() of an INACTIVE image writes the  *)
(*                                record (marks it clean)                  *)
(*   "ActivateWithoutLock"        activate() does not take the lock        *)
(*   "NoFencing"                  the storage applies stale-epoch writes   *)
(*   "BumpWithoutCompare"         activation writes epoch+1 blindly        *)
(*                                                                         *)
(* Abstractions.  A guest write is a write id; the image's data is the set *)
(* of ids it holds.  A write is acknowledged when it enters the writer's   *)
(* write-back cache (pending) and reaches the image on flush.  The read    *)
(* cache holds what a node read from the image (metadata and data alike).  *)
(* Fencing is a property of the image's write path: a write of data or of  *)
(* the record is applied only if the record's epoch is the writer's,       *)
(* checked in the same step as the write (the epoch bump compares with the *)
(* epoch read).  A check in the writer followed by a separate write would  *)
(* not survive a lost lock.  Epochs and writes are bounded by constants.   *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS
    Nodes,        \* the processes that open the image
    Source,       \* the node that is active at first and migrates away
    Destination,  \* the node the migration hands the image to
    NoNode,       \* nobody holds the lock
    MaxWrites,    \* guest writes in a run
    MaxEpoch,     \* activations start only below this epoch
    MaxCrashes,   \* node crashes in a run
    MaxLostLocks, \* locks lost under a live node in a run
    Bug           \* "none" or one broken variant (see above)

ASSUME Source \in Nodes /\ Destination \in Nodes /\ Source # Destination
ASSUME NoNode \notin Nodes
ASSUME Bug \in {"none", "InactivateWithoutFlush", "ActivateKeepsCache",
                "CloseInactiveWritesRecord", "ActivateWithoutLock", "NoFencing",
                "BumpWithoutCompare"}

VARIABLES
    imgData,     \* SUBSET WriteIds: data on the shared image
    record,      \* OwnershipRecord on the image: [epoch, clean]
    lockHolder,  \* OwnershipLock: a node or NoNode
    state,       \* [Nodes -> node state] (see NodeStates)
    epoch,       \* [Nodes -> Nat]: epoch owned (or read, while activating)
    expect,      \* [Nodes -> Nat]: token epoch acceptHandoff checks (0: none)
    pending,     \* [Nodes -> SUBSET WriteIds]: acknowledged, not yet flushed
    cache,       \* [Nodes -> [valid, data]]: what the node read from the image
    msgs,        \* HandoffTokens handed to management: [from, epoch]
    handedOff,   \* [Nodes -> BOOLEAN]: prepared a handoff, not active since
    nextWrite,   \* guest writes issued so far
    handedOver,  \* ghost: writes acknowledged before a completed inactivation
    illegal,     \* ghost: an inactive or fenced node changed the image
    crashes,     \* crashes so far
    lostLocks,   \* locks lost so far
    lockLost,    \* ghost: [Nodes -> BOOLEAN] lost its lock since taking it
    disturbed    \* ghost: something other than the handoff happened

vars == <<imgData, record, lockHolder, state, epoch, expect, pending, cache,
          msgs, handedOff, nextWrite, handedOver, illegal, crashes, lostLocks,
          lockLost, disturbed>>

WriteIds == 1..MaxWrites
NoCache == [valid |-> FALSE, data |-> {}]

(* Node states.  An activation goes "inactive" -> "locked" -> "recordRead" *)
(* -> "active"; an inactivation "active" -> "draining" -> "flushed" ->     *)
(* "inactive".  "closed" and "crashed" are final.                          *)
NodeStates == {"inactive", "locked", "recordRead", "active", "draining",
               "flushed", "closed", "crashed"}
Alive(n) == state[n] \notin {"closed", "crashed"}

(* A writer: an active node whose writes reach the image.  A node that     *)
(* lost its lock may still believe it is active; the newer epoch in the    *)
(* record fences it, so it is not a writer.                                *)
Writer(n) == state[n] = "active" /\ epoch[n] = record.epoch

(* The image's write path: applied iff the writer's epoch is current.      *)
Current(n) == epoch[n] = record.epoch \/ Bug = "NoFencing"

(* The states in which a node may change the image at all, provided its    *)
(* epoch is current: the epoch bump of an activation, the writes and the   *)
(* flushes of an owner, the flush of an inactivation.                      *)
OwnerStates == {"recordRead", "active", "draining"}

(* Ghost bookkeeping for every step of node n that changes the image.      *)
ImageWrittenBy(n) ==
    illegal' = (illegal \/ ~(state[n] \in OwnerStates
                              /\ epoch[n] = record.epoch))

ReleaseLock(n) == lockHolder' = IF lockHolder = n THEN NoNode ELSE lockHolder

(* The read view of node n: its cache if it has one, else the image plus   *)
(* its own acknowledged writes.                                            *)
View(n) == IF cache[n].valid THEN cache[n].data ELSE imgData \cup pending[n]

(* ----------------------------------------------------------------------- *)
(*  Init: the source runs the guest; every other node opened inactive.     *)
(* ----------------------------------------------------------------------- *)
Init ==
    /\ imgData = {}
    /\ record = [epoch |-> 1, clean |-> FALSE]
    /\ lockHolder = Source
    /\ state = [n \in Nodes |-> IF n = Source THEN "active" ELSE "inactive"]
    /\ epoch = [n \in Nodes |-> IF n = Source THEN 1 ELSE 0]
    /\ expect = [n \in Nodes |-> 0]
    /\ pending = [n \in Nodes |-> {}]
    /\ cache = [n \in Nodes |-> NoCache]
    /\ msgs = {}
    /\ handedOff = [n \in Nodes |-> FALSE]
    /\ nextWrite = 0
    /\ handedOver = {}
    /\ illegal = FALSE
    /\ crashes = 0
    /\ lostLocks = 0
    /\ lockLost = [n \in Nodes |-> FALSE]
    /\ disturbed = FALSE

(* ----------------------------------------------------------------------- *)
(*  Activation: OwnedImage.activate / acceptHandoff / abortHandoff         *)
(* ----------------------------------------------------------------------- *)

(* The first step of every activation: OwnershipLock.acquire (it waits     *)
(* while another node holds the lock).  The epoch alone keeps two writers  *)
(* apart, but only by fencing one of them after the fact: a node that      *)
(* activates without the lock (ActivateWithoutLock) takes the image from   *)
(* a live owner, which still believes it is active and whose unflushed,    *)
(* acknowledged writes are lost (AtMostOneActiveHolder).  With the lock,   *)
(* a second holder appears only when the first one lost its lock.          *)
TakeLock(n) ==
    /\ state[n] = "inactive"
    /\ record.epoch < MaxEpoch
    /\ IF Bug = "ActivateWithoutLock"
       THEN UNCHANGED lockHolder
       ELSE lockHolder = NoNode /\ lockHolder' = n
    /\ state' = [state EXCEPT ![n] = "locked"]
    /\ handedOff' = [handedOff EXCEPT ![n] = FALSE]
    /\ lockLost' = [lockLost EXCEPT ![n] = FALSE]

(* OwnedImage.activate(), called by management on an inactive node.        *)
OwnedImage_Activate(n) ==
    /\ TakeLock(n)
    /\ expect' = [expect EXCEPT ![n] = 0]
    /\ disturbed' = TRUE
    /\ UNCHANGED <<imgData, record, epoch, pending, cache, msgs, nextWrite,
                   handedOver, illegal, crashes, lostLocks>>

(* OwnedImage.acceptHandoff(token) on the destination: activate(), taking  *)
(* the token; the epoch is checked once the record is read.  Management    *)
(* carries the token and may give it to any other node.                    *)
OwnedImage_AcceptHandoff(n) ==
    \E t \in msgs :
        /\ t.from # n
        /\ TakeLock(n)
        /\ msgs' = msgs \ {t}
        /\ expect' = [expect EXCEPT ![n] = t.epoch]
        /\ disturbed' = (disturbed \/ n # Destination)
        /\ UNCHANGED <<imgData, record, epoch, pending, cache, nextWrite,
                       handedOver, illegal, crashes, lostLocks>>

(* OwnedImage.abortHandoff() on a source that handed off: the migration    *)
(* failed and the source activates again.  Whether the destination took    *)
(* the token meanwhile is decided by the lock and the epoch, not by        *)
(* management.                                                             *)
OwnedImage_AbortHandoff(n) ==
    /\ handedOff[n]
    /\ TakeLock(n)
    /\ expect' = [expect EXCEPT ![n] = 0]
    /\ disturbed' = TRUE
    /\ UNCHANGED <<imgData, record, epoch, pending, cache, msgs, nextWrite,
                   handedOver, illegal, crashes, lostLocks>>

(* activate(), second step: re-read the OwnershipRecord and drop every     *)
(* cache.  The epoch must be the record's current one, read under the      *)
(* lock.  Caches go because what a node read while inactive may have been  *)
(* overwritten by the owner since: keeping them (ActivateKeepsCache)       *)
(* makes the new owner act on stale data (NoStaleCache).  An               *)
(* acceptHandoff whose token no longer matches the record (someone         *)
(* activated since the token was made) refuses and releases the lock.      *)
OwnedImage_Activate_ReadRecord(n) ==
    /\ state[n] = "locked"
    /\ IF expect[n] # 0 /\ expect[n] # record.epoch
       THEN /\ state' = [state EXCEPT ![n] = "inactive"]
            /\ ReleaseLock(n)
            /\ UNCHANGED <<epoch, cache>>
       ELSE /\ state' = [state EXCEPT ![n] = "recordRead"]
            /\ epoch' = [epoch EXCEPT ![n] = record.epoch]
            /\ cache' = IF Bug = "ActivateKeepsCache" THEN cache
                        ELSE [cache EXCEPT ![n] = NoCache]
            /\ UNCHANGED lockHolder
    /\ expect' = [expect EXCEPT ![n] = 0]
    /\ UNCHANGED <<imgData, record, pending, msgs, handedOff, nextWrite,
                   handedOver, illegal, crashes, lostLocks, lockLost,
                   disturbed>>

(* activate(), last step: write the record with the epoch bumped and the   *)
(* image marked in use: ACTIVE.  The bump fences every earlier owner,      *)
(* including one that lost its lock and does not know it yet.  Like every  *)
(* image write it is applied only if the record still has the epoch this   *)
(* node read: if the lock was lost between the read and the bump, a        *)
(* second activation may have read the same epoch, and two plain writes    *)
(* of e+1 (BumpWithoutCompare) make two writers (AtMostOneWriter).  A      *)
(* refused bump ends the activation: the node stays INACTIVE.              *)
OwnedImage_Activate_BumpEpoch(n) ==
    /\ state[n] = "recordRead"
    /\ IF Current(n) \/ Bug = "BumpWithoutCompare"
       THEN /\ record' = [epoch |-> epoch[n] + 1, clean |-> FALSE]
            /\ epoch' = [epoch EXCEPT ![n] = @ + 1]
            /\ state' = [state EXCEPT ![n] = "active"]
            /\ ImageWrittenBy(n)
            /\ UNCHANGED lockHolder
       ELSE /\ state' = [state EXCEPT ![n] = "inactive"]
            /\ ReleaseLock(n)
            /\ UNCHANGED <<record, epoch, illegal>>
    /\ UNCHANGED <<imgData, expect, pending, cache, msgs, handedOff, nextWrite,
                   handedOver, crashes, lostLocks, lockLost, disturbed>>

(* ----------------------------------------------------------------------- *)
(*  The owner's I/O: OwnedImage.write, flush, read                         *)
(* ----------------------------------------------------------------------- *)

(* OwnedImage.write: only when ACTIVE (an inactive image refuses it with   *)
(* ImageInactiveException: no step).  The record is checked: a newer       *)
(* epoch fences the writer (OwnedImage_Fenced).  The write is              *)
(* acknowledged once it is in the write-back cache.                        *)
OwnedImage_Write(n) ==
    /\ state[n] = "active"
    /\ Current(n)
    /\ nextWrite < MaxWrites
    /\ nextWrite' = nextWrite + 1
    /\ pending' = [pending EXCEPT ![n] = @ \cup {nextWrite + 1}]
    /\ cache' = IF cache[n].valid
                THEN [cache EXCEPT ![n].data = @ \cup {nextWrite + 1}]
                ELSE cache
    /\ UNCHANGED <<imgData, record, lockHolder, state, epoch, expect, msgs,
                   handedOff, handedOver, illegal, crashes, lostLocks, lockLost,
                   disturbed>>

(* OwnedImage.flush: the image applies the cached writes iff the writer's  *)
(* epoch is current, in the same step.  Without that check (NoFencing) an  *)
(* owner that lost its lock overwrites the new owner's image               *)
(* (NoWriteByInactiveOrFenced).                                            *)
OwnedImage_Flush(n) ==
    /\ state[n] = "active"
    /\ pending[n] # {}
    /\ Current(n)
    /\ imgData' = imgData \cup pending[n]
    /\ pending' = [pending EXCEPT ![n] = {}]
    /\ ImageWrittenBy(n)
    /\ UNCHANGED <<record, lockHolder, state, epoch, expect, cache, msgs,
                   handedOff, nextWrite, handedOver, crashes, lostLocks,
                   lockLost, disturbed>>

(* ImageFencedException: a write or flush of an owner whose epoch is no    *)
(* longer the record's is refused; the node is INACTIVE from then on.      *)
(* Its unflushed writes are lost: the guest sees its flush fail.           *)
OwnedImage_Fenced(n) ==
    /\ state[n] \in {"active", "draining"}
    /\ ~Current(n)
    /\ state' = [state EXCEPT ![n] = "inactive"]
    /\ pending' = [pending EXCEPT ![n] = {}]
    /\ cache' = [cache EXCEPT ![n] = NoCache]
    /\ ReleaseLock(n)
    /\ UNCHANGED <<imgData, record, epoch, expect, msgs, handedOff, nextWrite,
                   handedOver, illegal, crashes, lostLocks, lockLost,
                   disturbed>>

(* OwnedImage.read: fills the read cache on a miss.  Reads are allowed     *)
(* while inactive (the destination looks at the image during migration);   *)
(* an inactive node keeps what it read, so its cache can go stale.         *)
OwnedImage_Read(n) ==
    /\ state[n] \in {"inactive", "active"}
    /\ ~cache[n].valid
    /\ cache' = [cache EXCEPT ![n] = [valid |-> TRUE,
                                      data |-> imgData \cup pending[n]]]
    /\ UNCHANGED <<imgData, record, lockHolder, state, epoch, expect, pending,
                   msgs, handedOff, nextWrite, handedOver, illegal, crashes,
                   lostLocks, lockLost, disturbed>>

(* ----------------------------------------------------------------------- *)
(*  Inactivation: OwnedImage.prepareHandoff / inactivate                   *)
(* ----------------------------------------------------------------------- *)

(* OwnedImage.prepareHandoff(): inactivate(), then a HandoffToken.         *)
(* First step: stop accepting writes and drain those in flight (writes     *)
(* are single steps here, so nothing is left in flight).                   *)
OwnedImage_PrepareHandoff(n) ==
    /\ state[n] = "active"
    /\ record.epoch < MaxEpoch
    /\ state' = [state EXCEPT ![n] = "draining"]
    /\ expect' = [expect EXCEPT ![n] = 0]
    /\ UNCHANGED <<imgData, record, lockHolder, epoch, pending, cache, msgs,
                   handedOff, nextWrite, handedOver, illegal, crashes,
                   lostLocks, lockLost, disturbed>>

(* inactivate(), second step: flush the data, then write the record clean  *)
(* (nobody has it in use), both fenced like any flush: one step here.      *)
(* Every write acknowledged so far must be on the image before anybody     *)
(* else can own it: the next owner drops its caches and reads the image.   *)
(* Skipping the data flush (InactivateWithoutFlush) hands over an image    *)
(* without acknowledged writes (HandoffLosesNoWrite).                      *)
OwnedImage_Inactivate_Flush(n) ==
    /\ state[n] = "draining"
    /\ Current(n)
    /\ imgData' = IF Bug = "InactivateWithoutFlush" THEN imgData
                  ELSE imgData \cup pending[n]
    /\ record' = [record EXCEPT !.clean = TRUE]
    /\ handedOver' = handedOver \cup pending[n]
    /\ pending' = [pending EXCEPT ![n] = {}]
    /\ state' = [state EXCEPT ![n] = "flushed"]
    /\ ImageWrittenBy(n)
    /\ UNCHANGED <<lockHolder, epoch, expect, cache, msgs, handedOff, nextWrite,
                   crashes, lostLocks, lockLost, disturbed>>

(* inactivate(), last step: INACTIVE, then the lock goes, and              *)
(* prepareHandoff returns the HandoffToken (the epoch the image was        *)
(* flushed under).  The lock is released only once nothing can be written  *)
(* any more, so a node that takes it never finds a live writer it would    *)
(* have to fence.                                                          *)
OwnedImage_Inactivate_Release(n) ==
    /\ state[n] = "flushed"
    /\ state' = [state EXCEPT ![n] = "inactive"]
    /\ ReleaseLock(n)
    /\ msgs' = msgs \cup {[from |-> n, epoch |-> epoch[n]]}
    /\ handedOff' = [handedOff EXCEPT ![n] = TRUE]
    /\ UNCHANGED <<imgData, record, epoch, expect, pending, cache, nextWrite,
                   handedOver, illegal, crashes, lostLocks, lockLost,
                   disturbed>>

(* ----------------------------------------------------------------------- *)
(*  OwnedImage.close                                                       *)
(* ----------------------------------------------------------------------- *)

(* close() of an INACTIVE image writes nothing: no record, no header, no   *)
(* dirty cache.  Another node may own the image by now; marking the        *)
(* record clean (CloseInactiveWritesRecord) changes an image the node      *)
(* does not own (NoWriteByInactiveOrFenced).  close() of an ACTIVE image   *)
(* flushes and marks the record clean (fenced like any write: a stale      *)
(* owner closes without writing), then releases the lock.                  *)
OwnedImage_Close(n) ==
    /\ state[n] \in {"inactive", "active"}
    /\ IF state[n] = "inactive"
       THEN IF Bug = "CloseInactiveWritesRecord"
            THEN /\ record' = [record EXCEPT !.clean = TRUE]
                 /\ ImageWrittenBy(n)
                 /\ UNCHANGED imgData
            ELSE UNCHANGED <<record, imgData, illegal>>
       ELSE IF Current(n)
            THEN /\ imgData' = imgData \cup pending[n]
                 /\ record' = [record EXCEPT !.clean = TRUE]
                 /\ ImageWrittenBy(n)
            ELSE UNCHANGED <<record, imgData, illegal>>
    /\ state' = [state EXCEPT ![n] = "closed"]
    /\ pending' = [pending EXCEPT ![n] = {}]
    /\ cache' = [cache EXCEPT ![n] = NoCache]
    /\ ReleaseLock(n)
    /\ disturbed' = TRUE
    /\ UNCHANGED <<epoch, expect, msgs, handedOff, nextWrite, handedOver,
                   crashes, lostLocks, lockLost>>

(* ----------------------------------------------------------------------- *)
(*  Failures                                                               *)
(* ----------------------------------------------------------------------- *)

(* The process dies: its caches and unflushed writes are gone, and the     *)
(* OS releases its lock (QemuFileLock: the file lock of a dead process).   *)
Crash(n) ==
    /\ Alive(n)
    /\ crashes < MaxCrashes
    /\ crashes' = crashes + 1
    /\ state' = [state EXCEPT ![n] = "crashed"]
    /\ pending' = [pending EXCEPT ![n] = {}]
    /\ cache' = [cache EXCEPT ![n] = NoCache]
    /\ ReleaseLock(n)
    /\ disturbed' = TRUE
    /\ UNCHANGED <<imgData, record, epoch, expect, msgs, handedOff, nextWrite,
                   handedOver, illegal, lostLocks, lockLost>>

(* The lock is released under a live node that does not notice (an NFS     *)
(* lease that expired).  Only the epoch protects the image from it now.    *)
LoseLock(n) ==
    /\ lockHolder = n
    /\ lostLocks < MaxLostLocks
    /\ lostLocks' = lostLocks + 1
    /\ lockHolder' = NoNode
    /\ lockLost' = [lockLost EXCEPT ![n] = TRUE]
    /\ disturbed' = TRUE
    /\ UNCHANGED <<imgData, record, state, epoch, expect, pending, cache, msgs,
                   handedOff, nextWrite, handedOver, illegal, crashes>>

(* ----------------------------------------------------------------------- *)
(*  Specification                                                          *)
(* ----------------------------------------------------------------------- *)
ProtocolSteps(n) ==
    \/ OwnedImage_Activate_ReadRecord(n)
    \/ OwnedImage_Activate_BumpEpoch(n)
    \/ OwnedImage_Inactivate_Flush(n)
    \/ OwnedImage_Inactivate_Release(n)
    \/ OwnedImage_Fenced(n)

Next ==
    \E n \in Nodes :
        \/ OwnedImage_AcceptHandoff(n)
        \/ OwnedImage_AbortHandoff(n)
        \/ OwnedImage_Activate(n)
        \/ ProtocolSteps(n)
        \/ OwnedImage_Write(n)
        \/ OwnedImage_Flush(n)
        \/ OwnedImage_Read(n)
        \/ OwnedImage_PrepareHandoff(n)
        \/ OwnedImage_Close(n)
        \/ Crash(n)
        \/ LoseLock(n)

Spec == Init /\ [][Next]_vars

(* Liveness assumptions: a node that started activating or inactivating    *)
(* finishes; a handed-over token is eventually taken.  Management is not   *)
(* forced to migrate, and nothing forces writes, reads or failures.        *)
Fairness ==
    /\ \A n \in Nodes : WF_vars(ProtocolSteps(n))
    /\ \A n \in Nodes : WF_vars(OwnedImage_AcceptHandoff(n))

FairSpec == Spec /\ Fairness

(* ----------------------------------------------------------------------- *)
(*  Invariants and properties                                              *)
(* ----------------------------------------------------------------------- *)
TypeOK ==
    /\ imgData \subseteq WriteIds
    /\ record.epoch \in 1..(MaxEpoch + Cardinality(Nodes))
    /\ record.clean \in BOOLEAN
    /\ lockHolder \in Nodes \cup {NoNode}
    /\ state \in [Nodes -> NodeStates]
    /\ \A n \in Nodes : /\ pending[n] \subseteq WriteIds
                       /\ cache[n].data \subseteq WriteIds
    /\ nextWrite \in 0..MaxWrites

(* At most one active holder: two nodes own the image at once only when    *)
(* one of them lost its lock (and is then fenced: AtMostOneWriter).        *)
ActiveHolder(n) == state[n] \in {"active", "draining", "flushed"}
AtMostOneActiveHolder ==
    \A n, m \in Nodes :
        (n # m /\ ActiveHolder(n) /\ ActiveHolder(m))
            => (lockLost[n] \/ lockLost[m])

(* At most one active node whose writes reach the image, lost locks or     *)
(* not.                                                                    *)
AtMostOneWriter ==
    \A n, m \in Nodes : (n # m /\ Writer(n)) => ~Writer(m)

(* No write of data or record by a node that is inactive, or active with   *)
(* an epoch the record has moved past (fenced).                            *)
NoWriteByInactiveOrFenced == ~illegal

(* No stale cache survives activation: whatever a writer has cached is     *)
(* what the image plus its own unflushed writes hold.                      *)
NoStaleCache ==
    \A n \in Nodes :
        (Writer(n) /\ cache[n].valid) => cache[n].data = imgData \cup pending[n]

(* A newly active node sees every write acknowledged before the handoff:   *)
(* every write its predecessors acknowledged before they inactivated.      *)
HandoffLosesNoWrite ==
    \A n \in Nodes : Writer(n) => handedOver \subseteq View(n)

(* A completed migration with no crash (and nothing else disturbing it:    *)
(* no lost lock, abort, foreign activation or close) ends with the         *)
(* destination active.                                                     *)
HandoffActivatesDestination ==
    (\E t \in msgs : t.from = Source) ~> (Writer(Destination) \/ disturbed)
=============================================================================
