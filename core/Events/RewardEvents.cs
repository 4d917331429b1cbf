namespace Pipeline.Core.Events;

// The rewards stage's facts, one stream per epoch ("rewards-epoch-<n>"). Amounts are token base units (18 decimals) as
// decimal strings: they exceed 64 bits. Addresses are lower-case hex.

/// <summary>
/// An epoch's data was final and it was closed: readings of device time in [Start, End) and rejections received then,
/// as the lake held them up to event ThroughSequence; sales recorded in (SalesAfterSequence, ThroughSequence].
/// </summary>
public sealed record EpochClosed(long Epoch, DateTimeOffset Start, DateTimeOffset End, long ThroughSequence, long SalesAfterSequence, DateTimeOffset ClosedAt);

/// <summary>
/// The epoch's rewards under one policy, as its reward file (whose keccak256 is ContentHash) holds them; MerkleRoot is
/// null when nobody has earned anything yet. TotalOwed is the sum of every cumulative amount (what the root owes).
/// </summary>
public sealed record RewardsCalculated(
    long Epoch,
    string PolicyName,
    string PolicyHash,
    string InputsHash,
    string? MerkleRoot,
    string ContentHash,
    string File,
    string Emission,
    string SalesShare,
    string Treasury,
    string TotalOwed,
    IReadOnlyList<ContributorEpochAmount> Contributors,
    IReadOnlyList<DeviceEpochAmount> Devices,
    DateTimeOffset CalculatedAt);

/// <summary>A contributor's amount in the epoch and cumulative amount up to it (their Merkle leaf).</summary>
public sealed record ContributorEpochAmount(string Account, string Amount, string Cumulative);

/// <summary>A device's score and what it earned in the epoch, paid to its owner at the epoch's end.</summary>
public sealed record DeviceEpochAmount(string Device, string Owner, string Score, string Emission, string Sales);

/// <summary>
/// The intent to publish the epoch's root, recorded before any transaction is sent: whoever finds it without a
/// RootPublished checks the chain before sending, so a crash in between never publishes twice.
/// </summary>
public sealed record RootPublishRequested(long Epoch, string MerkleRoot, string ContentHash, string TotalOwed, long ChainId, string Distributor, DateTimeOffset RequestedAt);

/// <summary>The distributor holds the epoch's root: the transaction that put it there, mined and confirmed.</summary>
public sealed record RootPublished(long Epoch, string MerkleRoot, string ContentHash, long ChainId, string Distributor, string TxHash, long Block, DateTimeOffset PublishedAt);
