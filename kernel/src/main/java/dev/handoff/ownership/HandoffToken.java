package dev.handoff.ownership;

import java.util.Objects;

/**
 * What the source of a handoff tells the destination: the epoch it owned the image with and its
 * owner id, as written (clean) in the ownership record by {@link OwnedImage#prepareHandoff()}.
 * {@link OwnedImage#acceptHandoff(HandoffToken)} succeeds only while the record still shows
 * exactly this epoch and owner; the new owner then runs with epoch {@code epoch() + 1}.
 *
 * <p>A plain value: embedders carry it in their migration stream however they like.
 *
 * @param epoch   the epoch of the source's last activation, at least 1
 * @param ownerId the source's owner id
 */
public record HandoffToken(long epoch, String ownerId) {
    public HandoffToken {
        if (epoch < 1) {
            throw new IllegalArgumentException("a handoff token's epoch is at least 1, got " + epoch);
        }
        Objects.requireNonNull(ownerId, "ownerId");
    }
}
