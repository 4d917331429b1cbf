using Pipeline.Marketplace.Accounts;

namespace Pipeline.Tests.Unit.Marketplace;

/// <summary>
/// A subscription pays per started 30 days and has a quota per calendar month (UTC): whatever months its days touch, it
/// delivers no more rows or bytes, and uses no more credits, than it was paid for.
/// </summary>
public sealed class SubscriptionQuotaTests
{
    // The last hour of January: 30 days from here touch January, February and March.
    private static readonly DateTimeOffset Jan31 = new(2027, 1, 31, 23, 0, 0, TimeSpan.Zero);

    private static Grant OneMonthFrom(DateTimeOffset purchased, long? byteQuota = null) => new()
    {
        RowQuota = 100,
        Credits = 100 + (byteQuota is null ? 0 : 50),
        ByteQuota = byteQuota,
        ByteCredits = byteQuota is null ? 0 : 50,
        PurchasedAt = purchased,
        ExpiresAt = purchased.AddDays(30),
        MonthsBought = GrantPricing.MonthsBetween(purchased, purchased.AddDays(30)),
    };

    /// <summary>Delivers as much as the grant lets through at each moment, as the charge path does, and returns rows, bytes and credits in all.</summary>
    private static (long Rows, long Bytes, long Credits) UseEverythingAt(Grant grant, params DateTimeOffset[] moments)
    {
        long rows = 0, bytes = 0, credits = 0;
        foreach (var at in moments)
        {
            var (r, b) = (grant.RowsLeft(at), grant.ByteQuota is null ? 0 : grant.BytesLeft(at));
            var c = grant.CreditsFor(at, r, b);
            grant.Record(grant.Period(at), r, b, c);
            (rows, bytes, credits) = (rows + r, bytes + b, credits + c);
        }
        return (rows, bytes, credits);
    }

    [Fact]
    public void Subscription_BoughtForOneMonthOnTheLastDayOfAMonth_DeliversOneMonthsRowsAndCredits_NotOnePerCalendarMonthItTouches()
    {
        var grant = OneMonthFrom(Jan31);
        Assert.Equal(1, grant.MonthsBought);

        var used = UseEverythingAt(grant, Jan31.AddMinutes(1), new DateTimeOffset(2027, 2, 14, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(2027, 3, 2, 0, 0, 0, TimeSpan.Zero));

        Assert.Equal(100, used.Rows); // was 300: January's, February's and March's quota for one month's price
        Assert.Equal(100, used.Credits); // was 300: contributors were paid sales for credits nobody paid
        Assert.Equal(0, grant.RowsLeft(new DateTimeOffset(2027, 3, 2, 0, 0, 0, TimeSpan.Zero)));
        Assert.True(grant.PaidRowsUsed);
    }

    [Fact]
    public void Subscription_WithAByteQuota_DeliversOneMonthsBytesAcrossThreeCalendarMonths()
    {
        var grant = OneMonthFrom(Jan31, byteQuota: 1_000);
        var used = UseEverythingAt(grant, Jan31.AddMinutes(1), new DateTimeOffset(2027, 2, 14, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(2027, 3, 2, 0, 0, 0, TimeSpan.Zero));
        Assert.Equal((100L, 1_000L, 150L), used);
    }

    [Fact]
    public void Subscription_OfTwelveMonths_StillHasItsQuotaEveryCalendarMonth_AndTwelveMonthsOfItInAll()
    {
        var purchased = new DateTimeOffset(2027, 1, 15, 0, 0, 0, TimeSpan.Zero);
        var grant = new Grant { RowQuota = 100, Credits = 1_200, PurchasedAt = purchased, ExpiresAt = purchased.AddDays(360), MonthsBought = GrantPricing.MonthsBetween(purchased, purchased.AddDays(360)) };
        Assert.Equal(12, grant.MonthsBought);
        // It touches 13 calendar months (January 2027 to January 2028, expiring on the 10th): a month's quota in each of
        // the first twelve, and nothing left in the thirteenth.
        for (var month = 0; month < 12; month++) Assert.Equal(100, UseEverythingAt(grant, purchased.AddMonths(month)).Rows);
        Assert.Equal(0, grant.RowsLeft(new DateTimeOffset(2028, 1, 5, 0, 0, 0, TimeSpan.Zero)));
        Assert.Equal(1_200, grant.Usage.Values.Sum(u => u.Credits));
    }
}
