package dev.handoff.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.handoff.device.DeviceException;
import dev.handoff.device.WriteGate;
import dev.handoff.ownership.HandoffToken;
import dev.handoff.ownership.OwnedImage;
import java.nio.file.Path;
import java.util.Set;

/**
 * {@code serve}'s ownership commands on the control socket, Handoff's extensions to QMP:
 * <ul>
 *   <li>{@code x-handoff-prepare}: the source's half of a handoff once no job runs: waits for
 *       in-flight client writes, refuses new ones (clients get {@code EPERM}), flushes, marks the
 *       ownership record clean, goes INACTIVE and releases the locks; returns the token
 *       {@code {"epoch": N, "owner": ID}};</li>
 *   <li>{@code x-handoff-accept {"epoch": N, "owner": ID}}: the destination's half, for an image on
 *       shared storage served with {@code --inactive}: activates with the source's token;</li>
 *   <li>{@code x-handoff-abort}: takes the image back after a failed migration;</li>
 *   <li>{@code x-query-ownership}: {@code {"state", "epoch", "owner"}}.</li>
 * </ul>
 * Client writes pass the export's {@link WriteGate}: prepare refuses them there first (so none is
 * left to land after the flush, whichever device the export routes to), and accept and abort let
 * them in again once the image is ACTIVE. Called on the control socket's thread, one command at a
 * time.
 */
final class HandoffControl {
    static final Set<String> COMMANDS = Set.of("x-handoff-prepare", "x-handoff-accept", "x-handoff-abort",
            "x-query-ownership");

    private final Path image;
    private final OwnedImage owned; // null when served read-only
    private final WriteGate gate;
    private final JobTable jobs;

    HandoffControl(Path image, OwnedImage owned, WriteGate gate, JobTable jobs) {
        this.image = image;
        this.owned = owned;
        this.gate = gate;
        this.jobs = jobs;
    }

    JsonNode execute(String command, ObjectNode args) throws QmpException {
        if (command.equals("x-handoff-accept")) {
            return accept(args);
        }
        Args.allow(args);
        switch (command) {
            case "x-handoff-prepare":
                return prepare();
            case "x-handoff-abort":
                return abort();
            default: // x-query-ownership
                return ownership();
        }
    }

    private void requireOwnership() throws QmpException {
        if (owned == null) {
            throw QmpException.generic(image + " is served read-only: it takes no part in the ownership protocol");
        }
    }

    private JsonNode prepare() throws QmpException {
        requireOwnership();
        if (jobs.anyRunning()) {
            throw QmpException.generic("a mirror job is still running: complete or cancel it before handing the"
                    + " image over");
        }
        gate.refuseWrites("the image was handed over: writes are refused here"); // waits for in-flight client writes
        HandoffToken token;
        try {
            token = owned.prepareHandoff();
        } catch (DeviceException | IllegalStateException e) {
            if (owned.state() == OwnedImage.State.ACTIVE) {
                gate.acceptWrites();
            }
            throw QmpException.generic("x-handoff-prepare failed: " + e.getMessage());
        }
        ObjectNode r = Json.object();
        r.put("epoch", token.epoch());
        r.put("owner", token.ownerId());
        System.out.println("handed over: " + image + " INACTIVE, token " + token.epoch() + ":" + token.ownerId());
        System.out.flush();
        return r;
    }

    /** The destination's half (shared storage): {"epoch": N, "owner": ID} from the source's prepare. */
    private JsonNode accept(ObjectNode args) throws QmpException {
        requireOwnership();
        Args.allow(args, "epoch", "owner");
        JsonNode epoch = args.get("epoch");
        JsonNode from = args.get("owner");
        if (epoch == null || !epoch.canConvertToLong() || from == null || !from.isTextual()) {
            throw QmpException.generic("x-handoff-accept needs 'epoch' (integer) and 'owner' (string): the token"
                    + " x-handoff-prepare returned");
        }
        HandoffToken token;
        try {
            token = new HandoffToken(epoch.asLong(), from.asText());
        } catch (IllegalArgumentException e) {
            throw QmpException.generic("Invalid token: " + e.getMessage());
        }
        try {
            owned.acceptHandoff(token);
        } catch (DeviceException | IllegalStateException e) {
            throw QmpException.generic("x-handoff-accept refused: " + e.getMessage());
        }
        gate.acceptWrites();
        System.out.println("took over: " + image + " ACTIVE, epoch " + owned.epoch());
        System.out.flush();
        return ownership();
    }

    private JsonNode abort() throws QmpException {
        requireOwnership();
        try {
            owned.abortHandoff();
        } catch (DeviceException | IllegalStateException e) {
            throw QmpException.generic("x-handoff-abort refused: " + e.getMessage());
        }
        gate.acceptWrites();
        return ownership();
    }

    private ObjectNode ownership() {
        ObjectNode r = Json.object();
        if (owned == null) {
            r.put("state", "READ-ONLY");
            return r;
        }
        r.put("state", owned.state().toString());
        r.put("epoch", owned.epoch());
        r.put("owner", owned.ownerId());
        return r;
    }
}
