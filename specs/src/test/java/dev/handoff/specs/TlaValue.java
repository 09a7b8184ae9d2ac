package dev.handoff.specs;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A value as TLC prints it in a counterexample: a record {@code [f |-> v, ...]}, a function
 * {@code (k :> v @@ ...)}, a sequence {@code <<v, ...>>}, or anything else (a number, string,
 * model value, set or range) kept as its text. Only the shapes that {@link TraceDiff} looks
 * inside are parsed; the rest stays whole, which is what a diff of it shows.
 */
sealed interface TlaValue {

    /** The value as TLC would print it, on one line. */
    String text();

    record Atom(String text) implements TlaValue {
    }

    record Rec(Map<String, TlaValue> fields) implements TlaValue {
        @Override
        public String text() {
            List<String> parts = new ArrayList<>();
            fields.forEach((k, v) -> parts.add(k + " |-> " + v.text()));
            return "[" + String.join(", ", parts) + "]";
        }
    }

    /** A function printed with {@code :>} and {@code @@}; keys are their text. */
    record Fn(Map<String, TlaValue> entries) implements TlaValue {
        @Override
        public String text() {
            List<String> parts = new ArrayList<>();
            entries.forEach((k, v) -> parts.add(k + " :> " + v.text()));
            return "(" + String.join(" @@ ", parts) + ")";
        }
    }

    record Seq(List<TlaValue> items) implements TlaValue {
        @Override
        public String text() {
            return "<<" + String.join(", ", items.stream().map(TlaValue::text).toList()) + ">>";
        }
    }

    /** Parses one value; text it cannot parse becomes an {@link Atom} of the whole, spaces folded. */
    static TlaValue parse(String text) {
        Parser p = new Parser(text);
        try {
            TlaValue v = p.value();
            p.skipSpace();
            if (p.pos == text.length()) {
                return v;
            }
        } catch (IllegalArgumentException | IndexOutOfBoundsException e) {
            // falls through to the whole text
        }
        return new Atom(text.strip().replaceAll("\\s+", " "));
    }

    /** Recursive descent over TLC's printing of values. */
    final class Parser {
        private final String s;
        private int pos;

        Parser(String s) {
            this.s = s;
        }

        TlaValue value() {
            skipSpace();
            TlaValue v;
            if (s.startsWith("<<", pos)) {
                v = seq();
            } else if (s.charAt(pos) == '[') {
                v = record();
            } else if (s.charAt(pos) == '(') {
                v = function();
            } else if (s.charAt(pos) == '{') {
                v = new Atom(bracketed('{', '}'));
            } else if (s.charAt(pos) == '"') {
                v = new Atom(string());
            } else {
                v = new Atom(word());
            }
            skipSpace();
            if (v instanceof Atom a && s.startsWith("..", pos)) {
                pos += 2;
                skipSpace();
                return new Atom(a.text() + ".." + word());
            }
            return v;
        }

        private TlaValue seq() {
            pos += 2;
            List<TlaValue> items = new ArrayList<>();
            skipSpace();
            if (s.startsWith(">>", pos)) {
                pos += 2;
                return new Seq(items);
            }
            while (true) {
                items.add(value());
                skipSpace();
                if (s.startsWith(">>", pos)) {
                    pos += 2;
                    return new Seq(items);
                }
                expect(",");
            }
        }

        private TlaValue record() {
            pos++;
            Map<String, TlaValue> fields = new LinkedHashMap<>();
            while (true) {
                skipSpace();
                String name = word();
                skipSpace();
                expect("|->");
                fields.put(name, value());
                skipSpace();
                if (s.charAt(pos) == ']') {
                    pos++;
                    return new Rec(fields);
                }
                expect(",");
            }
        }

        private TlaValue function() {
            pos++;
            Map<String, TlaValue> entries = new LinkedHashMap<>();
            while (true) {
                TlaValue key = value();
                skipSpace();
                expect(":>");
                entries.put(key.text(), value());
                skipSpace();
                if (s.charAt(pos) == ')') {
                    pos++;
                    return new Fn(entries);
                }
                expect("@@");
            }
        }

        /** A set, kept as text with its spaces folded. */
        private String bracketed(char open, char close) {
            int start = pos;
            int depth = 0;
            boolean inString = false;
            for (; pos < s.length(); pos++) {
                char c = s.charAt(pos);
                if (c == '"') {
                    inString = !inString;
                } else if (!inString && c == open) {
                    depth++;
                } else if (!inString && c == close && --depth == 0) {
                    pos++;
                    return s.substring(start, pos).replaceAll("\\s+", " ");
                }
            }
            throw new IllegalArgumentException("unclosed " + open);
        }

        private String string() {
            int end = s.indexOf('"', pos + 1);
            if (end < 0) {
                throw new IllegalArgumentException("unclosed string");
            }
            String str = s.substring(pos, end + 1);
            pos = end + 1;
            return str;
        }

        private String word() {
            int start = pos;
            while (pos < s.length() && (Character.isLetterOrDigit(s.charAt(pos)) || s.charAt(pos) == '_'
                    || (s.charAt(pos) == '-' && pos == start))) {
                pos++;
            }
            if (pos == start) {
                throw new IllegalArgumentException("a value expected at " + pos);
            }
            return s.substring(start, pos);
        }

        private void expect(String token) {
            skipSpace();
            if (!s.startsWith(token, pos)) {
                throw new IllegalArgumentException(token + " expected at " + pos);
            }
            pos += token.length();
        }

        void skipSpace() {
            while (pos < s.length() && Character.isWhitespace(s.charAt(pos))) {
                pos++;
            }
        }
    }
}
