package dev.handoff.specs;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The lifelines of a spec's sequence diagrams and who acts in each step: which variables are
 * whose state (the guests', the copier's, the source's, the target's, each holder's), and which
 * lifeline takes an action. A process of the spec (a guest thread, an ownership holder) is one
 * lifeline per key of its state function, found in the trace's first state.
 *
 * @param spec          the spec's name
 * @param processLabel  a process lifeline's label before its key ("guest", "holder"), or null
 * @param processKeysOf the variable whose keys are the processes, or null
 * @param processVars   variables that are functions from process to that process's state
 * @param before        lifelines left of the processes (management, the environment)
 * @param after         lifelines right of the processes (the job, the devices)
 * @param owners        variable to the lifeline whose state it is (wins over processVars)
 * @param ghosts        variables that are no code's state (a checker's bookkeeping): shown as
 *                      a note on the step that changed them
 * @param hidden        counters that only bound the model: not shown
 * @param actors        action name pattern to the acting lifeline; {@link #PROCESS} for the
 *                      process whose state the step changed; the first match wins
 */
record Cast(String spec, String processLabel, String processKeysOf, Set<String> processVars, List<Lifeline> before,
            List<Lifeline> after, Map<String, String> owners, Set<String> ghosts, Set<String> hidden,
            Map<Pattern, String> actors) {

    static final String PROCESS = "*";

    /** A lifeline: PlantUML's participant kind ({@code actor}, {@code database}, ...), id, label. */
    record Lifeline(String kind, String id, String label) {
    }

    static Cast of(String spec) {
        return switch (spec) {
            case "MirrorCopy" -> new Cast(spec, "guest", "gs", Set.of("gs"),
                    List.of(new Lifeline("actor", "mgmt", "management"), new Lifeline("control", "env", "time")),
                    List.of(new Lifeline("control", "job", "MirrorJob"),
                            new Lifeline("participant", "copier", "Copier"),
                            new Lifeline("collections", "dirty", "DirtyBitmap"),
                            new Lifeline("collections", "claimed", "InFlightChunks"),
                            new Lifeline("database", "src", "source"),
                            new Lifeline("database", "tgt", "target")),
                    map("job", "job", "pumps", "job", "failures", "job", "ops", "copier", "unreported", "copier",
                            "dirty", "dirty", "claimed", "claimed", "src", "src", "tgt", "tgt"),
                    Set.of(), Set.of("writes"),
                    actors("Start|PauseCmd|Resume|Complete|Finalize|Cancel|ForceCancel|SetWriteBlocking|SetSpeed",
                            "mgmt", "Copy.*", "copier", "RunPump|TimerFires|FinishFlush|FinishCheck", "job",
                            "Tick", "env", ".*", PROCESS));
            case "Ownership" -> new Cast(spec, "holder", "st",
                    Set.of("st", "epoch", "newest", "pc", "cache", "pending", "lockLost"),
                    List.of(new Lifeline("actor", "mgmt", "management"), new Lifeline("control", "env", "failures")),
                    List.of(new Lifeline("participant", "lock", "OwnershipLock"),
                            new Lifeline("database", "record", "OwnershipRecord"),
                            new Lifeline("database", "image", "shared image")),
                    map("lockHolder", "lock", "record", "record", "img", "image", "durable", "image",
                            "msgs", "mgmt"),
                    Set.of("bad", "by", "handedOver"), Set.of("nextWrite", "env"),
                    actors("Crash|LoseLock|StorageLoss", "env", ".*", PROCESS));
            case "LeasedOwnership" -> new Cast(spec, "holder", "st",
                    Set.of("st", "epoch", "lease", "renewal", "pc"),
                    List.of(new Lifeline("control", "env", "clock")),
                    List.of(new Lifeline("database", "zk", "ZooKeeper ensemble")),
                    map("live", "zk", "silent", "zk", "lock", "zk", "rec", "zk"),
                    Set.of("bad", "top", "leasedTop"), Set.of("nextWrite"),
                    actors("Expire", "zk", "Tick", "env", ".*", PROCESS));
            case "PersistentBitmap" -> new Cast(spec, null, null, Set.of(),
                    List.of(new Lifeline("actor", "writer", "guest writer"),
                            new Lifeline("participant", "copier", "copier"),
                            new Lifeline("participant", "pass", "clear pass"),
                            new Lifeline("control", "env", "power")),
                    List.of(new Lifeline("participant", "intents", "WriteIntents"),
                            new Lifeline("collections", "dirty", "dirty bitmap and claims"),
                            new Lifeline("database", "bitmap", "bitmap file"),
                            new Lifeline("database", "src", "source"),
                            new Lifeline("database", "tgt", "target")),
                    map("w", "writer", "c", "copier", "p", "pass", "bitMem", "intents", "durMem", "intents",
                            "active", "intents", "fresh", "intents", "dirty", "dirty", "claimed", "dirty",
                            "bitFile", "bitmap", "bitDisk", "bitmap", "srcLive", "src", "srcDur", "src",
                            "tgtLive", "tgt", "tgtDur", "tgt"),
                    Set.of(), Set.of("crashes"),
                    actors("Crash", "env", "Clear.*", "pass", "W.*", "writer", "C.*", "copier"));
            case "GuestGate" -> new Cast(spec, "guest", "gs", Set.of("gs"),
                    List.of(new Lifeline("control", "job", "MirrorJob (close, isDrained, open)")),
                    List.of(new Lifeline("collections", "cells", "GuestGate.cells"),
                            new Lifeline("entity", "closed", "GuestGate.closed")),
                    map("job", "job", "cells", "cells", "closed", "closed"),
                    Set.of("signalled"), Set.of("entries", "closes"),
                    actors("Close|CloseSum|CloseStore|DrainRead|DrainSum|Open", "job", ".*", PROCESS));
            default -> throw new IllegalArgumentException("no lifelines defined for spec " + spec
                    + " (add them to Cast.of)");
        };
    }

    /** Definitions of the next-state relation whose disjuncts are actions (TLC names them for an inline step). */
    List<String> containers() {
        return SpecMapTest.NEXT_CHAIN.getOrDefault(spec, List.of("Next"));
    }

    /** Every lifeline, processes in the first state's key order between before and after. */
    List<Lifeline> lifelines(TlcTrace.State first) {
        List<Lifeline> all = new ArrayList<>(before);
        for (String key : processes(first)) {
            all.add(new Lifeline("actor", key, processLabel + " " + key));
        }
        all.addAll(after);
        return all;
    }

    List<String> processes(TlcTrace.State first) {
        if (processKeysOf == null) {
            return List.of();
        }
        TlaValue v = first.vars().get(processKeysOf);
        if (!(v instanceof TlaValue.Fn fn)) {
            throw new IllegalArgumentException(processKeysOf + " is not a function of processes: " + v);
        }
        return List.copyOf(fn.entries().keySet());
    }

    /** The lifeline whose state {@code var} is (or whose part {@code key} of it is), or null. */
    String owner(String var, String key) {
        if (owners.containsKey(var)) {
            return owners.get(var);
        }
        return processVars.contains(var) ? key : null;
    }

    /** The acting lifeline's id for {@code action}, or {@link #PROCESS}. */
    String actor(String action) {
        for (Map.Entry<Pattern, String> e : actors.entrySet()) {
            if (e.getKey().matcher(action).matches()) {
                return e.getValue();
            }
        }
        throw new IllegalArgumentException("no lifeline acts " + action);
    }

    private static Map<String, String> map(String... pairs) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            m.put(pairs[i], pairs[i + 1]);
        }
        return m;
    }

    private static Map<Pattern, String> actors(String... pairs) {
        Map<Pattern, String> m = new LinkedHashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            m.put(Pattern.compile(pairs[i]), pairs[i + 1]);
        }
        return m;
    }
}
