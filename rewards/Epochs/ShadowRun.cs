using System.Numerics;
using Pipeline.Core.Crypto;

namespace Pipeline.Rewards.Epochs;

/// <summary>
/// A candidate policy computed on an epoch beside the active one, before it is activated: who would gain or lose how
/// much, and what the treasury would keep. Nothing is recorded; both runs are the same pure calculation.
/// </summary>
public sealed record ShadowRun(string ActivePolicyHash, string CandidatePolicyHash, long Epoch, BigInteger ActiveTreasury, BigInteger CandidateTreasury, IReadOnlyList<ShadowRunRow> Contributors)
{
    public static ShadowRun Compare(RewardPolicy active, RewardPolicy candidate, EpochInputs inputs, IReadOnlyDictionary<EthAddress, BigInteger> previousCumulative)
    {
        var now = EpochCalculator.Calculate(active, inputs, previousCumulative);
        var then = EpochCalculator.Calculate(candidate, inputs, previousCumulative);
        var activeAmounts = now.Contributors.ToDictionary(c => c.Account, c => c.Amount);
        var candidateAmounts = then.Contributors.ToDictionary(c => c.Account, c => c.Amount);
        var rows = activeAmounts.Keys.Union(candidateAmounts.Keys)
            .Select(account => new ShadowRunRow(account, activeAmounts.GetValueOrDefault(account), candidateAmounts.GetValueOrDefault(account)))
            .OrderBy(row => row.Change).ThenBy(row => row.Account.ToLowerHex(), StringComparer.Ordinal)
            .ToList();
        return new ShadowRun(now.PolicyHash, then.PolicyHash, inputs.Epoch, now.Treasury, then.Treasury, rows);
    }
}

/// <summary>One contributor's epoch amount under each policy; a negative change is a loss under the candidate.</summary>
public sealed record ShadowRunRow(EthAddress Account, BigInteger ActiveAmount, BigInteger CandidateAmount)
{
    public BigInteger Change => CandidateAmount - ActiveAmount;
}
