package dev.handoff.specs;

import dev.handoff.coordination.ZkOwnershipTraceScenarios;
import dev.handoff.ownership.OwnershipTraceRecorder;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Trace validation of ownership on ZooKeeper (specs/README.md): two holders hand an image over
 * through a real three-server ensemble, their handles built from the coordination module's record
 * store and lock, every step recorded in the order it took effect; one holder's session is expired
 * at the ensemble (the environment step LOSE_LOCK). TLC checks that Ownership.tla can take exactly
 * those steps (TraceOwnership.tla, with a lock that may be lost once), and rejects such a trace
 * with one event changed.
 */
// The ensemble starts once and each scenario runs once (~10-20 s in all); each test forks TLC once
// (a few seconds).
@Timeout(value = 10, unit = TimeUnit.MINUTES)
class ZkOwnershipTraceTest {
    private static ZkOwnershipTraceScenarios zk;
    private static List<String> handoff;
    private static List<String> expiry;

    // One ensemble for the class, each scenario run once, on first use: a scenario that fails
    // fails the tests that check its trace (a broken coordination module shows there, by name).
    private static synchronized ZkOwnershipTraceScenarios zk() throws Exception {
        if (zk == null) {
            zk = ZkOwnershipTraceScenarios.start();
        }
        return zk;
    }

    private static synchronized List<String> handoff() throws Exception {
        if (handoff == null) {
            handoff = zk().handoffAndBack(TraceCheck.WORK_DIR.resolve("zk-handoff-and-back-run"));
        }
        return handoff;
    }

    private static synchronized List<String> expiry() throws Exception {
        if (expiry == null) {
            expiry = zk().sessionExpiry(TraceCheck.WORK_DIR.resolve("zk-session-expiry-run"));
        }
        return expiry;
    }

    @AfterAll
    static synchronized void stopTheEnsemble() throws Exception {
        if (zk != null) {
            zk.close();
        }
    }

    static Map<String, String> constants(int maxLostLocks) {
        Map<String, String> k = OwnershipTraceTest.constants();
        k.put("MaxLostLocks", Integer.toString(maxLostLocks));
        return k;
    }

    static TraceCheck check(String name, List<String> lines, int maxLostLocks) throws Exception {
        TraceCheck c = TraceCheck.run(name, "Ownership", "TraceOwnership",
                OwnershipTraceRecorder.toTlaModule("TraceData", lines), lines.size(), constants(maxLostLocks));
        System.out.println("trace " + c.summary());
        return c;
    }

    private static int indexOf(List<String> lines, String prefix, int from) {
        for (int i = from; i < lines.size(); i++) {
            if (lines.get(i).startsWith(prefix)) {
                return i;
            }
        }
        return -1;
    }

    @Test
    void aHandoffThroughZooKeeperAndBackIsStepsOfOwnership() throws Exception {
        TraceCheck c = check("zk-handoff-and-back", handoff(), 1);
        assertThat(c.accepted()).as("the spec took %d of %d steps; see %s", c.matched(), c.events(),
                TraceCheck.WORK_DIR.resolve("zk-handoff-and-back")).isTrue();
    }

    @Test
    void aHolderWhoseSessionExpiresIsFencedInStepsOfOwnership() throws Exception {
        List<String> lines = expiry();
        assertThat(indexOf(lines, "[s |-> \"LOSE_LOCK\", n |-> \"n1\"", 0)).as("the expiry step").isNotNegative();
        TraceCheck c = check("zk-session-expiry", lines, 1);
        assertThat(c.accepted()).as("the spec took %d of %d steps; see %s", c.matched(), c.events(),
                TraceCheck.WORK_DIR.resolve("zk-session-expiry")).isTrue();
    }

    /** The expiry is a step of the environment the spec must allow: with no lock to lose, it stops there. */
    @Test
    void anExpiryTraceIsRejectedWhereTheLockIsLostWhenNoLockMayBeLost() throws Exception {
        List<String> lines = expiry();
        int at = indexOf(lines, "[s |-> \"LOSE_LOCK\", n |-> \"n1\"", 0);
        assertThat(at).as("the expiry step").isNotNegative();
        TraceCheck c = check("zk-session-expiry-no-loss", lines, 0);
        assertThat(c.accepted()).isFalse();
        assertThat(c.matched()).isEqualTo(at);
    }

    /** The check bites: the old holder's write, refused by the epoch it re-read, recorded as admitted. */
    @Test
    void anExpiryTraceWithTheOldHoldersRefusedWriteAdmittedIsRejected() throws Exception {
        List<String> lines = new ArrayList<>(expiry());
        int lost = indexOf(lines, "[s |-> \"LOSE_LOCK\", n |-> \"n1\"", 0);
        int at = indexOf(lines, "[s |-> \"WRITE_ADMIT\", n |-> \"n1\", ok |-> FALSE", lost);
        assertThat(lost).as("the expiry step").isNotNegative();
        assertThat(at).as("the old holder's refused write").isGreaterThan(lost);
        String e = lines.get(at);
        lines.set(at, e.replace("ok |-> FALSE", "ok |-> TRUE"));
        TraceCheck c = check("zk-session-expiry-changed", lines, 1);
        assertThat(c.accepted()).isFalse();
        assertThat(c.matched()).isEqualTo(at);
    }
}
