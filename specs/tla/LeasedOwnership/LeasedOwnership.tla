--------------------------- MODULE LeasedOwnership ---------------------------
(***************************************************************************)
(* Ownership on a ZooKeeper ensemble (DESIGN section 4.6, package         *)
(* dev.handoff.coordination): the lock service under Ownership.tla, at the *)
(* grain of the coordination module's code.  Ownership.tla treats the lock *)
(* as one variable that may be lost (LoseLock); here the lock is an        *)
(* ephemeral znode that lives as long as its creator's session, the        *)
(* ensemble ends a session that it has not heard from for the session     *)
(* timeout, and a holder keeps a lease that must lapse before that.        *)
(* Every action is one request a holder's client makes of the ensemble     *)
(* (a create, read, setData, delete or renewal), one check of the lease,   *)
(* or one device call, and its comment names the Java with a machine-      *)
(* checked tag (specs/README.md).                                          *)
(*                                                                         *)
(* The protocol (SessionLease, ZkOwnershipLock, ZkRecordStore,             *)
(* LeasedDevice):                                                          *)
(*   lock:    create PATH/lock (ephemeral) in the client's session; the    *)
(*            lease runs until send time + Bound.                          *)
(*   renew:   a check of the lock znode in the lock's session; on success  *)
(*            the lease runs until that request's send time + Bound; on    *)
(*            SESSIONEXPIRED (or the client's session changed) it is lost. *)
(*   write:   lease.admit -> device write -> lease.acknowledge: refused    *)
(*            or not acknowledged once the lease lapsed.                   *)
(*   record:  read the znode (data and version), then setData with that    *)
(*            version: the fence.  A writer whose read is stale fails.     *)
(*                                                                         *)
(* Time.  One clock for everybody (the holders' and the servers' clocks    *)
(* run at the same rate; what they differ by is in the margin), kept as    *)
(* ages that stop growing where nothing depends on them any more:          *)
(* silent (how long the leader has counted no contact from a session),     *)
(* the lease's time left, a renewal's age.  Tick is one unit of time.      *)
(*                                                                         *)
(* The margin.  The leader counts a session's silence from a point that    *)
(* can lie up to Lag before the send time of the request that renewed it  *)
(* (the leader hears of a session's activity at a follower only at the     *)
(* follower's next ping; clock rates): a contact sets silent to any value  *)
(* in 0..Lag.  The lease lapses Bound = Timeout - Margin after the send,   *)
(* so it lapses before the session can expire iff Margin >= Lag.           *)
(*                                                                         *)
(* What races with what: two holders; time passes at any step; requests    *)
(* reach the ensemble at once or never (a partition, a paused JVM: nothing *)
(* forces a holder to take a step); the ensemble expires a silent session  *)
(* and deletes its lock znode; the client then learns of it and starts a   *)
(* new session.  The holder's kernel (OwnedImage) is Ownership.tla's:     *)
(* here each holder runs one transition or one write at a time, and the    *)
(* kernel's own record read before a record write is folded into the      *)
(* store's read (ZkRecordStore.readFound), except where the TrustLock      *)
(* variant skips the store's read.                                         *)
(*                                                                         *)
(* Broken variants (the constant Bug; MC*_bug.cfg): TrustLock, a record    *)
(* write without the version when the holder believes it holds the lock   *)
(* (mutants/: zk-record-write-trusts-lock); LeaseWithoutMargin, a lease    *)
(* as long as the session timeout (zk-lease-without-margin).               *)
(* Each _bug model's counterexample, drawn as a sequence diagram:          *)
(* specs/counterexamples/MC<Spec>_<Variant>_bug.md.                        *)
(***************************************************************************)
EXTENDS Naturals

CONSTANTS
    Holders,      \* the holders (hosts) of the image
    First,        \* the holder that is active at first
    NoHolder,     \* nobody holds the lock
    Timeout,      \* the session timeout T, in ticks
    Margin,       \* T - B: what the lease leaves for the leader's lag
    Lag,          \* how far before a request's send the leader may count silence from
    MaxEpoch,     \* activations start only below this epoch
    MaxWrites,    \* guest writes in a run
    Bug           \* "none" or one broken variant

ASSUME First \in Holders /\ NoHolder \notin Holders
ASSUME Lag \in Nat /\ Margin \in Nat /\ Timeout \in Nat /\ Margin < Timeout
ASSUME Bug \in {"none", "TrustLock", "LeaseWithoutMargin"}

(* SessionLease.boundNanos: B = 0.6 T in the code.  LeaseWithoutMargin:    *)
(* B = T, and the lease can outlive the session (LeaseEndsBeforeSession).  *)
Bound == IF Bug = "LeaseWithoutMargin" THEN Timeout ELSE Timeout - Margin

VARIABLES
    live,       \* [Holders -> BOOLEAN]: the ensemble holds the client's session open
    silent,     \* [Holders -> 0..Timeout]: silence the leader counts for it
    lock,       \* the lock znode: the holder whose session created it, or NoHolder
    rec,        \* the record znode: [epoch, version]
    top,        \* ghost: the highest epoch ever written to the record
    leasedTop,  \* ghost: the highest epoch activated with its lease running
    st,         \* [Holders -> "inactive" | "active"]
    epoch,      \* [Holders -> Nat]: the epoch of the holder's activation
    lease,      \* [Holders -> [s, left, lost]]: SessionLease's term (s = 0: none)
    renewal,    \* [Holders -> [on, s, ok, age]]: a renewal in flight
    pc,         \* [Holders -> [s, v, e]]: the step in progress, what it read
    nextWrite,  \* guest writes so far
    bad         \* ghost: a forbidden step taken, or "none"

vars == <<live, silent, lock, rec, top, leasedTop, st, epoch, lease, renewal,
          pc, nextWrite, bad>>

Max(a, b) == IF a > b THEN a ELSE b
Min(a, b) == IF a < b THEN a ELSE b
NoTerm == [s |-> 0, left |-> 0, lost |-> FALSE]
NoRenewal == [on |-> FALSE, ok |-> FALSE, age |-> 0]
Idle == [s |-> "idle", v |-> 0, e |-> 0]
AnyVersion == 0 \* setData without a version (ZooKeeper: -1; versions here start at 1)

(* SessionLease.refusal returns null: the lease admits and acknowledges.    *)
Running(h) == lease[h].s # 0 /\ ~lease[h].lost /\ lease[h].left > 0
(* ZkOwnershipLock.isHeld: this process's belief (the lock's session is    *)
(* still the client's), stale after an expiry until the client learns of   *)
(* it: here, until the lock is released.                                   *)
IsHeld(h) == lease[h].s # 0
Writer(h) == st[h] = "active" /\ epoch[h] = rec.epoch
(* A request that touches the session: the leader counts from up to Lag   *)
(* before the send.                                                         *)
Contact(h) == \E x \in 0..Lag : silent' = [silent EXCEPT ![h] = x]
(* ZkOwnershipLock.release: the lease disarmed, the znode deleted in the   *)
(* lock's own session only (after an expiry the ensemble deleted it).      *)
(* Its tries after a lost connection are one step here, the delete that    *)
(* takes effect: a retry deletes the znode only while a synced re-read     *)
(* finds it still the lock's session's, so it never deletes a later lock.  *)
ReleaseLock(h) ==
    /\ lease' = [lease EXCEPT ![h] = NoTerm]
    /\ lock' = IF lock = h
               THEN NoHolder ELSE lock

Init ==
    /\ live = [h \in Holders |-> TRUE]
    /\ silent = [h \in Holders |-> 0]
    /\ lock = First
    /\ rec = [epoch |-> 1, version |-> 1]
    /\ top = 1
    /\ leasedTop = 1
    /\ st = [h \in Holders |-> IF h = First THEN "active" ELSE "inactive"]
    /\ epoch = [h \in Holders |-> IF h = First THEN 1 ELSE 0]
    /\ lease = [h \in Holders |-> IF h = First THEN [s |-> 1, left |-> Bound, lost |-> FALSE] ELSE NoTerm]
    /\ renewal = [h \in Holders |-> NoRenewal]
    /\ pc = [h \in Holders |-> Idle]
    /\ nextWrite = 0
    /\ bad = "none"

(* ----------------------------------------------------------------------- *)
(*  Activation: the lock, then the record's compare-and-set                *)
(* ----------------------------------------------------------------------- *)

(* ZkOwnershipLock.acquire: create PATH/lock, ephemeral, in the client's   *)
(* session; it exists only while nobody holds the lock (NodeExists: the    *)
(* activation is refused and nothing changes).  The lease is armed from    *)
(* the time the request was sent.                                          *)
(* @java ZkOwnershipLock.acquire:88-88 "session.client().create().storingStatIn(stat).withMode(CreateMode.EPHEMERAL).forPath(lockPath, holderData());" *)
(* @java SessionLease.arm:138-138 "svTerm(t);" *)
ActLock(h) ==
    /\ st[h] = "inactive" /\ pc[h].s = "idle" /\ rec.epoch < MaxEpoch
    /\ lock = NoHolder
    /\ live' = [live EXCEPT ![h] = TRUE]
    /\ lock' = h
    /\ lease' = [lease EXCEPT ![h] = [s |-> 1, left |-> Bound, lost |-> FALSE]]
    /\ Contact(h)
    /\ pc' = [pc EXCEPT ![h] = [Idle EXCEPT !.s = "actRead"]]
    /\ UNCHANGED <<rec, top, leasedTop, st, epoch, renewal, nextWrite, bad>>

(* ZkRecordStore.readFound: the record and its znode version (after a      *)
(* sync).  A client whose session the ensemble ended gets no answer: the   *)
(* activation fails and the lock goes.                                     *)
(* @java ZkRecordStore.readFound:93-93 "data = session.client().getData().storingStatIn(stat).forPath(path);" *)
ActRead(h) ==
    /\ pc[h].s = "actRead"
    /\ pc' = [pc EXCEPT ![h] = [s |-> "actSet", v |-> rec.version, e |-> rec.epoch]]
    /\ UNCHANGED <<live, silent, lock, rec, top, leasedTop, st, epoch, lease, renewal,
                   nextWrite, bad>>

(* ZkRecordStore.compareAndWrite: setData with the version read.  It       *)
(* applies only if nobody wrote the record since (the ensemble applies at  *)
(* most one setData per version): the next epoch, ACTIVE.  Otherwise       *)
(* (BadVersion) the store re-reads, finds another epoch, and the kernel    *)
(* refuses the activation.                                                 *)
(* @java ZkRecordStore.compareAndWrite:72-72 "session.client().setData().withVersion(current.version()).forPath(path, data);" *)
ActSet(h) ==
    LET next == pc[h].e + 1 IN
    /\ pc[h].s = "actSet"
    /\ IF rec.version = pc[h].v
       THEN /\ rec' = [epoch |-> next, version |-> rec.version + 1]
            /\ top' = Max(top, next)
            /\ leasedTop' = IF Running(h) THEN Max(leasedTop, next) ELSE leasedTop
            /\ st' = [st EXCEPT ![h] = "active"]
            /\ epoch' = [epoch EXCEPT ![h] = next]
            /\ pc' = [pc EXCEPT ![h] = Idle]
       ELSE /\ pc' = [pc EXCEPT ![h] = [Idle EXCEPT !.s = "actFail"]]
            /\ UNCHANGED <<rec, top, leasedTop, st, epoch>>
    /\ UNCHANGED <<live, silent, lock, lease, renewal, nextWrite, bad>>

(* The refused activation: ZkOwnershipLock.release; still INACTIVE.        *)
(* @java ZkOwnershipLock.release:157-157 "zk.delete(lockPath, heldVersion, (code, path, ctx) -> {" *)
ActFail(h) ==
    /\ pc[h].s = "actFail"
    /\ ReleaseLock(h)
    /\ pc' = [pc EXCEPT ![h] = Idle]
    /\ UNCHANGED <<live, silent, rec, top, leasedTop, st, epoch, renewal, nextWrite, bad>>

(* ----------------------------------------------------------------------- *)
(*  Inactivation: the record written clean, then the lock released         *)
(* ----------------------------------------------------------------------- *)

(* ZkRecordStore.compareAndWrite of the clean record: its readFound, the   *)
(* version to write against.  TrustLock skips it while the holder believes *)
(* it holds the lock and has written the record before (the kernel's own   *)
(* recheck, before, found its epoch): it will write without a version.     *)
(* @java ZkRecordStore.readFound:93-93 "data = session.client().getData().storingStatIn(stat).forPath(path);" *)
InRead(h) ==
    /\ st[h] = "active" /\ pc[h].s = "idle"
    /\ pc' = IF Bug = "TrustLock" /\ IsHeld(h) /\ rec.epoch = epoch[h]
             THEN [pc EXCEPT ![h] = [s |-> "inSet", v |-> AnyVersion, e |-> epoch[h]]]
             ELSE [pc EXCEPT ![h] = [s |-> IF rec.epoch = epoch[h] THEN "inSet" ELSE "inFenced",
                                     v |-> rec.version, e |-> rec.epoch]]
    /\ UNCHANGED <<live, silent, lock, rec, top, leasedTop, st, epoch, lease, renewal,
                   nextWrite, bad>>

(* ZkRecordStore.compareAndWrite: setData of the clean record with the     *)
(* version read: INACTIVE.  Another holder that activated meanwhile moved  *)
(* the version: BadVersion, a re-read finds its epoch, and the holder is   *)
(* fenced (the record never goes back).  TrustLock's setData has no        *)
(* version and writes the old epoch over the new (RecordEpochNeverGoesBack).*)
(* @java ZkRecordStore.compareAndWrite:72-72 "session.client().setData().withVersion(current.version()).forPath(path, data);" *)
InSet(h) ==
    /\ pc[h].s = "inSet"
    /\ IF pc[h].v = AnyVersion \/ rec.version = pc[h].v
       THEN /\ rec' = [epoch |-> pc[h].e, version |-> rec.version + 1]
            /\ st' = [st EXCEPT ![h] = "inactive"]
            /\ pc' = [pc EXCEPT ![h] = [Idle EXCEPT !.s = "inRelease"]]
       ELSE /\ pc' = [pc EXCEPT ![h] = [Idle EXCEPT !.s = "inFenced"]]
            /\ UNCHANGED <<rec, st>>
    /\ UNCHANGED <<live, silent, lock, top, leasedTop, epoch, lease, renewal, nextWrite, bad>>

(* OwnedImage's fenced inactivation: INACTIVE, nothing written,            *)
(* ZkOwnershipLock.release (a no-op once the session is gone).             *)
(* @java ZkOwnershipLock.release:157-157 "zk.delete(lockPath, heldVersion, (code, path, ctx) -> {" *)
InFenced(h) ==
    /\ pc[h].s = "inFenced"
    /\ st' = [st EXCEPT ![h] = "inactive"]
    /\ ReleaseLock(h)
    /\ pc' = [pc EXCEPT ![h] = Idle]
    /\ UNCHANGED <<live, silent, rec, top, leasedTop, epoch, renewal, nextWrite, bad>>

(* ZkOwnershipLock.release after the clean record.                         *)
(* @java ZkOwnershipLock.release:157-157 "zk.delete(lockPath, heldVersion, (code, path, ctx) -> {" *)
InRelease(h) ==
    /\ pc[h].s = "inRelease"
    /\ ReleaseLock(h)
    /\ pc' = [pc EXCEPT ![h] = Idle]
    /\ UNCHANGED <<live, silent, rec, top, leasedTop, st, epoch, renewal, nextWrite, bad>>

(* ----------------------------------------------------------------------- *)
(*  Writes through LeasedDevice                                            *)
(* ----------------------------------------------------------------------- *)

(* LeasedDevice.write: lease.admit, before the device: refused (nothing    *)
(* changes) unless the lease runs.                                         *)
(* @java LeasedDevice.write:27-27 "lease.admit(\"write\");" *)
WrAdmit(h) ==
    /\ st[h] = "active" /\ pc[h].s = "idle" /\ nextWrite < MaxWrites
    /\ Running(h)
    /\ pc' = [pc EXCEPT ![h] = [Idle EXCEPT !.s = "wrDevice"]]
    /\ nextWrite' = nextWrite + 1
    /\ UNCHANGED <<live, silent, lock, rec, top, leasedTop, st, epoch, lease, renewal,
                   bad>>

(* The device write: it may take any time (a paused JVM, a slow device).    *)
(* @java LeasedDevice.write:28-28 "super.write(offset, src);" *)
WrDevice(h) ==
    /\ pc[h].s = "wrDevice"
    /\ pc' = [pc EXCEPT ![h] = [Idle EXCEPT !.s = "wrAck"]]
    /\ UNCHANGED <<live, silent, lock, rec, top, leasedTop, st, epoch, lease, renewal,
                   nextWrite, bad>>

(* lease.acknowledge: the write returns only if the lease still runs.  An  *)
(* acknowledgement after another holder activated with its lease running  *)
(* is forbidden (NoAckAfterSuccessor): that is what the lease's bound      *)
(* prevents.                                                               *)
(* @java LeasedDevice.write:29-29 "lease.acknowledge(\"write of \" + length + \" bytes at \" + offset);" *)
WrAck(h) ==
    /\ pc[h].s = "wrAck"
    /\ bad' = IF Running(h) /\ leasedTop > epoch[h] /\ bad = "none"
              THEN "a write acknowledged after another holder activated" ELSE bad
    /\ pc' = [pc EXCEPT ![h] = Idle]
    /\ UNCHANGED <<live, silent, lock, rec, top, leasedTop, st, epoch, lease, renewal,
                   nextWrite>>

(* ----------------------------------------------------------------------- *)
(*  The lease: renewals                                                    *)
(* ----------------------------------------------------------------------- *)

(* SessionLease.renew: a check of the lock znode's version in the term's   *)
(* session, one at a time.  Sent while the ensemble holds the session and  *)
(* its lock: it touches the session; otherwise the answer is an error     *)
(* (renew loses the lease at once when the client already knows its       *)
(* session changed: here, at the reply).                                   *)
(* @java SessionLease.renew:237-237 "zk.multi(List.of(Op.check(lockPath, t.lockVersion())), (rc, path, ctx, results) -> {" *)
RenewSend(h) ==
    /\ lease[h].s # 0 /\ ~lease[h].lost /\ ~renewal[h].on
    /\ LET ok == live[h] /\ lock = h IN
       /\ renewal' = [renewal EXCEPT ![h] = [on |-> TRUE, ok |-> ok, age |-> 0]]
       /\ IF ok THEN Contact(h) ELSE UNCHANGED silent
    /\ UNCHANGED lease
    /\ UNCHANGED <<live, lock, rec, top, leasedTop, st, epoch, pc, nextWrite, bad>>

(* The renewal's callback: OK moves the deadline of the term in the same   *)
(* session to the send time + Bound (SessionLease.extend); SESSIONEXPIRED, *)
(* NONODE or BADVERSION lose it for good (SessionLease.lose); a lost       *)
(* connection changes nothing (the deadline runs out on its own).          *)
(* @java SessionLease.extend:257-257 "if (casTerm(cur, cur.extendedTo(newDeadline))) {" *)
(* @java SessionLease.lose:268-268 "if (casTerm(cur, cur.lostBecause(why))) {" *)
RenewReply(h, connectionLost) ==
    LET r == renewal[h]
        same == lease[h].s # 0 /\ ~lease[h].lost
    IN
    /\ r.on /\ connectionLost \in BOOLEAN
    /\ renewal' = [renewal EXCEPT ![h] = NoRenewal]
    /\ lease' = IF connectionLost \/ ~same THEN lease
                ELSE IF r.ok THEN [lease EXCEPT ![h].left = Max(@, Bound - r.age)]
                ELSE [lease EXCEPT ![h].lost = TRUE]
    /\ UNCHANGED <<live, silent, lock, rec, top, leasedTop, st, epoch, pc, nextWrite, bad>>

(* ----------------------------------------------------------------------- *)
(*  The environment: time and the ensemble                                 *)
(* ----------------------------------------------------------------------- *)

(* One unit of time passes for everybody.  Only the session that holds    *)
(* the lock falls silent: the client pings any other while connected, and  *)
(* its expiry would matter to nothing here (a smaller model).              *)
(* @env: time passes, not the code.                                         *)
Tick ==
    /\ silent' = [h \in Holders |-> IF live[h] /\ lock = h
                                    THEN Min(silent[h] + 1, Timeout) ELSE 0]
    /\ lease' = [h \in Holders |-> [lease[h] EXCEPT !.left = Max(@ - 1, 0)]]
    /\ renewal' = [h \in Holders |-> IF renewal[h].on
                                     THEN [renewal[h] EXCEPT !.age = Min(@ + 1, Bound)]
                                     ELSE renewal[h]]
    /\ UNCHANGED <<live, lock, rec, top, leasedTop, st, epoch, pc, nextWrite, bad>>

(* The ensemble expires a session it has not heard from for the timeout,  *)
(* and deletes its ephemeral lock znode.                                   *)
(* @env: the ensemble expires a session, not our code.                      *)
Expire(h) ==
    /\ live[h] /\ silent[h] >= Timeout
    /\ live' = [live EXCEPT ![h] = FALSE]
    /\ lock' = IF lock = h THEN NoHolder ELSE lock
    /\ UNCHANGED <<silent, rec, top, leasedTop, st, epoch, lease, renewal, pc, nextWrite, bad>>

(* ----------------------------------------------------------------------- *)
(*  Specification                                                          *)
(* ----------------------------------------------------------------------- *)
Continue(h) ==
    \/ ActRead(h) \/ ActSet(h) \/ ActFail(h)
    \/ InSet(h) \/ InFenced(h) \/ InRelease(h)
    \/ WrDevice(h) \/ WrAck(h)
    \/ \E c \in BOOLEAN : RenewReply(h, c)

Start(h) == ActLock(h) \/ InRead(h) \/ WrAdmit(h) \/ RenewSend(h)

Next ==
    \/ \E h \in Holders : Start(h) \/ Continue(h) \/ Expire(h)
    \/ Tick

Spec == Init /\ [][Next]_vars

(* ----------------------------------------------------------------------- *)
(*  Invariants                                                             *)
(* ----------------------------------------------------------------------- *)
TypeOK ==
    /\ live \in [Holders -> BOOLEAN]
    /\ silent \in [Holders -> 0..Timeout]
    /\ lock \in Holders \cup {NoHolder}
    /\ \A h \in Holders : st[h] \in {"inactive", "active"} /\ lease[h].left \in 0..Bound
    /\ nextWrite \in 0..MaxWrites

(* DESIGN 4.6, the bound: while a holder's lease runs, the ensemble still  *)
(* holds the lease's session and the lock znode it created, so nobody else *)
(* can have the lock.                                                      *)
LeaseEndsBeforeSession ==
    \A h \in Holders :
        Running(h) => live[h] /\ lock = h

(* DESIGN 4.6: no write is acknowledged by a holder after another holder   *)
(* activated with its lease running (what HoldersInSeparateJvmsTest checks *)
(* on the data).  "With its lease running": a holder whose lock's session  *)
(* expires between its lock and its record write can still complete the   *)
(* activation in the client's next session, but its lease is gone for     *)
(* good and it acknowledges nothing; the previous holder is fenced by the  *)
(* epoch at its next re-read (specs/README.md, where the spec and the code *)
(* disagreed).                                                             *)
NoAckAfterSuccessor == bad = "none"

(* DESIGN 4.3, 4.6: the record's epoch never goes back: a holder that      *)
(* returns is refused by the version, whatever it believes of its lock.    *)
RecordEpochNeverGoesBack == rec.epoch = top

(* At most one active holder whose epoch is the record's.                  *)
AtMostOneWriter == \A h, g \in Holders : (h # g /\ Writer(h)) => ~Writer(g)
=============================================================================
