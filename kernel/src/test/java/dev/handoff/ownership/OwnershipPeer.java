package dev.handoff.ownership;

import dev.handoff.device.DeviceException;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A second process for the cross-process tests: opens an image file INACTIVE and obeys one
 * command per line on standard input, answering one line each on standard output:
 * <pre>
 *   activate | inactivate | flush | epoch | record | close
 *   prepare                         (prepareHandoff; answers OK EPOCH OWNER)
 *   accept EPOCH OWNER              (acceptHandoff of that token)
 *   write OFFSET LENGTH BYTE        (fills the range with BYTE)
 *   check OFFSET LENGTH BYTE        (answers OK if the range holds only BYTE)
 * </pre>
 * Answers are {@code OK <epoch>} or {@code ERR <KIND> <message>}. Prints {@code READY <pid>} once
 * open. With {@code -Dhandoff.ownership.trace=LOG} the handle records its steps in that log
 * ({@link OwnershipTraceRecorder}).
 */
public final class OwnershipPeer {
    private OwnershipPeer() {
    }

    public static void main(String[] args) throws Exception {
        String trace = System.getProperty("handoff.ownership.trace");
        OwnedImage image = trace == null ? OwnedImage.openFile(Path.of(args[0]), args[1], OwnedImage.State.INACTIVE)
                : new OwnershipTraceRecorder(Path.of(trace)).openFile(Path.of(args[0]), args[1], OwnedImage.State.INACTIVE);
        System.out.println("READY " + ProcessHandle.current().pid());
        System.out.flush();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            String[] w = line.trim().split("\\s+");
            String answer;
            try {
                switch (w[0]) {
                    case "activate" -> image.activate();
                    case "inactivate" -> image.inactivate();
                    case "flush" -> image.flush();
                    case "accept" -> image.acceptHandoff(new HandoffToken(Long.parseLong(w[1]), w[2]));
                    case "prepare" -> {
                        HandoffToken t = image.prepareHandoff();
                        System.out.println("OK " + t.epoch() + " " + t.ownerId());
                        System.out.flush();
                        continue;
                    }
                    case "epoch" -> { }
                    case "record" -> {
                        System.out.println("OK " + image.readRecord());
                        System.out.flush();
                        continue;
                    }
                    case "close" -> image.close();
                    case "write" -> {
                        byte[] b = new byte[Integer.parseInt(w[2])];
                        Arrays.fill(b, (byte) Integer.parseInt(w[3]));
                        image.write(Long.parseLong(w[1]), ByteBuffer.wrap(b));
                    }
                    case "check" -> {
                        ByteBuffer b = ByteBuffer.allocate(Integer.parseInt(w[2]));
                        image.read(Long.parseLong(w[1]), b);
                        for (byte x : b.array()) {
                            if (x != (byte) Integer.parseInt(w[3])) {
                                throw new DeviceException(DeviceException.Kind.IO_ERROR, "unexpected byte " + x);
                            }
                        }
                    }
                    default -> throw new IllegalArgumentException("unknown command " + w[0]);
                }
                answer = "OK " + image.epoch();
            } catch (DeviceException e) {
                answer = "ERR " + e.kind() + " " + e.getMessage().replace('\n', ' ');
            }
            System.out.println(answer);
            System.out.flush();
            if (w[0].equals("close")) {
                return;
            }
        }
    }
}
