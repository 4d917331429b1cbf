using System.Numerics;
using Pipeline.Rewards.Payments;

namespace Pipeline.Tests.Unit.Rewards;

/// <summary>
/// A buyer may buy the rows of their own devices (self-dealing): the marketplace cannot tell a wallet's owner from a
/// buyer. It must never pay: a credit's share of sales is worth less to the devices' owners than the credit costs on
/// chain, and the emission's share ignores sales, so buying one's own rows only moves tokens to the treasury.
/// </summary>
public sealed class SelfDealingTests
{
    [Fact]
    public void SelfDealing_UnderTheDefaultPolicyAndPaymentPrice_ReturnsLessThanItCosts()
    {
        var sales = EpochScenario.DefaultPolicy.Sales;
        var paidBackPerCredit = sales.BaseUnitsPerCredit * sales.ContributorSharePpm / 1_000_000;
        var costPerCredit = new PaymentsOptions().UnitsPerCredit;
        Assert.True(paidBackPerCredit < costPerCredit, $"a credit pays {paidBackPerCredit} base units back to its owners and costs {costPerCredit}");
        Assert.Equal(BigInteger.Parse("7000000000000000"), paidBackPerCredit); // 70 % of 0.01 DPR: 30 % of a self-dealer's spend goes to the treasury
    }

    [Fact]
    public void Score_IgnoresSales_SoBuyingOnesOwnRowsDoesNotRaiseTheEmissionShare()
    {
        EpochScenario Fleet() => new EpochScenario().Device("own-car", "mallory").Device("other-car", "alice");
        var quiet = Fleet().Calculate();
        var selfDealt = Fleet().Sold("own-car", rows: 1_000_000, credits: 1_000_000).Calculate();

        Assert.Equal(EpochScenario.DeviceOf(quiet, "own-car").Score, EpochScenario.DeviceOf(selfDealt, "own-car").Score);
        Assert.Equal(EpochScenario.DeviceOf(quiet, "own-car").EmissionAmount, EpochScenario.DeviceOf(selfDealt, "own-car").EmissionAmount);
        Assert.Equal(EpochScenario.DeviceOf(quiet, "other-car").EmissionAmount, EpochScenario.DeviceOf(selfDealt, "other-car").EmissionAmount);
        // What mallory gets back is 70 % of what the credits cost her: 1,000,000 credits (10,000 DPR) return 7,000 DPR.
        Assert.Equal(BigInteger.Parse("7000000000000000000000"), EpochScenario.DeviceOf(selfDealt, "own-car").SalesAmount);
    }
}
