package dev.handoff.nbd;

import java.time.Duration;

/**
 * The bounds that keep a server's memory, threads and time finite whatever its peers send.
 *
 * <p>Memory: a request's payload (WRITE) or reply data (READ) is allocated only after its header
 * has been validated and after the request has taken its bytes from two budgets, the connection's
 * and the server's; it gives them back when its reply has been sent. So the server holds at most
 * {@code maxBytesInFlight} bytes of request and reply data, whatever lengths peers claim, plus one
 * 64 KiB scratch buffer per connection for discarded payloads, at most
 * {@code MAX_OPTION_DATA} per connection during the handshake, and, kept for reuse between
 * requests, at most {@code workersPerConnection + 2} direct buffers of 128 KiB per connection for
 * request data up to that size.
 *
 * @param maxConnections         connections served at once; further ones are refused in their
 *                               handshake with NBD_REP_ERR_POLICY
 * @param workersPerConnection   threads serving one connection's requests concurrently
 * @param inlineRequests         the connection's reader serves a READ or WRITE of at most 128 KiB
 *                               without FUA itself, without a worker, when it had to wait for the
 *                               request and no other request of the connection is in flight;
 *                               while it does, the connection's next requests are not read (on by
 *                               default)
 * @param inlineAfterWait        how long the reader's read of a request's header must have taken
 *                               for the request to count as waited for (inline requests only)
 * @param maxRequestsInFlight    requests of one connection read but not yet answered
 * @param maxBytesPerConnection  payload and reply bytes of one connection in flight
 * @param maxBytesInFlight       payload and reply bytes of all connections in flight
 * @param maxPayload             the largest READ or WRITE accepted (announced as the maximum
 *                               block size); larger READs get EINVAL, larger WRITEs get EINVAL
 *                               with their payload discarded unread up to 32 MiB, and a
 *                               hard disconnect beyond
 * @param maxOptions             options accepted in one handshake
 * @param handshakeTimeout       a connection still negotiating after this is closed
 * @param replyTimeout           a connection whose peer has not taken a reply for this long is
 *                               closed (it stopped reading)
 * @param shutdownGrace          how long {@link NbdServer#close()} lets in-flight requests finish
 */
record ServerLimits(int maxConnections, int workersPerConnection, boolean inlineRequests, Duration inlineAfterWait,
                    int maxRequestsInFlight, long maxBytesPerConnection, long maxBytesInFlight, int maxPayload, int maxOptions,
                    Duration handshakeTimeout, Duration replyTimeout, Duration shutdownGrace) {

    static ServerLimits defaults() {
        return new ServerLimits(16, 4, true, Duration.ofNanos(5_000), 32, 64L << 20, 256L << 20, NbdWire.DEFAULT_MAX_PAYLOAD, 256,
                Duration.ofSeconds(30), Duration.ofSeconds(60), Duration.ofSeconds(10));
    }

    ServerLimits {
        require(maxConnections >= 1, "maxConnections must be >= 1");
        require(workersPerConnection >= 1, "workersPerConnection must be >= 1");
        require(!inlineAfterWait.isNegative(), "inlineAfterWait must be >= 0");
        require(maxRequestsInFlight >= 1, "maxRequestsInFlight must be >= 1");
        require(maxPayload >= 512, "maxPayload must be >= 512");
        require(maxBytesPerConnection >= maxPayload && maxBytesPerConnection <= Integer.MAX_VALUE,
                "maxBytesPerConnection must be between maxPayload and 2 GiB");
        require(maxBytesInFlight >= maxPayload && maxBytesInFlight <= Integer.MAX_VALUE,
                "maxBytesInFlight must be between maxPayload and 2 GiB");
        require(maxOptions >= 1, "maxOptions must be >= 1");
        require(!handshakeTimeout.isNegative() && !handshakeTimeout.isZero(), "handshakeTimeout must be > 0");
        require(!replyTimeout.isNegative() && !replyTimeout.isZero(), "replyTimeout must be > 0");
        require(!shutdownGrace.isNegative(), "shutdownGrace must be >= 0");
    }

    /** WRITE payloads up to this size are discarded (read in 64 KiB pieces) rather than dropping the connection. */
    long discardablePayload() {
        return Math.max(maxPayload, NbdWire.DEFAULT_MAX_PAYLOAD);
    }

    private static void require(boolean condition, String message) {
        if (!condition) {
            throw new IllegalArgumentException(message);
        }
    }
}
