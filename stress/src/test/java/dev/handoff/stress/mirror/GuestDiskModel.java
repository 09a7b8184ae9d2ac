package dev.handoff.stress.mirror;

import java.util.Arrays;

/**
 * The sequential specification of the mirror's Lincheck tests ({@link MirrorCopierScenario},
 * {@link MirrorWriteBlockingLincheckTest}): what the guest sees through the mirror's device is one
 * register per chunk, whatever the copier does and whatever the copy mode. A two-chunk write sets
 * both registers at once; a discard reads back as zeroes. Copier steps change nothing a guest can
 * observe, so they are no-ops here. Independent of the kernel: plain ints.
 */
public final class GuestDiskModel {
    private final int[] chunks = {1, 1};

    public void guestWrite0(int value) {
        chunks[0] = value;
    }

    public void guestWrite1(int value) {
        chunks[1] = value;
    }

    public void guestWrite01(int value) {
        chunks[0] = value;
        chunks[1] = value;
    }

    public void guestDiscard1() {
        chunks[1] = 0;
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

    public void copierDrains() {
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
