package dev.handoff.cli;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The QMP jobs of one process, by id, in the order they were made. A job is listed until it is
 * dismissed (at once when it concludes with auto-dismiss on, by {@code job-dismiss} otherwise), and
 * its id may be used again afterwards, as in QEMU. Thread-safe.
 */
final class JobTable {
    private final Map<String, JobRun> jobs = new LinkedHashMap<>(); // guarded by this

    /** Adds a job; refuses an id a listed job still has. */
    synchronized void add(JobRun run) throws QmpException {
        purge();
        if (jobs.containsKey(run.jobId())) {
            throw QmpException.generic("Job ID '" + run.jobId() + "' already in use");
        }
        jobs.put(run.jobId(), run);
    }

    /** The listed jobs, oldest first. */
    synchronized List<JobRun> listed() {
        purge();
        return new ArrayList<>(jobs.values());
    }

    /** Whether a listed job has not concluded yet. */
    synchronized boolean anyRunning() {
        return listed().stream().anyMatch(r -> !r.job().state().isConcluded());
    }

    /** The job a block-job command names by "device" (QEMU: its job id), or QEMU's DeviceNotActive. */
    synchronized JobRun byDevice(String device) throws QmpException {
        JobRun r = find(device);
        if (r == null) {
            throw new QmpException(QmpException.DEVICE_NOT_ACTIVE, "Block job '" + device + "' not found");
        }
        return r;
    }

    /** The job a job command names by "id", or QEMU's "Job not found". */
    synchronized JobRun byId(String id) throws QmpException {
        JobRun r = find(id);
        if (r == null) {
            throw QmpException.generic("Job not found");
        }
        return r;
    }

    private JobRun find(String id) {
        purge();
        return jobs.get(id);
    }

    private void purge() {
        jobs.values().removeIf(r -> !r.qmp().listed());
    }
}
