package dev.handoff.nbd;

import dev.handoff.device.BlockDevice;
import java.util.Objects;

/**
 * A device offered by an {@link NbdServer} under a name. The server never closes the device: its
 * owner does, after the server is closed.
 *
 * @param name        the export name clients ask for (at most 4096 UTF-8 bytes, no NUL); {@code ""}
 *                    is the default export
 * @param device      the device served
 * @param readOnly    whether writes, trims and write-zeroes are refused with {@code EPERM}
 * @param description a human-readable description sent to clients that ask ({@code ""} for none)
 */
public record NbdExport(String name, BlockDevice device, boolean readOnly, String description) {

    public NbdExport {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(description, "description");
        if (!NbdWire.isValidString(name)) {
            throw new IllegalArgumentException("export name must be at most 4096 UTF-8 bytes without NUL");
        }
        if (!NbdWire.isValidString(description)) {
            throw new IllegalArgumentException("description must be at most 4096 UTF-8 bytes without NUL");
        }
    }

    /** A writable export. */
    public static NbdExport of(String name, BlockDevice device) {
        return new NbdExport(name, device, false, "");
    }

    /** A read-only export. */
    public static NbdExport readOnly(String name, BlockDevice device) {
        return new NbdExport(name, device, true, "");
    }

    /**
     * The transmission flags this export is announced with; {@code structured}: the client
     * negotiated structured replies (a READ's reply is then never fragmented, so DF is offered).
     */
    int transmissionFlags(boolean structured) {
        int flags = NbdWire.TFLAG_HAS_FLAGS | NbdWire.TFLAG_SEND_FLUSH | NbdWire.TFLAG_SEND_FUA
                // Every connection reaches the same BlockDevice, whose flush covers all writes that
                // returned before it: flush and FUA are visible across connections.
                | NbdWire.TFLAG_CAN_MULTI_CONN
                // CACHE is advisory: the server checks the range and answers (the device caches as it does).
                | NbdWire.TFLAG_SEND_CACHE;
        if (structured) {
            flags |= NbdWire.TFLAG_SEND_DF;
        }
        if (readOnly) {
            flags |= NbdWire.TFLAG_READ_ONLY;
        } else {
            flags |= NbdWire.TFLAG_SEND_TRIM | NbdWire.TFLAG_SEND_WRITE_ZEROES | NbdWire.TFLAG_SEND_FAST_ZERO;
        }
        return flags;
    }
}
