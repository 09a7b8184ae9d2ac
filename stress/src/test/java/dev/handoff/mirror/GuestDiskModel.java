package dev.handoff.mirror;

import java.util.Arrays;

/**
 * The sequential specification of {@link MirrorCopierScenario}: what the guest sees through the
 * mirror's device is one register per chunk, whatever the copier does. Copier steps change
 * nothing a guest can observe, so they are no-ops here. Independent of the kernel: plain ints.
 */
public final class GuestDiskModel {
    private final int[] chunks = {1, 1};

    public void guestWrite0(int value) {
        chunks[0] = value;
    }

    public void guestWrite1(int value) {
        chunks[1] = value;
    }

    public int guestRead0() {
        return chunks[0];
    }

    public int guestRead1() {
        return chunks[1];
    }

    public void progress() {
    }

    public void copierRunsOldest() {
    }

    public void copierRunsNewest() {
    }

    public void issue() {
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GuestDiskModel m && Arrays.equals(chunks, m.chunks);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(chunks);
    }
}
