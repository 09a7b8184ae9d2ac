package dev.handoff.nbd;

/**
 * Deliberate bugs, one per robustness check, so that the tests can show each check catches the bug
 * it exists for. Reachable only through package-private seams ({@code NbdServer.Builder#flaw},
 * {@code NbdDevice.open(Transport, ..., Flaw)}); the public API always uses {@link #NONE}.
 */
enum Flaw {
    /** The correct protocol. */
    NONE,
    /** The server hands requests to the device without checking their range against the export. */
    SERVER_SKIPS_RANGE_CHECK,
    /** The server allocates a READ's or WRITE's claimed length before checking it against its limit. */
    SERVER_ALLOCATES_BEFORE_VALIDATING,
    /** The server applies the part of a WRITE payload it received before the peer hung up. */
    SERVER_APPLIES_TRUNCATED_WRITE,
    /** The server lets writes through to a read-only export. */
    SERVER_READ_ONLY_ACCEPTS_WRITES,
    /** The server acknowledges a FUA write without flushing it. */
    SERVER_FUA_WITHOUT_FLUSH,
    /** The server returns a READ's pooled buffer to the pool before the reply has sent it. */
    SERVER_RECYCLES_BEFORE_REPLY,
    /** The client allocates an option reply's claimed length without checking it. */
    CLIENT_TRUSTS_REPLY_LENGTH
}
