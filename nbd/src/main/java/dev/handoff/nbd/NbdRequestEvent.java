package dev.handoff.nbd;

import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;
import jdk.jfr.Timespan;

/**
 * JFR event: one NBD request served, from its header read off the socket to its reply written.
 * The duration splits into receiving the payload (a WRITE's data, on the connection's reader),
 * waiting for a worker, the device operation, and sending the reply; before it, the reader's wait
 * for the header, and whether the reader served the request itself (an inline request).
 *
 * <p>Zero cost when no recording takes it: a shared probe answers whether the type is enabled
 * (a static field read once JFR has instrumented the class, a constant {@code false} before),
 * and the connection allocates and times nothing otherwise. An instance is started on the reader
 * thread and handed to a worker with the request (the executor's hand-off orders its writes).
 *
 * <p>The probe, {@link #startIfRecording} and the lap timer repeat the kernel's {@code CopyEvent}
 * and {@code WriteBlockingEvent} on purpose: a shared base class would have to be public in an
 * exported kernel package (this module is not a named module, so a qualified export cannot reach
 * it), which would put a JFR helper into the kernel's API for a dozen lines.
 */
@Name("dev.handoff.NbdRequest")
@Label("NBD Request")
@Category({"Handoff", "NBD"})
@Description("One NBD request served by the server, header to reply")
@StackTrace(false)
final class NbdRequestEvent extends Event {
    /** Never committed: asked only whether the type is enabled. */
    private static final NbdRequestEvent PROBE = new NbdRequestEvent();

    @Label("Connection")
    long connection;

    @Label("Command")
    String command;

    @Label("Offset")
    @DataAmount
    long offset;

    @Label("Length")
    @DataAmount
    long length;

    @Label("Error")
    @Description("The NBD error number of the reply (0: success)")
    int error;

    @Label("Header Wait")
    @Description("Reading the request's header, before the event began: how long the connection's reader waited"
            + " for the client (a header already queued in the socket reads in microseconds)")
    @Timespan
    long headerWait;

    @Label("On Reader")
    @Description("Served by the connection's reader itself (an inline request), not by a worker")
    boolean onReader;

    @Label("Receive Time")
    @Description("Reading the request's payload (a WRITE's data) after its header")
    @Timespan
    long receiveTime;

    @Label("Queue Time")
    @Description("Waiting for a worker of the connection (about zero for a request the reader serves itself)")
    @Timespan
    long queueTime;

    @Label("Device Time")
    @Timespan
    long deviceTime;

    @Label("Reply Time")
    @Description("Sending the reply (waiting for the connection's send lock included)")
    @Timespan
    long replyTime;

    private transient long mark;

    /**
     * A started event if a recording takes this type, else null (nothing allocated);
     * {@code headerWait}: nanoseconds the reader spent reading the request's header.
     */
    static NbdRequestEvent startIfRecording(long headerWait) {
        if (!PROBE.isEnabled()) {
            return null;
        }
        NbdRequestEvent e = new NbdRequestEvent();
        e.headerWait = headerWait;
        e.begin();
        e.mark = System.nanoTime();
        return e;
    }

    /** The payload is in; the request goes to a worker. */
    void received() {
        receiveTime = lap();
    }

    /** A worker took it. */
    void started() {
        queueTime = lap();
    }

    /** The device operation returned (or threw). */
    void performed() {
        deviceTime = lap();
    }

    /** The reply was sent (or the send failed); ends and commits. */
    void replied(long connection, NbdWire.Request request, int error) {
        replyTime = lap();
        end();
        if (shouldCommit()) {
            this.connection = connection;
            this.command = NbdWire.commandName(request.type());
            this.offset = request.offset();
            this.length = request.length();
            this.error = error;
            commit();
        }
    }

    private long lap() {
        long now = System.nanoTime();
        long d = now - mark;
        mark = now;
        return d;
    }
}
