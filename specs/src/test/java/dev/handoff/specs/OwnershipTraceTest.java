package dev.handoff.specs;

import dev.handoff.ownership.OwnershipTraceRecorder;
import dev.handoff.ownership.OwnershipTraceScenarios;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Trace validation of ownership (specs/README.md): handoffs between two processes (this JVM and
 * a second one) on one image file, every step of both handles recorded in the order it took
 * effect, and TLC checks that Ownership.tla can take exactly those steps (TraceOwnership.tla).
 * It also rejects such a trace with one event changed.
 */
// Each test forks TLC once per trace (a few seconds to a minute each on a busy machine):
// longer than JUnit's default timeout.
@Timeout(value = 10, unit = TimeUnit.MINUTES)
class OwnershipTraceTest {

    static Map<String, String> constants() {
        Map<String, String> k = new LinkedHashMap<>();
        k.put("Nodes", "{\"n1\", \"n2\"}");
        k.put("Source", "\"n1\"");
        k.put("Destination", "\"n2\"");
        k.put("NoNode", "\"none\"");
        k.put("Commands", "{\"activate\", \"inactivate\", \"prepare\", \"accept\", \"abort\", \"close\", \"write\", \"flush\", \"read\"}");
        k.put("MaxWrites", "1000");
        k.put("MaxEpoch", "1000");
        k.put("MaxCrashes", "10");
        k.put("MaxLostLocks", "0");
        k.put("MaxStorageLosses", "0");
        k.put("Bug", "\"none\"");
        return k;
    }

    static TraceCheck check(String name, List<String> lines) throws Exception {
        TraceCheck c = TraceCheck.run(name, "Ownership", "TraceOwnership",
                OwnershipTraceRecorder.toTlaModule("TraceData", lines), lines.size(), constants());
        System.out.println("trace " + c.summary());
        return c;
    }

    private static Path dir(String name) {
        return TraceCheck.WORK_DIR.resolve(name + "-run");
    }

    @Test
    void aHandoffToAnotherProcessAndBackIsStepsOfOwnership() throws Exception {
        List<String> lines = OwnershipTraceScenarios.handoffAndBack(dir("handoff-and-back"));
        TraceCheck c = check("handoff-and-back", lines);
        assertThat(c.accepted()).as("the spec took %d of %d steps; see %s", c.matched(), c.events(),
                TraceCheck.WORK_DIR.resolve("handoff-and-back")).isTrue();
    }

    @Test
    void aHandoffWhoseDestinationProcessDiesIsStepsOfOwnership() throws Exception {
        List<String> lines = OwnershipTraceScenarios.handoffThenCrash(dir("handoff-crash"));
        TraceCheck c = check("handoff-crash", lines);
        assertThat(c.accepted()).as("the spec took %d of %d steps; see %s", c.matched(), c.events(),
                TraceCheck.WORK_DIR.resolve("handoff-crash")).isTrue();
    }

    /** The check bites: the destination's activation recorded with the epoch it did not write. */
    @Test
    void aHandoffTraceWithOneEventChangedIsRejected() throws Exception {
        List<String> lines = new ArrayList<>(OwnershipTraceScenarios.handoffAndBack(dir("handoff-changed")));
        int at = -1;
        for (int i = 0; i < lines.size() && at < 0; i++) {
            if (lines.get(i).startsWith("[s |-> \"ACT_CAS\", n |-> \"n2\"")) {
                at = i;
            }
        }
        assertThat(at).as("the destination's compare-and-write").isNotNegative();
        String e = lines.get(at);
        lines.set(at, e.replaceFirst("epoch \\|-> (\\d+), newest", "epoch |-> 1, newest"));
        assertThat(lines.get(at)).isNotEqualTo(e);
        TraceCheck c = check("handoff-changed", lines);
        assertThat(c.accepted()).isFalse();
        assertThat(c.matched()).isEqualTo(at);
    }
}
