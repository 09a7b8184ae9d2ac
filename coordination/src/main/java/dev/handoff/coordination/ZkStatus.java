package dev.handoff.coordination;

import dev.handoff.ownership.OwnershipRecord;

/**
 * An image's ownership as the ensemble shows it at one moment ({@link ZkOwnership#status()}).
 *
 * @param address  where it lives
 * @param identity the image the PATH belongs to; {@code null} if no holder ever activated
 * @param record   the ownership record (epoch, owner, clean); {@link OwnershipRecord#ABSENT} if none
 * @param holder   who holds the lock now; {@code null} if nobody does
 */
public record ZkStatus(ZkAddress address, ImageIdentity identity, OwnershipRecord record, Holder holder) {
}
