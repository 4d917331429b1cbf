namespace Pipeline.Marketplace.Accounts;

/// <summary>
/// Prices in whole credits. A grant costs its row quota × the dataset's price per 1,000 rows ÷ 1,000, rounded up (a
/// buyer never gets rows for nothing); a subscription costs that per month, for every started month (30 days) until it
/// expires.
/// </summary>
public static class GrantPricing
{
    public static long Price(long rowQuota, long creditsPerThousandRows, int months) =>
        checked((long)((rowQuota * (Int128)creditsPerThousandRows + 999) / 1000) * months);

    public static int MonthsBetween(DateTimeOffset start, DateTimeOffset end) =>
        Math.Max(1, (int)Math.Ceiling((end - start).TotalDays / 30));
}
