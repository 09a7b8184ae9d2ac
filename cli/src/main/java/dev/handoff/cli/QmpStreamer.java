package dev.handoff.cli;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Splits a QMP input stream into messages the way QEMU's JSON streamer does, so that a syntax
 * error costs the client one error reply and not its connection: tokens are counted by braces and
 * brackets, and a message ends where both counts return to zero (a scalar at the top level is a
 * message by itself). A character no JSON token may start with is a lexical error: it is reported
 * once, whatever was gathered is dropped, and input is skipped until a character where a message
 * may start again ({@code { } [ ]}) or a control character such as a newline, QEMU's recovery
 * points (a client can send a newline, or 0xFF, to resynchronize). A message that parses to no
 * valid JSON is the parser's error, reported by the caller.
 *
 * <p>Not thread-safe: one per connection, fed by its reader.
 */
final class QmpStreamer {
    /** The largest message accepted; a larger one is an error and is dropped, bounding memory. */
    static final int MAX_MESSAGE = 1 << 20;

    /** What the streamer hands out: a complete message's text, or a lexical error. */
    interface Sink {
        void message(String json);

        void error(String description);
    }

    private enum State { START, STRING, STRING_ESCAPE, NUMBER, KEYWORD, RECOVERY }

    private final Sink sink;
    private final ByteArrayOutputStream message = new ByteArrayOutputStream();
    private State state = State.START;
    private byte quote;
    private int braces;
    private int brackets;

    QmpStreamer(Sink sink) {
        this.sink = sink;
    }

    /** Feeds {@code n} bytes; complete messages and errors go to the sink as they are found. */
    void feed(byte[] data, int n) {
        for (int i = 0; i < n; i++) {
            byte b = data[i];
            while (!accept(b)) {
                // a token ended at b: b is looked at again in the new state
            }
        }
    }

    /** Processes one byte in the current state; false if the byte must be processed again. */
    private boolean accept(byte b) {
        int c = b & 0xff;
        switch (state) {
            case RECOVERY:
                if (c == '{' || c == '}' || c == '[' || c == ']' || (c < 0x20 && c != '\t') || c >= 0xfe) {
                    state = State.START;
                    return c >= 0xfe || (c < 0x20 && c != '\t'); // a bracket starts the next message
                }
                return true;
            case STRING:
                if (c < 0x20) {
                    return lexicalError(c);
                }
                append(b);
                if (c == '\\') {
                    state = State.STRING_ESCAPE;
                } else if (b == quote) {
                    state = State.START;
                    tokenEnded();
                }
                return true;
            case STRING_ESCAPE:
                if (c < 0x20) {
                    return lexicalError(c);
                }
                append(b);
                state = State.STRING;
                return true;
            case NUMBER:
                if ((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
                    append(b);
                    return true;
                }
                state = State.START;
                tokenEnded();
                return false;
            case KEYWORD:
                if (c >= 'a' && c <= 'z') {
                    append(b);
                    return true;
                }
                state = State.START;
                tokenEnded();
                return false;
            default: // START
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                    if (message.size() > 0) {
                        append(b);
                    }
                    return true;
                }
                if (c == '{' || c == '[') {
                    append(b);
                    if (c == '{') {
                        braces++;
                    } else {
                        brackets++;
                    }
                    return true;
                }
                if (c == '}' || c == ']') {
                    append(b);
                    if (c == '}') {
                        braces--;
                    } else {
                        brackets--;
                    }
                    if (braces < 0 || brackets < 0) {
                        emit(); // unbalanced: the parser reports it
                        return true;
                    }
                    tokenEnded();
                    return true;
                }
                if (c == ',' || c == ':') {
                    append(b);
                    tokenEnded();
                    return true;
                }
                if (c == '"' || c == '\'') {
                    append(b);
                    quote = b;
                    state = State.STRING;
                    return true;
                }
                if (c == '-' || (c >= '0' && c <= '9')) {
                    append(b);
                    state = State.NUMBER;
                    return true;
                }
                if (c >= 'a' && c <= 'z') {
                    append(b);
                    state = State.KEYWORD;
                    return true;
                }
                return lexicalError(c);
        }
    }

    private boolean lexicalError(int c) {
        reset();
        state = State.RECOVERY;
        String shown = c >= 0x20 && c < 0x7f ? String.valueOf((char) c) : String.format("\\x%02x", c);
        sink.error("JSON parse error, stray '" + shown + "'");
        return true;
    }

    private void append(byte b) {
        if (message.size() >= MAX_MESSAGE) {
            reset();
            state = State.RECOVERY;
            sink.error("JSON parse error, message too large (more than " + MAX_MESSAGE + " bytes)");
            return;
        }
        message.write(b);
    }

    /** A token is complete: the message is, if every brace and bracket is closed. */
    private void tokenEnded() {
        if (braces == 0 && brackets == 0 && message.size() > 0) {
            emit();
        }
    }

    private void emit() {
        String text = message.toString(StandardCharsets.UTF_8);
        reset();
        sink.message(text);
    }

    private void reset() {
        message.reset();
        braces = 0;
        brackets = 0;
    }
}
