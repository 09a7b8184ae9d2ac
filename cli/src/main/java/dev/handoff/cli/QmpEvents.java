package dev.handoff.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.device.DeviceException;
import dev.handoff.mirror.ErrorAction;
import dev.handoff.mirror.JobState;
import dev.handoff.mirror.MirrorEvent;
import dev.handoff.mirror.MirrorProgress;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Supplier;

/**
 * Turns a mirror job's events into QEMU's QMP events for a block job of type {@code mirror}, so
 * that tools written for QEMU's block jobs see what they expect.
 *
 * <h2>Status mapping (QEMU's JobStatus)</h2>
 * <table>
 *   <caption>kernel state → QEMU status</caption>
 *   <tr><td>CREATED</td><td>created (sent with the first event, as QEMU sends it when the job is made)</td></tr>
 *   <tr><td>RUNNING</td><td>running</td></tr>
 *   <tr><td>READY</td><td>ready</td></tr>
 *   <tr><td>PAUSED</td><td>paused, or standby once READY was reached (QEMU's "paused while ready")</td></tr>
 *   <tr><td>COMPLETING</td><td>waiting (the job has stopped accepting work and is finishing)</td></tr>
 *   <tr><td>CANCELLING</td><td>waiting for a graceful cancel after READY (it ends COMPLETED, as QEMU's
 *       soft cancel does); aborting otherwise</td></tr>
 *   <tr><td>PENDING</td><td>pending, then BLOCK_JOB_PENDING (auto-finalize off: waiting for job-finalize)</td></tr>
 *   <tr><td>COMPLETED</td><td>waiting → pending → BLOCK_JOB_COMPLETED → concluded → null</td></tr>
 *   <tr><td>CANCELLED</td><td>aborting → BLOCK_JOB_CANCELLED → concluded → null</td></tr>
 *   <tr><td>FAILED</td><td>aborting → BLOCK_JOB_COMPLETED with "error" → concluded → null</td></tr>
 * </table>
 * Each status is sent once, as JOB_STATUS_CHANGE, when it differs from the last one sent; the
 * final sequences are QEMU's. With auto-dismiss off the job stays {@code concluded} until
 * {@link #dismiss()} ({@code job-dismiss}) sends {@code null}. Resuming from standby into a
 * pending complete goes through {@code ready} first, as in QEMU.
 *
 * <p>Threading: {@link #translate} is called by the job's listener, one event at a time in
 * sequence order, and {@link #dismiss} by a control session, both under this object's monitor;
 * {@link #status()} and {@link #ioStatus()} may be read from any thread.
 *
 * <p>Access modes (CONTRIBUTING, "One accessor convention"): {@code status}, {@code ioStatus} and
 * {@code error} are written under this monitor ({@code sv}) and read lock-free by the query methods
 * ({@code lv}, pairing with those stores); under the monitor {@code status} is read plain
 * ({@code lp}: the monitor orders it after every store). Each is an immutable string that
 * publishes nothing else: release stores and acquire loads would do. {@code forceCancel} is stored
 * by a control session's {@link #noteCancel} ({@code sv}) before it cancels, and loaded under the
 * monitor when the job's CANCELLING event arrives ({@code lv}); the job's own lock orders the two
 * as well. {@code ready} is touched only under the monitor.
 */
final class QmpEvents {
    private static final VarHandle STATUS;
    private static final VarHandle IO_STATUS;
    private static final VarHandle FORCE_CANCEL;
    private static final VarHandle ERROR;

    static {
        try {
            MethodHandles.Lookup l = MethodHandles.lookup();
            STATUS = l.findVarHandle(QmpEvents.class, "status", String.class);
            IO_STATUS = l.findVarHandle(QmpEvents.class, "ioStatus", String.class);
            FORCE_CANCEL = l.findVarHandle(QmpEvents.class, "forceCancel", boolean.class);
            ERROR = l.findVarHandle(QmpEvents.class, "error", String.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final String jobId;
    private final Supplier<MirrorProgress> progress;
    private final boolean autoDismiss;

    /* Only through the accessors below ("Access modes"). */
    private volatile String status;
    private volatile String ioStatus;
    private volatile boolean forceCancel;
    private volatile String error;
    private boolean ready;       // guarded by this
    private boolean createdSent; // guarded by this

    QmpEvents(String jobId, Supplier<MirrorProgress> progress) {
        this(jobId, progress, true);
    }

    QmpEvents(String jobId, Supplier<MirrorProgress> progress, boolean autoDismiss) {
        this.jobId = jobId;
        this.progress = progress;
        this.autoDismiss = autoDismiss;
        svStatus("created");
        svIoStatus("ok");
    }

    boolean autoDismiss() {
        return autoDismiss;
    }

    String jobId() {
        return jobId;
    }

    /** The QEMU status last sent. */
    String status() {
        return lvStatus();
    }

    /** QEMU's io-status: ok, or failed / nospace while stopped by an error. */
    String ioStatus() {
        return lvIoStatus();
    }

    /** Whether the job may be completed (QEMU's "ready" field). */
    boolean completable() {
        String s = lvStatus();
        return s.equals("ready") || s.equals("standby");
    }

    /** Why the job failed, once it has. */
    String error() {
        return lvError();
    }

    /** Called before every cancel, so the CANCELLING state maps to waiting (graceful) or aborting. */
    void noteCancel(boolean force) {
        if (force) {
            svForceCancel();
        }
    }

    /** Whether the job is still listed: not yet dismissed (status null). */
    boolean listed() {
        return !lvStatus().equals("null");
    }

    /**
     * job-dismiss: the concluded job leaves the list. Returns the events to send
     * ({@code JOB_STATUS_CHANGE null}), or null if the job is not concluded.
     */
    synchronized List<ObjectNode> dismiss() {
        if (!lpStatus().equals("concluded")) {
            return null;
        }
        List<ObjectNode> out = new ArrayList<>(1);
        status("null", out);
        return out;
    }

    /** The QMP events for one job event, in order. */
    synchronized List<ObjectNode> translate(MirrorEvent event) {
        List<ObjectNode> out = new ArrayList<>(4);
        if (!createdSent) {
            createdSent = true;
            out.add(statusEvent("created"));
        }
        if (event instanceof MirrorEvent.StateChanged s) {
            onState(s.from(), s.to(), out);
        } else if (event instanceof MirrorEvent.Ready r) {
            ready = true;
            out.add(event("BLOCK_JOB_READY", blockJobData(r.offset(), r.length())));
        } else if (event instanceof MirrorEvent.Error e) {
            onError(e, out);
        } else if (event instanceof MirrorEvent.Completed c) {
            if (!lpStatus().equals("pending")) { // auto-finalize: waiting and pending pass at once
                status("waiting", out);
                status("pending", out);
            }
            out.add(event("BLOCK_JOB_COMPLETED", blockJobData(c.offset(), c.length())));
            conclude(out);
        } else if (event instanceof MirrorEvent.Cancelled c) {
            status("aborting", out);
            out.add(event("BLOCK_JOB_CANCELLED", blockJobData(c.offset(), c.length())));
            conclude(out);
        } else if (event instanceof MirrorEvent.Failed f) {
            String error = f.reason() != null ? f.reason() : "failed";
            svError(error);
            status("aborting", out);
            ObjectNode data = blockJobData(f.offset(), f.length());
            data.put("error", error);
            out.add(event("BLOCK_JOB_COMPLETED", data));
            conclude(out);
        }
        return out;
    }

    private void conclude(List<ObjectNode> out) {
        status("concluded", out);
        if (autoDismiss) {
            status("null", out);
        }
    }

    private void onState(JobState from, JobState to, List<ObjectNode> out) {
        switch (to) {
            case RUNNING:
                svIoStatus("ok");
                status("running", out);
                break;
            case READY:
                svIoStatus("ok");
                status("ready", out);
                break;
            case PAUSED:
                status(ready ? "standby" : "paused", out);
                break;
            case COMPLETING:
                svIoStatus("ok");
                if (from == JobState.PAUSED) {
                    status("ready", out); // resumed from standby with a complete pending: QEMU passes ready
                }
                status("waiting", out);
                break;
            case CANCELLING:
                svIoStatus("ok");
                boolean graceful = ready && !lvForceCancel();
                if (graceful && from == JobState.PAUSED) {
                    status("ready", out);
                }
                status(graceful ? "waiting" : "aborting", out);
                break;
            case PENDING: {
                status("pending", out);
                ObjectNode data = Json.object();
                data.put("type", "mirror");
                data.put("id", jobId);
                out.add(event("BLOCK_JOB_PENDING", data));
                break;
            }
            default:
                // CREATED is never entered; the concluded states are sent with their final event.
                break;
        }
    }

    private void onError(MirrorEvent.Error e, List<ObjectNode> out) {
        if (e.action() == ErrorAction.STOP) {
            svIoStatus(e.cause() != null && e.cause().kind() == DeviceException.Kind.NO_SPACE ? "nospace" : "failed");
        }
        ObjectNode data = Json.object();
        data.put("device", jobId);
        data.put("operation", e.operation() == MirrorEvent.Operation.READ ? "read" : "write");
        data.put("action", e.action().name().toLowerCase(Locale.ROOT));
        // Handoff's additions; QEMU's own fields come first and keep their meaning.
        data.put("side", e.side().name().toLowerCase(Locale.ROOT));
        data.put("error-offset", e.offset());
        data.put("error-length", e.length());
        if (e.cause() != null) {
            data.put("nospace", e.cause().kind() == DeviceException.Kind.NO_SPACE);
            data.put("reason", String.valueOf(e.cause().getMessage()));
        }
        out.add(event("BLOCK_JOB_ERROR", data));
    }

    private void status(String s, List<ObjectNode> out) {
        if (s.equals(lpStatus())) {
            return;
        }
        svStatus(s);
        out.add(statusEvent(s));
    }

    private ObjectNode statusEvent(String s) {
        ObjectNode data = Json.object();
        data.put("id", jobId);
        data.put("status", s);
        return event("JOB_STATUS_CHANGE", data);
    }

    private ObjectNode blockJobData(long offset, long length) {
        ObjectNode data = Json.object();
        data.put("type", "mirror");
        data.put("device", jobId);
        data.put("len", length);
        data.put("offset", offset);
        data.put("speed", progress.get().speed());
        return data;
    }

    /** A QMP event: {"timestamp": {...}, "event": NAME, "data": {...}}. */
    static ObjectNode event(String name, ObjectNode data) {
        java.time.Instant now = java.time.Instant.now();
        ObjectNode event = Json.object();
        ObjectNode ts = event.putObject("timestamp");
        ts.put("seconds", now.getEpochSecond());
        ts.put("microseconds", now.getNano() / 1000);
        event.put("event", name);
        event.set("data", data);
        return event;
    }

    /* ---- Accessors (modes and partners: see "Access modes" in the class comment) ---- */

    private String lvStatus() {
        return (String) STATUS.getVolatile(this); // lock-free; pairs with svStatus
    }

    private String lpStatus() {
        return (String) STATUS.get(this); // under this monitor, as every store
    }

    private void svStatus(String s) {
        STATUS.setVolatile(this, s); // under this monitor (and the constructor); a release would do
    }

    private String lvIoStatus() {
        return (String) IO_STATUS.getVolatile(this); // pairs with svIoStatus
    }

    private void svIoStatus(String s) {
        IO_STATUS.setVolatile(this, s); // under this monitor (and the constructor); a release would do
    }

    private String lvError() {
        return (String) ERROR.getVolatile(this); // pairs with svError
    }

    private void svError(String why) {
        ERROR.setVolatile(this, why); // under this monitor; a release would do
    }

    private boolean lvForceCancel() {
        return (boolean) FORCE_CANCEL.getVolatile(this); // under this monitor; pairs with svForceCancel
    }

    private void svForceCancel() {
        FORCE_CANCEL.setVolatile(this, true); // a control session, before its cancel
    }
}
