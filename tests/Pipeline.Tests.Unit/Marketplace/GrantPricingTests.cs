using Pipeline.Marketplace.Accounts;

namespace Pipeline.Tests.Unit.Marketplace;

public sealed class GrantPricingTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void BytePrice_PartOfAMegabyte_IsRoundedUpPerMonth()
    {
        Assert.Equal(500, GrantPricing.BytePrice(50_000, 10_000, 1));
        Assert.Equal(1, GrantPricing.BytePrice(1, 3, 1)); // a byte at 3 credits per MB still costs a credit
        Assert.Equal(6, GrantPricing.BytePrice(1_500_000, 2, 2));
        Assert.Equal(0, GrantPricing.BytePrice(1_000_000, 0, 1));
    }

    [Fact]
    public void CreditsFor_ChargesInAnySteps_AddUpToExactlyThePriceOnceBothQuotasAreUsed()
    {
        // 7 rows for 10 credits and 1,000 bytes for 3: neither share divides evenly.
        var grant = new Grant { RowQuota = 7, ByteQuota = 1_000, Credits = 13, ByteCredits = 3, Until = Now.AddDays(1) };
        var charged = 0L;
        foreach (var (rows, bytes) in new[] { (1L, 333L), (2L, 1L), (0L, 400L), (4L, 266L) })
        {
            var credits = grant.CreditsFor(Now, rows, bytes);
            Assert.InRange(credits, 0, 13 - charged);
            grant.Record(grant.Period(Now), rows, bytes, credits);
            charged += credits;
        }
        Assert.Equal((0L, 0L), (grant.RowsLeft(Now), grant.BytesLeft(Now)));
        Assert.Equal(13, charged);
    }

    [Fact]
    public void CreditsFor_AGrantWithoutAByteQuota_ChargesRowsOnly_AndLeavesBytesUnbounded()
    {
        var grant = new Grant { RowQuota = 100, Credits = 100, Until = Now.AddDays(1) };
        Assert.Equal(25, grant.CreditsFor(Now, 25, 1_000_000_000));
        Assert.Equal(long.MaxValue, grant.BytesLeft(Now));
    }

    [Fact]
    public void CreditsFor_ASubscription_ChargesOneMonthsShareOfEachPart()
    {
        // Three months of 10 rows (30 credits a month) and 100 bytes (6 a month).
        var grant = new Grant { RowQuota = 10, ByteQuota = 100, Credits = 108, ByteCredits = 18, MonthsBought = 3 };
        Assert.Equal(30 + 6, grant.CreditsFor(Now, 10, 100));
        Assert.Equal(3 + 3, grant.CreditsFor(Now, 1, 50));
    }
}
