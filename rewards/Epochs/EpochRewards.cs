using System.Numerics;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Rewards;

namespace Pipeline.Rewards.Epochs;

/// <summary>
/// An epoch's rewards: per device the score's components and what it earned, per contributor the epoch's amount and
/// the cumulative amount the Merkle tree commits to, and what the treasury keeps. Emission + sales share = the devices'
/// amounts + treasury, exactly.
/// </summary>
public sealed record EpochRewards(
    long Epoch,
    string PolicyHash,
    string InputsHash,
    BigInteger Emission,
    BigInteger SalesShare,
    BigInteger TotalScore,
    BigInteger Treasury,
    IReadOnlyList<DeviceReward> Devices,
    IReadOnlyList<ContributorReward> Contributors)
{
    /// <summary>The tree's leaves: every contributor so far with their cumulative amount.</summary>
    public IEnumerable<RewardLeaf> Leaves() => Contributors.Select(c => new RewardLeaf(c.Account, c.CumulativeAmount));

    /// <summary>The root to publish (0x + 64 hex digits), or null when nobody has ever earned anything.</summary>
    public string? MerkleRoot() => Contributors.Count == 0 ? null : Hex.Encode0x(RewardsMerkleTree.Build(Leaves()).Root);
}

/// <summary>
/// One device's reward in an epoch, with every figure that went into it ("explain my reward"): score = capped volume ×
/// quality × agreement × (1000000 − penalty), each fraction in ppm.
/// </summary>
public sealed record DeviceReward(
    EthAddress Device,
    EthAddress Owner,
    DeviceKind? Kind,
    long Accepted,
    long Rejected,
    long CappedVolume,
    long UptimePpm,
    long CompletenessPpm,
    long TimelinessPpm,
    long QualityPpm,
    long AgreementPpm,
    long PenaltyPpm,
    bool Equivocated,
    BigInteger Score,
    BigInteger EmissionAmount,
    long SoldRows,
    long SoldCredits,
    BigInteger SalesAmount)
{
    public BigInteger Amount => EmissionAmount + SalesAmount;
}

/// <summary>What a contributor (an owner address) earned in the epoch and in all epochs up to it.</summary>
public sealed record ContributorReward(EthAddress Account, int Devices, BigInteger EmissionAmount, BigInteger SalesAmount, BigInteger CumulativeAmount)
{
    public BigInteger Amount => EmissionAmount + SalesAmount;
}
