package dev.handoff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Iterator;

/** QMP command arguments, checked with QEMU's error messages for missing, unexpected and mistyped ones. */
final class Args {
    private Args() {
    }

    /** Refuses any argument not named. */
    static void allow(ObjectNode args, String... names) throws QmpException {
        Iterator<String> it = args.fieldNames();
        outer:
        while (it.hasNext()) {
            String n = it.next();
            for (String allowed : names) {
                if (allowed.equals(n)) {
                    continue outer;
                }
            }
            throw QmpException.generic("Parameter '" + n + "' is unexpected");
        }
    }

    static String string(ObjectNode args, String name) throws QmpException {
        JsonNode n = required(args, name);
        if (!n.isTextual()) {
            throw QmpException.generic("Invalid parameter type for '" + name + "', expected: string");
        }
        return n.asText();
    }

    static String optString(ObjectNode args, String name) throws QmpException {
        return args.has(name) ? string(args, name) : null;
    }

    static long integer(ObjectNode args, String name) throws QmpException {
        JsonNode n = required(args, name);
        if (!n.isIntegralNumber() || !n.canConvertToLong()) {
            throw QmpException.generic("Invalid parameter type for '" + name + "', expected: integer");
        }
        return n.asLong();
    }

    static Long optInteger(ObjectNode args, String name) throws QmpException {
        return args.has(name) ? integer(args, name) : null;
    }

    static boolean optBool(ObjectNode args, String name, boolean otherwise) throws QmpException {
        JsonNode n = args.get(name);
        if (n == null) {
            return otherwise;
        }
        if (!n.isBoolean()) {
            throw QmpException.generic("Invalid parameter type for '" + name + "', expected: boolean");
        }
        return n.asBoolean();
    }

    static ObjectNode optObject(ObjectNode args, String name) throws QmpException {
        JsonNode n = args.get(name);
        if (n == null) {
            return null;
        }
        if (!n.isObject()) {
            throw QmpException.generic("Invalid parameter type for '" + name + "', expected: object");
        }
        return (ObjectNode) n;
    }

    /** An enum value spelled as QEMU spells it ({@code write-blocking}). */
    static <E extends Enum<E>> E choice(ObjectNode args, String name, Class<E> type) throws QmpException {
        String text = string(args, name);
        for (E e : type.getEnumConstants()) {
            if (Choices.name(e).equals(text)) {
                return e;
            }
        }
        throw QmpException.generic("Parameter '" + name + "' does not accept value '" + text + "'");
    }

    private static JsonNode required(ObjectNode args, String name) throws QmpException {
        JsonNode n = args.get(name);
        if (n == null) {
            throw QmpException.generic("Parameter '" + name + "' is missing");
        }
        return n;
    }
}
