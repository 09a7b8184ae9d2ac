package dev.handoff.specs;

import dev.handoff.mirror.CopyMode;
import dev.handoff.mirror.ErrorPolicy;
import dev.handoff.mirror.MirrorTraceRecorder;
import dev.handoff.mirror.SyncMode;
import dev.handoff.properties.mirror.MirrorScenario;
import dev.handoff.properties.mirror.MirrorSimulation;
import dev.handoff.properties.sim.PropertyViolation;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Trace validation of the mirror (specs/README.md): the real kernel, driven by the deterministic
 * simulator on seeds of both copy modes with injected faults, records its spec-level steps, and
 * TLC checks that {@code MirrorCopy.tla} can take exactly those steps ({@code TraceMirrorCopy.tla}).
 *
 * <p>Caught with it (mutants/catalog.json): clear-after-read and wb-clears-partial-chunk, whose
 * kernels take steps the spec does not allow. And it rejects a recorded trace with one event
 * changed or one dropped.
 *
 * <p>More seeds: {@code -Dhandoff.traceSeeds=N} (default {@value #DEFAULT_SEEDS} per copy mode).
 */
// Each test forks TLC once per trace (a few seconds to a minute each on a busy machine):
// longer than JUnit's default timeout.
@Timeout(value = 10, unit = TimeUnit.MINUTES)
class MirrorTraceTest {
    static final int DEFAULT_SEEDS = 3;
    static final int MAX_CHUNKS = 10;

    /**
     * A simulator run's trace: the scenario, the recorder and the spec's constants. {@code violation}
     * is the property the simulator saw fail, if any: the trace then ends there, and is checked
     * all the same (a broken kernel's trace must be rejected by the spec, whatever the simulator
     * says).
     */
    record Recorded(String name, MirrorScenario scenario, MirrorTraceRecorder recorder, PropertyViolation violation) {
        Map<String, String> constants() {
            return MirrorTraceTest.constants(scenario.config(), recorder.chunks());
        }
    }

    static Map<String, String> constants(MirrorScenario.Config c, int chunks) {
        Map<String, String> k = new LinkedHashMap<>();
        k.put("N", String.valueOf(chunks));
        k.put("Values", "{1, 2}");
        k.put("Guests", "{\"g1\", \"g2\"}");
        k.put("MaxWriteChunks", String.valueOf(chunks));
        k.put("Partial", "TRUE");
        k.put("Discards", "TRUE");
        k.put("Reads", "TRUE");
        k.put("BufChunks", String.valueOf(c.bufChunks()));
        k.put("Parallelism", "1000");
        k.put("MaxRun", String.valueOf(Math.min(c.maxCopyChunks(), c.bufChunks())));
        k.put("Sync", c.sync() == SyncMode.FULL ? "\"full\"" : "\"none\"");
        k.put("InitialMode", c.copyMode() == CopyMode.WRITE_BLOCKING ? "\"write-blocking\"" : "\"background\"");
        k.put("AutoFinalize", c.autoFinalize() ? "TRUE" : "FALSE");
        k.put("Commands", "{\"start\", \"pause\", \"resume\", \"complete\", \"finalize\", \"cancel\", \"force\", \"writeBlocking\", \"speed\"}");
        k.put("SourcePolicy", policy(c.onSourceError()));
        k.put("TargetPolicy", policy(c.onTargetError()));
        k.put("FailKinds", "{\"io\", \"nospace\"}");
        k.put("MaxFailures", "100000");
        k.put("MaxPumps", "100000");
        k.put("MaxWrites", "0");
        k.put("Bug", "\"none\"");
        return k;
    }

    private static String policy(ErrorPolicy p) {
        return "\"" + p.name().toLowerCase(Locale.ROOT) + "\"";
    }

    /** Runs simulator seeds from {@code first} on until {@code wanted} traces of {@code mode} with faults. */
    static List<Recorded> record(CopyMode mode, long first, int wanted) {
        List<Recorded> out = new ArrayList<>();
        for (long seed = first; out.size() < wanted && seed < first + 10_000; seed++) {
            MirrorScenario s = MirrorScenario.generate(seed, 300, false);
            MirrorScenario.Config c = s.config();
            if (c.copyMode() != mode || c.chunks() > MAX_CHUNKS) {
                continue;
            }
            MirrorTraceRecorder recorder = new MirrorTraceRecorder();
            PropertyViolation violation = null;
            try {
                MirrorSimulation.Result r = new MirrorSimulation(s, recorder).run();
                if (r.errors() == 0) {
                    continue; // with faults only
                }
            } catch (PropertyViolation v) {
                violation = v;
            }
            out.add(new Recorded("sim-" + mode.name().toLowerCase(Locale.ROOT) + "-" + seed, s, recorder, violation));
        }
        assertThat(out).as("simulator seeds of %s mode with faults", mode).hasSize(wanted);
        return out;
    }

    static TraceCheck check(Recorded r) throws Exception {
        List<MirrorTraceRecorder.Event> events = r.recorder().events();
        return check(r.name(), events, r.constants());
    }

    static TraceCheck check(String name, List<MirrorTraceRecorder.Event> events, Map<String, String> constants)
            throws Exception {
        TraceCheck c = TraceCheck.run(name, "MirrorCopy", "TraceMirrorCopy",
                MirrorTraceRecorder.toTlaModule("TraceData", events), events.size(), constants);
        System.out.println("trace " + c.summary());
        return c;
    }

    private static int seeds() {
        return Integer.getInteger("handoff.traceSeeds", DEFAULT_SEEDS);
    }

    static void assertAccepted(Recorded r) throws Exception {
        TraceCheck c = check(r);
        assertThat(c.accepted()).as("%s: the spec took %d of %d steps; see %s%s%n%s", r.name(), c.matched(),
                c.events(), TraceCheck.WORK_DIR.resolve(r.name()),
                r.violation() == null ? "" : " (the simulator also saw: " + r.violation().getMessage() + ")",
                r.scenario()).isTrue();
    }

    @Test
    void simulatorRunsInBackgroundModeWithFaultsAreStepsOfMirrorCopy() throws Exception {
        for (Recorded r : record(CopyMode.BACKGROUND, 1, seeds())) {
            assertAccepted(r);
        }
    }

    @Test
    void simulatorRunsInWriteBlockingModeWithFaultsAreStepsOfMirrorCopy() throws Exception {
        for (Recorded r : record(CopyMode.WRITE_BLOCKING, 1, seeds())) {
            assertAccepted(r);
        }
    }

    /** The check bites: one event's observed dirty chunks changed, and the spec cannot follow. */
    @Test
    void aTraceWithOneEventChangedIsRejected() throws Exception {
        Recorded r = record(CopyMode.BACKGROUND, 1, 1).get(0);
        List<MirrorTraceRecorder.Event> events = new ArrayList<>(r.recorder().events());
        int at = firstIndex(events, "BG_MARK");
        MirrorTraceRecorder.Event e = events.get(at);
        long lowest = Long.lowestOneBit(e.dirty());
        events.set(at, new MirrorTraceRecorder.Event(e.step(), e.guest(), e.copy(), e.kind(), e.c1(), e.h1(), e.c2(),
                e.h2(), e.ok(), e.a(), e.chunk(), e.dirty() & ~lowest, e.claimed(), e.state()));
        TraceCheck c = check(r.name() + "-changed", events, r.constants());
        assertThat(c.accepted()).as("a mark that did not mark one of its chunks").isFalse();
        assertThat(c.matched()).as("where the spec got stuck").isEqualTo(at);
    }

    /** The check bites: one event dropped (a copy's source read), and the spec cannot follow. */
    @Test
    void aTraceWithOneEventDroppedIsRejected() throws Exception {
        Recorded r = record(CopyMode.BACKGROUND, 1, 1).get(0);
        List<MirrorTraceRecorder.Event> events = new ArrayList<>(r.recorder().events());
        int at = firstIndex(events, "COPY_READ");
        events.remove(at);
        TraceCheck c = check(r.name() + "-dropped", events, r.constants());
        assertThat(c.accepted()).as("a copy that writes the target without reading the source").isFalse();
    }

    private static int firstIndex(List<MirrorTraceRecorder.Event> events, String step) {
        for (int i = 0; i < events.size(); i++) {
            if (events.get(i).step().equals(step) && (!step.equals("BG_MARK") || events.get(i).dirty() != 0)) {
                return i;
            }
        }
        throw new AssertionError("no " + step + " event in the trace");
    }
}
