package com.example.pagecache;

import dev.handoff.device.MemoryDevice;
import dev.handoff.testkit.Check;
import dev.handoff.testkit.CheckFailure;
import dev.handoff.testkit.Checks;
import dev.handoff.testkit.DeviceFactory;
import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The buggy cache fails the kit for the right reason: its flush durability check names the flushed
 * write the power loss took. (A DeviceKit subclass on this device would fail the build; here one
 * check runs through the kit's API and its failure is the test's subject.)
 */
class ClearAfterWriteBackDeviceTest {

    private static final DeviceFactory BUGGY = new DeviceFactory() {
        @Override
        public dev.handoff.device.BlockDevice create(long size) {
            return new ClearAfterWriteBackDevice(new MemoryDevice(size));
        }

        @Override
        public PowerLoss powerLoss() {
            return device -> {
                ClearAfterWriteBackDevice cache = (ClearAfterWriteBackDevice) device;
                cache.close();
                return new ClearAfterWriteBackDevice(cache.disk);
            };
        }
    };

    @Test
    void clearingMarksAfterTheWriteBackLosesAFlushedWriteAtAPowerLoss() {
        Check durability = Checks.byId("flushed-writes-survive-a-power-loss").orElseThrow();
        CheckFailure failure = null;
        for (long seed = 1; seed <= 20 && failure == null; seed++) {
            try {
                durability.run(BUGGY, seed, Duration.ofSeconds(60));
            } catch (CheckFailure f) {
                failure = f;
            }
        }
        assertNotNull(failure, "the kit must catch a flush that clears dirty marks after the write-back");
        assertEquals("flushed-writes-survive-a-power-loss", failure.check());
        assertTrue(failure.getMessage().contains("a flushed write was lost"), failure.getMessage());
    }
}
