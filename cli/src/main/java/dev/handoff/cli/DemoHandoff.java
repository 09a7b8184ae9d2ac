package dev.handoff.cli;

import dev.handoff.ownership.HandoffToken;
import dev.handoff.ownership.ImageFencedException;
import dev.handoff.ownership.ImageInactiveException;
import dev.handoff.ownership.OwnedImage;
import dev.handoff.ownership.OwnershipRecord;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Step 3 of the demo: hand the target over to a child JVM ({@code handoff owner accept}). The epoch
 * goes up by one; this process is refused a write, an activation and an abort while the child
 * holds the image, and is fenced by the epoch once the child has let go; the record ends clean
 * with the child as owner.
 */
final class DemoHandoff {
    private final PrintStream out;
    private final DemoReport report;
    private final String childOwner;
    private final String workPrefix;

    /** {@code workPrefix} is cut from messages: images are named by their file name. */
    DemoHandoff(PrintStream out, DemoReport report, String childOwner, String workPrefix) {
        this.out = out;
        this.report = report;
        this.childOwner = childOwner;
        this.workPrefix = workPrefix;
    }

    void run(OwnedImage target, Path targetPath) throws Exception {
        out.println();
        out.println("3. hand target.img over to another process (the guest is stopped; a live migration would pause it)");
        long epochBefore = target.epoch();
        HandoffToken token = target.prepareHandoff();
        out.println("   this process: prepareHandoff ...... " + target.state() + ", token " + token.epoch() + ":"
                + token.ownerId() + " (drained, flushed, record clean, lock released)");
        ChildHolder child;
        try {
            child = ChildHolder.accept(targetPath, token, childOwner);
        } catch (IOException | IllegalStateException e) {
            report.check("handoff to a second process", false, "NO: " + e.getMessage());
            return;
        }
        try (child) {
            String accepted = child.next();
            out.println("   child pid " + child.pid() + ": owner accept . " + shorten(accepted));
            long childEpoch = parseEpoch(accepted);
            report.check("handoff epoch", childEpoch == epochBefore + 1 && accepted.startsWith("ok ACTIVE"),
                    epochBefore + " -> " + childEpoch + " (child pid " + child.pid() + " ACTIVE as " + childOwner + ")");

            List<String> refusedWhileHeld = new ArrayList<>();
            expectRefused("write", refusedWhileHeld, ImageInactiveException.class, () -> {
                ByteBuffer b = ByteBuffer.allocate(4096);
                target.write(0, b);
            });
            expectRefused("activate", refusedWhileHeld, ImageInactiveException.class, target::activate);
            expectRefused("abortHandoff", refusedWhileHeld, ImageInactiveException.class, target::abortHandoff);
            String wrote = child.send("write 0 4K");
            out.println("   child: write 0 4K ................. " + wrote);
            String closed = child.send("quit");
            out.println("   child: quit ....................... " + closed);
            int childExit = child.waitFor();
            if (childExit != 0 || !wrote.startsWith("ok") || !closed.startsWith("ok closed")) {
                report.check("child wrote and let go cleanly", false, "NO: exit " + childExit + ", " + wrote + ", " + closed);
            }
            List<String> fenced = new ArrayList<>();
            expectRefused("abortHandoff", fenced, ImageFencedException.class, target::abortHandoff);
            boolean allRefused = refusedWhileHeld.size() == 3 && fenced.size() == 1;
            report.check("this process refused after the handoff", allRefused, allRefused
                    ? "yes: write, activate, abort while the child held it; abort fenced by the epoch after"
                    : "NO: " + String.join(", ", refusedWhileHeld) + " / " + String.join(", ", fenced));
            OwnershipRecord record = target.readRecord();
            boolean recordOk = record.epoch() == epochBefore + 1 && record.ownerId().equals(childOwner) && record.clean();
            out.println("   record after the child let go ..... epoch " + record.epoch() + ", owner " + record.ownerId()
                    + ", " + (record.clean() ? "clean" : "unclean"));
            report.check("ownership record", recordOk, "epoch " + record.epoch() + ", owner " + record.ownerId() + ", "
                    + (record.clean() ? "clean" : "unclean"));
        }
    }

    private interface Step {
        void run() throws Exception;
    }

    /** Runs {@code step}, which must fail with {@code expected}; prints the outcome. */
    private void expectRefused(String what, List<String> refusals, Class<? extends Exception> expected, Step step) {
        String outcome;
        try {
            step.run();
            outcome = "NOT refused: it succeeded";
        } catch (Exception e) {
            if (expected.isInstance(e)) {
                refusals.add(what);
                String kind = e instanceof ImageFencedException ? "fenced"
                        : ImageHolder.isLockRefusal((ImageInactiveException) e) ? "busy" : "inactive";
                outcome = "refused (" + kind + "): " + shorten(e.getMessage());
            } else {
                outcome = "failed unexpectedly: " + e;
            }
        }
        out.println("   this process: " + String.format(Locale.ROOT, "%-21s", what + " ") + outcome);
    }

    private String shorten(String message) {
        return String.valueOf(message).replace(workPrefix, "");
    }

    private static long parseEpoch(String line) {
        for (String w : line.split("\\s+")) {
            if (w.startsWith("epoch=")) {
                return Long.parseLong(w.substring(6));
            }
        }
        return -1;
    }
}
