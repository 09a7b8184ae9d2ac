package dev.handoff.ownership;

import static dev.handoff.ownership.Refusals.refused;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Ownership handoffs between two processes, recorded for trace validation (TraceOwnership.tla):
 * this process holds node "n1", a second JVM ({@link OwnershipPeer}) node "n2", both handles on one
 * image file, both recording into one log. Each scenario returns the log's lines, in the order the
 * steps of both processes took effect.
 */
public final class OwnershipTraceScenarios {
    private static final int SIZE = 64 << 10;

    private OwnershipTraceScenarios() {
    }

    /**
     * n1 writes and flushes, hands the image to n2, which writes and flushes; n1 is refused a
     * write and an activation; n2 hands it back and n1 takes it; n2 is refused a write; both close.
     */
    public static List<String> handoffAndBack(Path dir) throws Exception {
        return twoProcesses(dir, (recorder, n1, n2) -> {
            n1.write(0, ByteBuffer.wrap(new byte[4096]));
            n1.flush();
            n1.write(4096, ByteBuffer.wrap(new byte[4096]));
            HandoffToken t1 = n1.prepareHandoff();
            expect(n2.send("accept " + t1.epoch() + " " + t1.ownerId()), "OK");
            expect(n2.send("write 0 4096 7"), "OK");
            expect(n2.send("flush"), "OK");
            refused(() -> n1.write(0, ByteBuffer.wrap(new byte[512])));
            refused(n1::activate);
            String[] t2 = n2.send("prepare").split(" ");
            expect(t2[0], "OK");
            n1.acceptHandoff(new HandoffToken(Long.parseLong(t2[1]), t2[2]));
            expect(n2.send("write 0 512 9"), "ERR");
            n1.write(8192, ByteBuffer.wrap(new byte[4096]));
            n1.flush();
            expect(n2.send("close"), "OK");
            n1.close();
        });
    }

    /** n1 hands the image to n2, which writes and is killed; n1 activates again (the OS released n2's lock). */
    public static List<String> handoffThenCrash(Path dir) throws Exception {
        return twoProcesses(dir, (recorder, n1, n2) -> {
            n1.write(0, ByteBuffer.wrap(new byte[4096]));
            HandoffToken t1 = n1.prepareHandoff();
            expect(n2.send("accept " + t1.epoch() + " " + t1.ownerId()), "OK");
            expect(n2.send("write 4096 4096 5"), "OK");
            refused(n1::activate);
            recorder.environment("CRASH", "n2", () -> {
                try {
                    n2.kill();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException(e);
                }
            });
            n1.activate();
            n1.write(0, ByteBuffer.wrap(new byte[512]));
            n1.flush();
            n1.close();
        });
    }

    /** What a scenario does once both holders are up and recording. */
    private interface Steps {
        void run(OwnershipTraceRecorder recorder, OwnedImage n1, PeerProcess n2) throws Exception;
    }

    /**
     * A fresh image, n1 (this process, ACTIVE) and n2 (a peer JVM) on it, both recording into one
     * log from the start of {@code steps}; returns the log's lines once both are closed.
     */
    private static List<String> twoProcesses(Path dir, Steps steps) throws Exception {
        Path image = image(dir);
        Path log = dir.resolve("trace.log");
        OwnershipTraceRecorder recorder = new OwnershipTraceRecorder(log);
        try (OwnedImage n1 = recorder.openFile(image, "n1", OwnedImage.State.ACTIVE);
                PeerProcess n2 = new PeerProcess(image, "n2", List.of("-Dhandoff.ownership.trace=" + log))) {
            OwnershipTraceRecorder.start(log);
            steps.run(recorder, n1, n2);
        }
        return OwnershipTraceRecorder.lines(log);
    }

    private static Path image(Path dir) throws IOException {
        Files.createDirectories(dir);
        Path image = dir.resolve("disk.img");
        Files.deleteIfExists(image);
        Files.deleteIfExists(dir.resolve("disk.img.owner"));
        Files.write(image, new byte[SIZE]);
        return image;
    }

    private static void expect(String answer, String prefix) {
        if (!answer.startsWith(prefix)) {
            throw new IllegalStateException("peer answered '" + answer + "', expected " + prefix);
        }
    }
}
