package dev.handoff.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** The ObjectMappers of the command line (thread-safe once configured) and small node helpers. */
final class Json {
    static final ObjectMapper MAPPER = new ObjectMapper();

    private Json() {
    }

    /**
     * Reads QMP input as QEMU does: single-quoted strings are allowed. Built on first use (by a
     * control socket's session): a command that reads no QMP does not build a second mapper.
     */
    static ObjectMapper lenient() {
        return Lenient.MAPPER;
    }

    private static final class Lenient {
        static final ObjectMapper MAPPER = new ObjectMapper()
                .configure(com.fasterxml.jackson.core.JsonParser.Feature.ALLOW_SINGLE_QUOTES, true);
    }

    static ObjectNode object() {
        return MAPPER.createObjectNode();
    }

    static ArrayNode array() {
        return MAPPER.createArrayNode();
    }

    /**
     * Loads and links the serializer for the node kinds events use, so the first event of a job
     * does not pay for it on the thread that delivers it while the copy is running.
     */
    static void warmUp() {
        ObjectNode n = object();
        n.put("event", "WARM_UP").put("ready", true).put("len", 1L).put("speed", 0);
        n.putObject("data").put("device", "x").put("offset", 0L);
        n.putObject("timestamp").put("seconds", 0L).put("microseconds", 0);
        n.putArray("list").addObject().put("io-status", "ok");
        line(n);
    }

    /** One line of compact JSON (no newline). */
    static String line(JsonNode node) {
        try {
            return MAPPER.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialize " + node.getClass().getSimpleName(), e);
        }
    }
}
