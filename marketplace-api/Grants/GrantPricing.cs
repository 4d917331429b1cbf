namespace Pipeline.Marketplace.Accounts;

/// <summary>
/// Prices in whole credits. A grant costs its row quota × the dataset's price per 1,000 rows ÷ 1,000, rounded up (a
/// buyer never gets rows for nothing); a subscription costs that per month, for every started month (30 days) until it
/// expires. An optional byte quota adds its megabytes × the dataset's price per MB, per month likewise.
/// </summary>
public static class GrantPricing
{
    public static long Price(long rowQuota, long creditsPerThousandRows, int months) =>
        checked((long)((rowQuota * (Int128)creditsPerThousandRows + 999) / 1000) * months);

    public const long BytesPerMegabyte = 1_000_000;

    /// <summary>A byte quota's price: bytes × the price per MB ÷ 10⁶, rounded up, per month.</summary>
    public static long BytePrice(long bytes, long creditsPerMegabyte, int months) =>
        checked((long)((bytes * (Int128)creditsPerMegabyte + BytesPerMegabyte - 1) / BytesPerMegabyte) * months);

    public static int MonthsBetween(DateTimeOffset start, DateTimeOffset end) =>
        Math.Max(1, (int)Math.Ceiling((end - start).TotalDays / 30));
}
