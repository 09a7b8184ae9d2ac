package dev.handoff.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.coordination.Holder;
import dev.handoff.coordination.ImageIdentity;
import dev.handoff.coordination.ZkOwnership;
import dev.handoff.coordination.ZkStatus;
import dev.handoff.device.DeviceException;
import dev.handoff.ownership.OwnershipRecord;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code handoff owner status IMAGE --coordinator URI}: what the ensemble says about the image's
 * PATH (whose image it is, the record's epoch, owner and clean flag, who holds the lock, in which
 * session). Writes nothing, neither to the image nor to ZooKeeper.
 */
final class CoordinatedStatus {
    private CoordinatedStatus() {
    }

    static int print(Path image, CoordinatorOptions coordinator, boolean json) throws CliException, IOException {
        long size = Files.size(image);
        Path name = image.getFileName();
        ImageIdentity mine = new ImageIdentity(name == null ? image.toString() : name.toString(), size);
        ZkStatus status;
        try (ZkOwnership zk = coordinator.connect()) {
            status = zk.status();
        } catch (DeviceException e) {
            throw CoordinatorOptions.failure(image, e);
        }
        if (status.identity() != null && !status.identity().equals(mine)) {
            throw new CliException(ExitCodes.BAD_IMAGE, "ZooKeeper " + status.address() + " belongs to another image: "
                    + status.identity() + ", not " + mine + "; each image needs a PATH of its own");
        }
        OwnershipRecord record = status.record();
        Holder holder = status.holder();
        if (json) {
            ObjectNode o = Json.object();
            o.put("image", image.toString());
            o.put("size", size);
            o.put("coordinator", status.address().toString());
            ObjectNode r = o.putObject("record");
            r.put("epoch", record.epoch());
            r.put("owner", record.ownerId());
            r.put("clean", record.clean());
            if (holder != null) {
                ObjectNode h = o.putObject("holder");
                h.put("owner", holder.ownerId());
                h.put("host", holder.host());
                h.put("pid", holder.pid());
                h.put("session", CoordinatorOptions.session(holder.sessionId()));
            } else {
                o.putNull("holder");
            }
            o.put("active-elsewhere", holder != null);
            System.out.println(Json.line(o));
            return ExitCodes.OK;
        }
        System.out.println("image   " + image + " (" + Sizes.format(size) + ")");
        System.out.println("path    " + status.address() + (status.identity() == null
                ? " (unclaimed: no holder ever activated)" : " (belongs to this image)"));
        System.out.println("record  " + (record.epoch() == 0 ? "epoch 0: never activated"
                : "epoch " + record.epoch() + ", owner " + record.ownerId() + ", "
                + (record.clean() ? "clean (the owner flushed and let go)" : "unclean (an owner is active, or died active)")));
        System.out.println("holder  " + (holder == null ? "none: nobody holds the lock"
                : "ACTIVE elsewhere: " + holder.describe()));
        return ExitCodes.OK;
    }
}
