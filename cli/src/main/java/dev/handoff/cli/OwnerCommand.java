package dev.handoff.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.device.DeviceException;
import dev.handoff.ownership.HandoffToken;
import dev.handoff.ownership.ImageFencedException;
import dev.handoff.ownership.ImageInactiveException;
import dev.handoff.ownership.OwnedImage;
import dev.handoff.ownership.OwnershipRecord;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code handoff owner ...}: the ownership protocol on an image file from the shell (see
 * docs/OWNERSHIP.md). {@code status} only looks. The others hold the image in the foreground, as
 * ownership is a lock held by a live process, and take further commands on stdin
 * ({@link ImageHolder}): a handoff between two shells is {@code prepare} on the active holder,
 * {@code owner accept IMAGE --token T} (or {@code accept T}) on the other, {@code abort} if the
 * migration fails.
 */
@Command(name = "owner", usageHelpWidth = 100,
        description = {"Drive the ownership protocol on a raw image file: who may write it (one ACTIVE holder at a"
                + " time, with QEMU-compatible locks and a fencing epoch in the sidecar IMAGE.owner; or, with"
                + " --coordinator, a lock and an epoch kept in a ZooKeeper ensemble that several hosts share)."},
        subcommands = {
            OwnerCommand.Status.class,
            OwnerCommand.Activate.class,
            OwnerCommand.Inactivate.class,
            OwnerCommand.Accept.class,
        })
final class OwnerCommand {

    /** Text of the holders' help: their stdin commands. */
    static final String HOLDER_HELP = "Then holds the image and reads commands on stdin, one per line, answering one"
            + " line each: status, activate, inactivate, prepare (hand off: prints token=EPOCH:OWNER), accept"
            + " EPOCH:OWNER, abort (take a prepared handoff back), write OFFSET LENGTH, flush, quit. End of input,"
            + " quit, Ctrl-C or SIGTERM close the image: ACTIVE is flushed, its record marked clean and its lock"
            + " released; INACTIVE writes nothing.";

    static String defaultOwner() {
        return "handoff-" + ProcessHandle.current().pid();
    }

    static void checkImage(Path image) throws CliException {
        if (!Files.exists(image)) {
            throw new CliException(ExitCodes.BAD_IMAGE, "image " + image + " does not exist");
        }
        if (!Files.isRegularFile(image)) {
            throw new CliException(ExitCodes.BAD_IMAGE, "image " + image + " is not a regular file");
        }
    }

    static OwnedImage openInactive(Path image, String owner, CoordinatorOptions coordinator) throws CliException {
        checkImage(image);
        coordinator.validate();
        if (coordinator.present()) {
            return coordinator.open(image, owner, OwnedImage.State.INACTIVE, why -> sessionLost("handoff owner", image, why));
        }
        try {
            return OwnedImage.openFile(image, owner, OwnedImage.State.INACTIVE);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCodes.USAGE, e.getMessage());
        } catch (DeviceException e) {
            throw new CliException(ExitCodes.BAD_IMAGE, "cannot open " + image + ": " + e.getMessage());
        }
    }

    /**
     * The session that held the image's ZooKeeper lock is gone, mid-command: says so in one line and
     * ends the process at once, as a crash would (the handle is fenced: nothing more can be
     * acknowledged, the record stays unclean, and the next activation takes over with epoch + 1).
     */
    static void sessionLost(String command, Path image, String why) {
        System.out.flush();
        System.err.println(command + ": ZooKeeper session lost mid-command: " + why + "; " + image
                + " is fenced here (nothing more is acknowledged; the next activation takes over with a newer epoch)");
        System.err.flush();
        Runtime.getRuntime().halt(ExitCodes.FENCED);
    }

    /** Maps a refused transition to its exit code, closing the handle (INACTIVE: writes nothing). */
    static CliException refused(OwnedImage handle, String what, DeviceException e) {
        try {
            handle.close();
        } catch (DeviceException ignored) {
            // inactive: nothing to lose
        }
        if (e instanceof ImageFencedException) {
            return new CliException(ExitCodes.FENCED, what + " refused: " + e.getMessage());
        }
        if (e instanceof ImageInactiveException) {
            return new CliException(ExitCodes.BUSY, what + " refused: " + e.getMessage());
        }
        return new CliException(ExitCodes.FAILED, what + " failed: " + e.getMessage());
    }

    @Command(name = "status", description = "Show IMAGE's ownership record (epoch, owner, clean) and who holds its"
            + " locks (QEMU's bytes 100+n and 200+n). Changes nothing.")
    static final class Status implements Callable<Integer> {
        @Parameters(paramLabel = "IMAGE")
        Path image;

        @Option(names = "--json", description = "Print one JSON object.")
        boolean json;

        @Mixin
        CoordinatorOptions coordinator;

        @Override
        public Integer call() throws Exception {
            if (coordinator.present()) {
                checkImage(image);
                coordinator.validate();
                return CoordinatedStatus.print(image, coordinator, json);
            }
            OwnershipRecord record;
            try (OwnedImage handle = openInactive(image, "status", coordinator)) {
                record = handle.readRecord();
            }
            List<LockTable.Lock> locks = LockTable.available() ? LockTable.on(image) : null;
            long size = Files.size(image);
            boolean writeUnshared = locks != null && locks.stream().anyMatch(l -> l.covers(201));
            boolean writeHeld = locks != null && locks.stream().anyMatch(l -> l.covers(101));
            String holder = locks == null ? "unknown (no /proc/locks)"
                    : writeUnshared ? "ACTIVE elsewhere: byte 201 held (write not shared: a Handoff owner, or QEMU)"
                    : writeHeld ? "open for writing elsewhere (byte 101 held: QEMU or another writer)"
                    : "none: no process holds write locks";
            if (json) {
                ObjectNode o = Json.object();
                o.put("image", image.toString());
                o.put("size", size);
                ObjectNode r = o.putObject("record");
                r.put("epoch", record.epoch());
                r.put("owner", record.ownerId());
                r.put("clean", record.clean());
                if (locks != null) {
                    ArrayNode a = o.putArray("locks");
                    for (LockTable.Lock l : locks) {
                        ObjectNode lo = a.addObject();
                        lo.put("type", l.type());
                        lo.put("mode", l.mode());
                        lo.put("pid", l.pid());
                        lo.put("start", l.start());
                        lo.put("end", l.end());
                    }
                }
                o.put("active-elsewhere", writeUnshared);
                System.out.println(Json.line(o));
                return ExitCodes.OK;
            }
            System.out.println("image   " + image + " (" + Sizes.format(size) + ")");
            System.out.println("record  " + (record.epoch() == 0 ? "epoch 0: never activated"
                    : "epoch " + record.epoch() + ", owner " + record.ownerId() + ", "
                    + (record.clean() ? "clean (the owner flushed and let go)" : "unclean (an owner is active, or died active)")));
            System.out.println("holder  " + holder);
            if (locks != null) {
                for (LockTable.Lock l : locks) {
                    System.out.println("lock    " + l.describe());
                }
            }
            return ExitCodes.OK;
        }
    }

    @Command(name = "activate", usageHelpWidth = 100,
            description = {"Take ownership of IMAGE: take its lock, bump the epoch, become ACTIVE.", HOLDER_HELP})
    static final class Activate implements Callable<Integer> {
        @Parameters(paramLabel = "IMAGE")
        Path image;

        @Option(names = "--owner", paramLabel = "ID", description = "Owner id in the record and in tokens (default: handoff-PID).")
        String owner;

        @Mixin
        CoordinatorOptions coordinator;

        @Override
        public Integer call() throws Exception {
            OwnedImage handle = openInactive(image, owner != null ? owner : defaultOwner(), coordinator);
            try {
                handle.activate();
            } catch (DeviceException e) {
                throw refused(handle, "activate " + image, e);
            }
            return new ImageHolder(handle, image, System.out).serve();
        }
    }

    @Command(name = "inactivate", usageHelpWidth = 100,
            description = {"Open IMAGE INACTIVE, as the destination of a migration does: no lock, nothing written"
                    + " (not even the record); writes are refused until it is activated or accepts a handoff.",
                HOLDER_HELP})
    static final class Inactivate implements Callable<Integer> {
        @Parameters(paramLabel = "IMAGE")
        Path image;

        @Option(names = "--owner", paramLabel = "ID", description = "Owner id in the record and in tokens (default: handoff-PID).")
        String owner;

        @Mixin
        CoordinatorOptions coordinator;

        @Override
        public Integer call() throws Exception {
            OwnedImage handle = openInactive(image, owner != null ? owner : defaultOwner(), coordinator);
            return new ImageHolder(handle, image, System.out).serve();
        }
    }

    @Command(name = "accept", usageHelpWidth = 100,
            description = {"Take over a handoff that the active holder prepared (its `prepare` printed the token):"
                    + " succeeds only while the record still shows exactly that token; the epoch becomes EPOCH+1.",
                HOLDER_HELP})
    static final class Accept implements Callable<Integer> {
        @Parameters(paramLabel = "IMAGE")
        Path image;

        @Option(names = "--token", required = true, paramLabel = "EPOCH:OWNER", description = "The token `prepare` printed.")
        String token;

        @Option(names = "--owner", paramLabel = "ID", description = "Owner id in the record and in tokens (default: handoff-PID).")
        String owner;

        @Mixin
        CoordinatorOptions coordinator;

        @Override
        public Integer call() throws Exception {
            HandoffToken t;
            try {
                t = ImageHolder.parseToken(token);
            } catch (IllegalArgumentException e) {
                throw new CliException(ExitCodes.USAGE, "invalid value for option '--token': " + e.getMessage());
            }
            OwnedImage handle = openInactive(image, owner != null ? owner : defaultOwner(), coordinator);
            try {
                handle.acceptHandoff(t);
            } catch (DeviceException e) {
                throw refused(handle, "accept handoff " + token + " of " + image, e);
            }
            return new ImageHolder(handle, image, System.out).serve();
        }
    }
}
