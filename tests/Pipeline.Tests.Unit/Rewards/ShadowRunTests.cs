using System.Numerics;
using Pipeline.Core.Crypto;
using Pipeline.Rewards.Epochs;
using static Pipeline.Tests.Unit.Rewards.EpochScenario;

namespace Pipeline.Tests.Unit.Rewards;

/// <summary>A candidate policy run beside the active one on the same epoch, before it is activated.</summary>
public sealed class ShadowRunTests
{
    [Fact]
    public void Compare_ACandidateThatStopsZeroingEquivocators_ShowsWhoGainsAndWhoLosesHowMuch()
    {
        var scenario = new EpochScenario(5)
            .Device("honest", "alice")
            .Device("equivocator", "mallory", rejections: new() { ["seq_conflict"] = 1 });
        var candidate = DefaultPolicy with { Name = "v2-lenient", EquivocationZeroesDevice = false };

        var shadow = ShadowRun.Compare(DefaultPolicy, candidate, scenario.Inputs, new Dictionary<EthAddress, BigInteger>());

        var active = scenario.Calculate();
        var lenient = scenario.Calculate(candidate);
        Assert.Equal(DefaultPolicy.Hash, shadow.ActivePolicyHash);
        Assert.Equal(candidate.Hash, shadow.CandidatePolicyHash);
        // Losers first: Alice loses what Mallory gains (0.9 of her score joins the pool).
        Assert.Equal([Address("alice"), Address("mallory")], shadow.Contributors.Select(r => r.Account));
        var alice = shadow.Contributors[0];
        var mallory = shadow.Contributors[1];
        Assert.Equal(ContributorOf(active, "alice").Amount, alice.ActiveAmount);
        Assert.Equal(ContributorOf(lenient, "alice").Amount, alice.CandidateAmount);
        Assert.True(alice.Change < 0);
        Assert.Equal(BigInteger.Zero, mallory.ActiveAmount);
        Assert.Equal(ContributorOf(lenient, "mallory").Amount, mallory.Change);
        Assert.Equal(BigInteger.Zero, alice.Change + mallory.Change + (shadow.CandidateTreasury - shadow.ActiveTreasury));
    }
}
