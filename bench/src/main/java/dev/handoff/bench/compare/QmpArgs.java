package dev.handoff.bench.compare;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The QMP arguments every comparison sends to both mirrors, so that QEMU and Handoff run the same
 * job with the same commands: {@code blockdev-mirror} from node {@code src} to node {@code tgt},
 * and the {@code device} argument of the {@code block-job-*} commands. Stateless.
 */
final class QmpArgs {
    private QmpArgs() {
    }

    /** {@code blockdev-mirror} of node {@code src} to node {@code tgt}, {@code sync: full}. */
    static ObjectNode mirror(String job, long granularity, long bufSize, String copyMode) {
        ObjectNode a = Qmp.args();
        a.put("job-id", job);
        a.put("device", "src");
        a.put("target", "tgt");
        a.put("sync", "full");
        a.put("granularity", granularity);
        a.put("buf-size", bufSize);
        a.put("copy-mode", copyMode);
        return a;
    }

    /** {@code {"device": job}}: the job a {@code block-job-*} command acts on. */
    static ObjectNode job(String job) {
        ObjectNode a = Qmp.args();
        a.put("device", job);
        return a;
    }
}
