package dev.handoff.coordination;

import dev.handoff.device.BlockDevice;
import dev.handoff.device.DeviceException;
import dev.handoff.device.FileDevice;
import dev.handoff.device.ForwardingBlockDevice;
import dev.handoff.ownership.HandoffToken;
import dev.handoff.ownership.ImageFencedException;
import dev.handoff.ownership.ImageInactiveException;
import dev.handoff.ownership.OwnedImage;
import dev.handoff.ownership.OwnershipRecord;
import dev.handoff.ownership.RecordStore;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A holder of an image through ZooKeeper in its own JVM, driven line by line on stdin by
 * {@link HolderProcess}; each answer is one line on stdout, with {@code t=} the holder's
 * {@link System#nanoTime()} (CLOCK_MONOTONIC on Linux: the same clock in every process of the host).
 *
 * <p>Data: block {@code n} (4 KiB at {@code n * 4096}) written by {@code write n} starts with the
 * line {@code owner=ID epoch=E seq=n}, so that the test can read from the image file who wrote
 * which block with which epoch.
 *
 * <p>Usage: {@code HolderMain CONNECT PATH IMAGE OWNER SESSION_MS [WRITE_DELAY_MS]}. A write delay
 * makes every write sleep that long after the lease admitted it and before it reaches the file
 * (a slow disk), printing {@code writing n t=} first, so that a pause lands there.
 */
public final class HolderMain {
    static final int BLOCK = 4096;

    private final PrintStream out = System.out;
    private final AtomicBoolean pauseBeforeRecordWrite = new AtomicBoolean();
    private final long writeDelayMillis;
    private OwnedImage image;
    private ZkOwnership zk;
    private final String owner;

    private HolderMain(String owner, long writeDelayMillis) {
        this.owner = owner;
        this.writeDelayMillis = writeDelayMillis;
    }

    public static void main(String[] args) throws Exception {
        HolderMain h = new HolderMain(args[3], args.length > 5 ? Long.parseLong(args[5]) : 0);
        h.run(new ZkAddress(args[0], args[1]), Path.of(args[2]), Duration.ofMillis(Long.parseLong(args[4])));
    }

    private void run(ZkAddress address, Path file, Duration session) throws Exception {
        zk = ZkOwnership.connect(address, session, Duration.ofSeconds(2));
        zk.onSessionLost(why -> say("session-lost t=" + System.nanoTime() + " " + why));
        FileDevice device = FileDevice.open(file);
        image = zk.open(device, device, file.getFileName().toString(), owner, OwnedImage.State.INACTIVE,
                PausingStore::new, SlowDevice::new);
        say("ready pid=" + ProcessHandle.current().pid() + " session=0x" + Long.toHexString(zk.sessionId()));
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            String[] w = line.trim().split("\\s+");
            if (w[0].equals("quit")) {
                break;
            }
            say(execute(w));
        }
        try {
            image.close();
            say("closed");
        } catch (DeviceException e) {
            say("close-failed " + kind(e) + ": " + e.getMessage());
        }
        System.exit(0);
    }

    private synchronized void say(String line) {
        out.println(line);
        out.flush();
    }

    private String execute(String[] w) {
        try {
            switch (w[0]) {
                case "activate":
                    image.activate();
                    return "ok ACTIVE epoch=" + image.epoch() + " t=" + System.nanoTime();
                case "activate-wait": {
                    long end = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                    while (true) {
                        try {
                            image.activate();
                            return "ok ACTIVE epoch=" + image.epoch() + " t=" + System.nanoTime();
                        } catch (ImageInactiveException busy) {
                            if (System.nanoTime() - end > 0) {
                                throw busy;
                            }
                            Thread.sleep(50);
                        }
                    }
                }
                case "prepare": {
                    HandoffToken t = image.prepareHandoff();
                    return "ok token=" + t.epoch() + ":" + t.ownerId();
                }
                case "accept": {
                    int colon = w[1].indexOf(':');
                    image.acceptHandoff(new HandoffToken(Long.parseLong(w[1].substring(0, colon)), w[1].substring(colon + 1)));
                    return "ok ACTIVE epoch=" + image.epoch() + " t=" + System.nanoTime();
                }
                case "abort":
                    image.abortHandoff();
                    return "ok ACTIVE epoch=" + image.epoch();
                case "inactivate":
                    image.inactivate();
                    return "ok INACTIVE";
                case "write":
                    return write(Integer.parseInt(w[1]));
                case "writeloop": {
                    int from = Integer.parseInt(w[1]);
                    int count = Integer.parseInt(w[2]);
                    Thread loop = new Thread(() -> writeLoop(from, count), "writeloop");
                    loop.setDaemon(true);
                    loop.start();
                    return "ok looping";
                }
                case "flush":
                    image.flush();
                    return "ok flushed t=" + System.nanoTime();
                case "leaseprobe": {
                    Thread probe = new Thread(this::probeLease, "leaseprobe");
                    probe.setDaemon(true);
                    probe.start();
                    return "ok probing";
                }
                case "pause-before-record-write":
                    pauseBeforeRecordWrite.set(true);
                    return "ok armed";
                case "record": {
                    OwnershipRecord r = image.readRecord();
                    return "ok record=" + r.epoch() + ":" + r.ownerId() + ":" + (r.clean() ? "clean" : "unclean");
                }
                case "status":
                    return "ok " + image.state() + " epoch=" + image.epoch() + " session=0x" + Long.toHexString(zk.sessionId());
                default:
                    return "error unknown command " + w[0];
            }
        } catch (DeviceException e) {
            return "refused " + kind(e) + ": " + e.getMessage();
        } catch (IllegalStateException e) {
            return "refused state: " + e.getMessage();
        } catch (InterruptedException e) {
            return "error interrupted";
        }
    }

    /**
     * Asks the lease every 2 ms whether a write would be admitted; says when it first is not, and
     * when the last admission that succeeded began ({@code admitted-from=}: the lease's check came
     * after that instant, however late this thread got to run).
     */
    private void probeLease() {
        long admittedFrom = 0;
        while (true) {
            long from = System.nanoTime();
            try {
                zk.lease().admit("probe");
                admittedFrom = from;
            } catch (DeviceException e) {
                say("lease-refused t=" + System.nanoTime() + " admitted-from=" + admittedFrom + " " + e.getMessage());
                return;
            }
            sleep(2);
        }
    }

    /** Writes blocks from..from+count-1 until refused; after a refusal, two more writes and a flush. */
    private void writeLoop(int from, int count) {
        int refusals = 0;
        for (int n = from; n < from + count && refusals < 3; n++) {
            String r = write(n);
            say(r);
            if (!r.startsWith("ack")) {
                refusals++;
            }
        }
        if (refusals > 0) {
            say(execute(new String[] {"flush"}));
        }
        say("loop-end");
    }

    private String write(int n) {
        ByteBuffer b = ByteBuffer.allocate(BLOCK);
        b.put(("owner=" + owner + " epoch=" + image.epoch() + " seq=" + n + "\n").getBytes(StandardCharsets.US_ASCII));
        while (b.hasRemaining()) {
            b.put((byte) n);
        }
        b.flip();
        long from = System.nanoTime(); // the lease's checks of this write come after this instant
        try {
            image.write((long) (n % (image.size() / BLOCK)) * BLOCK, b);
            return "ack " + n + " t=" + System.nanoTime() + " from=" + from;
        } catch (DeviceException e) {
            return "refused " + n + " " + kind(e) + " t=" + System.nanoTime() + ": " + e.getMessage();
        }
    }

    private static String kind(DeviceException e) {
        if (e instanceof ImageFencedException) {
            return "fenced-by-epoch";
        }
        if (e instanceof CoordinationException c) {
            return "coordination-" + c.reason();
        }
        return e.kind().toString();
    }

    /** The record store, with a pause before the next compare-and-write when armed. */
    private final class PausingStore implements RecordStore {
        private final RecordStore inner;

        PausingStore(RecordStore inner) {
            this.inner = inner;
        }

        @Override
        public OwnershipRecord read() throws DeviceException {
            return inner.read();
        }

        @Override
        public OwnershipRecord compareAndWrite(long expectedEpoch, OwnershipRecord next) throws DeviceException {
            if (pauseBeforeRecordWrite.getAndSet(false)) {
                say("record-write-pending expected=" + expectedEpoch + " t=" + System.nanoTime());
                sleep(2000); // the test stops the JVM here
            }
            OwnershipRecord found = inner.compareAndWrite(expectedEpoch, next);
            say("record-write-done found=" + found.epoch() + " t=" + System.nanoTime());
            return found;
        }

        @Override
        public String describe() {
            return inner.describe();
        }
    }

    /** A slow disk: each write sleeps after the lease admitted it, before it reaches the file. */
    private final class SlowDevice extends ForwardingBlockDevice {
        SlowDevice(BlockDevice inner) {
            super(inner);
        }

        @Override
        public void write(long offset, ByteBuffer src) throws DeviceException {
            if (writeDelayMillis > 0) {
                say("writing " + offset / BLOCK + " t=" + System.nanoTime());
                sleep(writeDelayMillis);
            }
            super.write(offset, src);
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
