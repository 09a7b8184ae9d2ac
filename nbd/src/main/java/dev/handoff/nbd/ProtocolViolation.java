package dev.handoff.nbd;

import java.io.IOException;

/**
 * The peer broke the protocol: a bad magic number, an impossible length, a truncated frame. The
 * side that detects it answers with the protocol's error where the protocol has one, and otherwise
 * drops the connection (a "hard disconnect", which the protocol allows on any such violation).
 */
final class ProtocolViolation extends IOException {
    private static final long serialVersionUID = 1L;

    ProtocolViolation(String message) {
        super(message);
    }
}
