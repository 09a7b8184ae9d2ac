package dev.handoff.cli;

import dev.handoff.device.DeviceException;
import dev.handoff.ownership.HandoffToken;
import dev.handoff.ownership.ImageFencedException;
import dev.handoff.ownership.ImageInactiveException;
import dev.handoff.ownership.OwnedImage;
import dev.handoff.ownership.OwnershipRecord;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * Keeps an {@link OwnedImage} open in this process and takes commands for it, one per line on
 * stdin, answering one line each on stdout. Ownership is a lock held by a live process, so the
 * shell's ownership commands are processes that hold the image until told to let go ({@code quit},
 * end of input, Ctrl-C or SIGTERM: an ACTIVE image is then flushed, its record marked clean and its
 * lock released; an INACTIVE one is closed without writing anything).
 *
 * <pre>
 *   status                 ok STATE epoch=N owner=ID record=E:OWNER:clean|unclean
 *   activate | inactivate  ok STATE ...
 *   prepare                ok INACTIVE ... token=E:OWNER     (the source's half of a handoff)
 *   accept E:OWNER         ok ACTIVE ...                     (the destination's half)
 *   abort                  ok ACTIVE ...                     (the source takes the image back)
 *   write OFFSET LENGTH    ok wrote LENGTH bytes at OFFSET   (refused while INACTIVE)
 *   flush                  ok flushed
 *   quit                   ok closed ...
 * </pre>
 * A refused command answers {@code refused busy|inactive|fenced|state: MESSAGE} and changes
 * nothing; a failed one {@code error: MESSAGE}.
 */
final class ImageHolder {
    private final OwnedImage image;
    private final Path path;
    private final PrintStream out;
    private boolean closed; // guarded by this

    ImageHolder(OwnedImage image, Path path, PrintStream out) {
        this.image = image;
        this.path = path;
        this.out = out;
    }

    /** Prints the first line, then serves stdin until quit, end of input or a signal. */
    int serve() {
        Thread hook = new Thread(this::closeOnSignal, "handoff-owner-close");
        Runtime.getRuntime().addShutdownHook(hook);
        synchronized (this) {
            out.println(stateLine() + " image=" + path + " pid=" + ProcessHandle.current().pid());
            out.flush();
        }
        int code = ExitCodes.OK;
        try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            for (String line; (line = in.readLine()) != null; ) {
                line = line.strip();
                if (line.isEmpty() || line.startsWith("#")) {
                    continue;
                }
                if (line.equals("quit") || line.equals("exit")) {
                    break;
                }
                String answer;
                synchronized (this) {
                    if (closed) {
                        break;
                    }
                    answer = execute(line);
                }
                out.println(answer);
                out.flush();
            }
        } catch (IOException e) {
            System.err.println("handoff owner: cannot read commands: " + e.getMessage());
        }
        synchronized (this) {
            code = close("closed");
        }
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the hook runs and finds the image closed
        }
        return code;
    }

    String execute(String line) {
        String[] w = line.split("\\s+");
        try {
            switch (w[0]) {
                case "status":
                    return stateLine() + " record=" + record(image.readRecord());
                case "activate":
                    image.activate();
                    return stateLine();
                case "inactivate":
                    image.inactivate();
                    return stateLine();
                case "prepare": {
                    HandoffToken token = image.prepareHandoff();
                    return stateLine() + " token=" + token.epoch() + ":" + token.ownerId();
                }
                case "accept":
                    if (w.length != 2) {
                        return "error: usage: accept EPOCH:OWNER";
                    }
                    image.acceptHandoff(parseToken(w[1]));
                    return stateLine();
                case "abort":
                    image.abortHandoff();
                    return stateLine();
                case "write": {
                    if (w.length != 3) {
                        return "error: usage: write OFFSET LENGTH";
                    }
                    long offset = Sizes.parse(w[1]);
                    int length = Math.toIntExact(Sizes.parse(w[2]));
                    ByteBuffer data = ByteBuffer.allocate(length);
                    byte b = (byte) (image.epoch() & 0xff);
                    while (data.hasRemaining()) {
                        data.put(b);
                    }
                    data.flip();
                    image.write(offset, data);
                    return "ok wrote " + length + " bytes at " + offset + " (byte value " + (b & 0xff) + ")";
                }
                case "flush":
                    image.flush();
                    return "ok flushed";
                case "help":
                    return "ok commands: status, activate, inactivate, prepare, accept EPOCH:OWNER, abort,"
                            + " write OFFSET LENGTH, flush, quit";
                default:
                    return "error: unknown command '" + w[0] + "' (try help)";
            }
        } catch (ImageFencedException e) {
            return "refused fenced: " + e.getMessage();
        } catch (ImageInactiveException e) {
            return "refused " + (isLockRefusal(e) ? "busy" : "inactive") + ": " + e.getMessage();
        } catch (IllegalStateException e) {
            return "refused state: " + e.getMessage();
        } catch (IllegalArgumentException | ArithmeticException e) {
            return "error: " + e.getMessage();
        } catch (DeviceException e) {
            return "error: " + e.getMessage();
        }
    }

    /** "ok ACTIVE epoch=3 owner=alice". */
    String stateLine() {
        return "ok " + image.state() + " epoch=" + image.epoch() + " owner=" + image.ownerId();
    }

    static String record(OwnershipRecord r) {
        return r.epoch() + ":" + r.ownerId() + ":" + (r.clean() ? "clean" : "unclean");
    }

    /** Whether a refusal came from the lock (another holder) rather than this handle's state. */
    static boolean isLockRefusal(ImageInactiveException e) {
        return e instanceof dev.handoff.ownership.ImageLockedException;
    }

    /** Parses EPOCH:OWNER. */
    static HandoffToken parseToken(String text) {
        int colon = text.indexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException("'" + text + "' is not a handoff token (EPOCH:OWNER, e.g. 3:alice)");
        }
        long epoch;
        try {
            epoch = Long.parseLong(text.substring(0, colon));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is not a handoff token (EPOCH:OWNER, e.g. 3:alice)");
        }
        return new HandoffToken(epoch, text.substring(colon + 1));
    }

    private void closeOnSignal() {
        synchronized (this) {
            if (!closed) {
                close("closed on signal");
            }
        }
    }

    /** Closes the image (ACTIVE: flush, record clean, release; INACTIVE: writes nothing). */
    private int close(String what) {
        if (closed) {
            return ExitCodes.OK;
        }
        closed = true;
        OwnedImage.State state = image.state();
        long epoch = image.epoch();
        try {
            image.close();
            out.println("ok " + what + " (" + (state == OwnedImage.State.ACTIVE
                    ? "was ACTIVE with epoch " + epoch + ": flushed, record marked clean, lock released"
                    : "was INACTIVE: nothing written") + ")");
            out.flush();
            return ExitCodes.OK;
        } catch (ImageFencedException e) {
            System.err.println("handoff owner: closed fenced: " + e.getMessage());
            return ExitCodes.FENCED;
        } catch (DeviceException e) {
            System.err.println("handoff owner: close failed: " + e.getMessage());
            return ExitCodes.FAILED;
        }
    }
}
