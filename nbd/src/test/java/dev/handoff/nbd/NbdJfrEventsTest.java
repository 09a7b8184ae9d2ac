package dev.handoff.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.handoff.device.DeviceException;
import dev.handoff.device.FaultyDevice;
import dev.handoff.device.MemoryDevice;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The server's JFR event: one {@code dev.handoff.NbdRequest} per request served, with its
 * command, range, error and the parts of its time, recorded around a few requests of Handoff's
 * client and read back with {@code jdk.jfr.consumer}.
 */
@Timeout(120)
class NbdJfrEventsTest {
    private static final long BASE = 3L << 20; // offsets no other request of this JVM uses
    @TempDir
    Path dir;

    @Test
    void everyServedRequestIsRecordedWithItsCommandRangeErrorAndTimes() throws Exception {
        FaultyDevice disk = new FaultyDevice(new MemoryDevice(8L << 20));
        Path file = dir.resolve("events.jfr");
        try (Recording r = new Recording()) {
            r.enable("dev.handoff.NbdRequest").withThreshold(Duration.ZERO);
            r.start();
            try (ServedDevice served = ServedDevice.serve("disk", disk)) {
                NbdDevice client = served.client();
                client.write(BASE, ByteBuffer.allocate(4096));
                client.write(BASE + 65536, ByteBuffer.allocate(512));
                client.read(BASE + 4096, ByteBuffer.allocate(8192));
                disk.inject(FaultyDevice.Fault.error(DeviceException.Kind.IO_ERROR).on(FaultyDevice.Op.WRITE));
                assertThatThrownBy(() -> client.write(BASE + 131072, ByteBuffer.allocate(1024)))
                        .isInstanceOf(DeviceException.class);
            }
            r.stop();
            r.dump(file);
        }
        List<RecordedEvent> mine = new ArrayList<>();
        for (RecordedEvent e : RecordingFile.readAllEvents(file)) {
            if (e.getEventType().getName().equals("dev.handoff.NbdRequest") && e.getLong("offset") >= BASE
                    && e.getLong("offset") < BASE + (1 << 20)) {
                mine.add(e);
            }
        }
        mine.sort((a, b) -> a.getStartTime().compareTo(b.getStartTime()));
        assertThat(mine).extracting(e -> e.getString("command"), e -> e.getLong("offset") - BASE,
                        e -> e.getLong("length"), e -> e.getInt("error"))
                .containsExactly(org.assertj.core.groups.Tuple.tuple("WRITE", 0L, 4096L, 0),
                        org.assertj.core.groups.Tuple.tuple("WRITE", 65536L, 512L, 0),
                        org.assertj.core.groups.Tuple.tuple("READ", 4096L, 8192L, 0),
                        org.assertj.core.groups.Tuple.tuple("WRITE", 131072L, 1024L, NbdWire.EIO));
        for (RecordedEvent e : mine) {
            assertThat(e.getLong("connection")).isPositive();
            Duration parts = e.getDuration("receiveTime").plus(e.getDuration("queueTime"))
                    .plus(e.getDuration("deviceTime")).plus(e.getDuration("replyTime"));
            assertThat(parts.isNegative()).isFalse();
            // The parts are System.nanoTime laps inside JFR's begin..end; JFR's own clock may be the
            // TSC on some hosts, hence the slack.
            assertThat(parts).isLessThanOrEqualTo(e.getDuration().plusMillis(1));
            assertThat(e.getDuration("headerWait").isNegative()).isFalse();
            if (e.getBoolean("onReader")) {
                assertThat(e.getDuration("headerWait").toNanos()).as("the reader serves only a request it waited for")
                        .isGreaterThan(ServerLimits.defaults().inlineAfterWait().toNanos());
                assertThat(e.getDuration("queueTime")).as("no worker to wait for").isLessThan(Duration.ofMillis(1));
            }
        }
    }
}
