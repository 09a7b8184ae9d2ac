package dev.handoff.specs;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One entry of {@code models.json}: a TLC model (an MC module with one config) and the
 * result it must give.
 *
 * @param spec           the spec the model checks, also the folder under {@code tla/}
 * @param module         the MC module, e.g. {@code MCMirrorCopy.tla}
 * @param config         the TLC config, e.g. {@code MCMirrorCopy_ClearAfterRead_bug.cfg}
 * @param profile        {@code default} (every build) or {@code large} (-Plarge-models)
 * @param expected       {@code success}, or the invariant or property TLC must report
 *                       violated
 * @param distinctStates distinct states of a passing model; {@code null} for a failing one
 * @param depth          depth of the state graph of a passing model; {@code null} otherwise
 * @param traceLength    states in the counterexample of a failing model; {@code null}
 *                       otherwise
 * @param workers        TLC's {@code -workers}: 1 keeps the search order, the trace and
 *                       the depth deterministic
 * @param timeoutSeconds wall-clock bound for the run
 */
record Model(String spec, String module, String config, String profile, String expected,
             Long distinctStates, Long depth, Long traceLength, int workers,
             long timeoutSeconds) {

    static final String SUCCESS = "success";
    private static final Set<String> KEYS = Set.of("spec", "module", "config", "profile",
            "expected", "distinctStates", "depth", "traceLength", "workers", "timeoutSeconds");

    /** The config's name without {@code .cfg}: the model's name in reports. */
    String name() {
        return config.endsWith(".cfg") ? config.substring(0, config.length() - 4) : config;
    }

    boolean expectsSuccess() {
        return SUCCESS.equals(expected);
    }

    Path directory(Path specsDir) {
        return specsDir.resolve("tla").resolve(spec);
    }

    static Model fromJson(Map<?, ?> json) {
        for (Object key : json.keySet()) {
            if (!KEYS.contains(key)) {
                throw new IllegalArgumentException("models.json: unknown key \"" + key
                        + "\" in " + json);
            }
        }
        Model model = new Model(
                string(json, "spec"),
                string(json, "module"),
                string(json, "config"),
                json.containsKey("profile") ? string(json, "profile") : "default",
                string(json, "expected"),
                (Long) json.get("distinctStates"),
                (Long) json.get("depth"),
                (Long) json.get("traceLength"),
                json.containsKey("workers") ? ((Long) json.get("workers")).intValue() : 1,
                json.containsKey("timeoutSeconds") ? (Long) json.get("timeoutSeconds") : 60L);
        if (model.expectsSuccess() && (model.distinctStates == null || model.depth == null)) {
            throw new IllegalArgumentException("models.json: " + model.config
                    + " passes, so it must record distinctStates and depth");
        }
        if (!model.expectsSuccess() && model.traceLength == null) {
            throw new IllegalArgumentException("models.json: " + model.config
                    + " fails, so it must record traceLength");
        }
        return model;
    }

    @SuppressWarnings("unchecked")
    static List<Model> readAll(String json) {
        Map<String, Object> root = (Map<String, Object>) Json.parse(json);
        return ((List<Object>) root.get("models")).stream()
                .map(entry -> fromJson((Map<?, ?>) entry))
                .toList();
    }

    private static String string(Map<?, ?> json, String key) {
        Object value = json.get(key);
        if (!(value instanceof String s)) {
            throw new IllegalArgumentException("models.json: \"" + key + "\" missing in " + json);
        }
        return s;
    }
}
