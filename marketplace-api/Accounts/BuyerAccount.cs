using Marten.Events.Aggregation;
using Pipeline.Core.Events;

namespace Pipeline.Marketplace.Accounts;

/// <summary>A grant and how much of it was used: rows in total, or per calendar month (UTC) for a subscription.</summary>
public sealed class Grant
{
    public string Id { get; set; } = "";
    public string Dataset { get; set; } = "";
    public DateTimeOffset From { get; set; }
    public DateTimeOffset? Until { get; set; }
    public double? South { get; set; }
    public double? West { get; set; }
    public double? North { get; set; }
    public double? East { get; set; }
    public List<string>? Devices { get; set; }
    public string? Make { get; set; }
    public long RowQuota { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    public long Credits { get; set; }
    public DateTimeOffset PurchasedAt { get; set; }

    /// <summary>Rows delivered and credits used, by period: "all" for a fixed range, "yyyy-MM" for a subscription.</summary>
    public Dictionary<string, GrantUsage> Usage { get; set; } = [];

    public bool Subscription => Until is null;

    public string Period(DateTimeOffset now) => Subscription ? now.UtcDateTime.ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture) : "all";

    public GrantUsage UsageIn(string period) => Usage.TryGetValue(period, out var usage) ? usage : new GrantUsage();

    /// <summary>
    /// Rows the grant may still deliver: its quota this period, and never more in all than the months paid for. A
    /// subscription pays per started 30 days but its quota is per calendar month, so one bought on the 31st for 30 days
    /// touches three months: without the second bound it delivered (and attributed as sold) three months' rows for one.
    /// </summary>
    public long RowsLeft(DateTimeOffset now) => Math.Max(0, Math.Min(RowQuota - UsageIn(Period(now)).Rows, RowQuota * MonthsBought - Usage.Values.Sum(u => u.Rows)));

    /// <summary>Bytes the grant may still deliver, bounded like its rows; without a byte quota, no limit.</summary>
    public long BytesLeft(DateTimeOffset now) =>
        ByteQuota is { } quota ? Math.Max(0, Math.Min(quota - UsageIn(Period(now)).Bytes, quota * MonthsBought - Usage.Values.Sum(u => u.Bytes))) : long.MaxValue;

    /// <summary>Whether every row paid for, over all months, was delivered (not only this month's).</summary>
    public bool PaidRowsUsed => Usage.Values.Sum(u => u.Rows) >= RowQuota * MonthsBought;

    /// <summary>Whether the grant can deliver nothing more, ever: expired, or every row (or byte) paid for delivered.</summary>
    public bool Finished(DateTimeOffset now) =>
        ExpiresAt <= now || PaidRowsUsed || (ByteQuota is { } quota && Usage.Values.Sum(u => u.Bytes) >= quota * MonthsBought);

    /// <summary>
    /// The credits a delivery of <paramref name="rows"/> rows and <paramref name="bytes"/> bytes uses of the period's
    /// price, after what the period used already. Each part is worth its share of what it was paid for — rows × rows'
    /// price ÷ row quota, bytes × bytes' price ÷ byte quota — rounded down after the delivery and before it, so a
    /// period's charges add up to exactly its price once both quotas are used.
    /// </summary>
    public long CreditsFor(DateTimeOffset now, long rows, long bytes)
    {
        var used = UsageIn(Period(now));
        return Share(used.Rows + rows, PeriodCredits - PeriodByteCredits, RowQuota) - Share(used.Rows, PeriodCredits - PeriodByteCredits, RowQuota)
            + (ByteQuota is { } quota ? Share(used.Bytes + bytes, PeriodByteCredits, quota) - Share(used.Bytes, PeriodByteCredits, quota) : 0);
    }

    private static long Share(long used, long credits, long quota) => quota == 0 ? 0 : (long)((Int128)Math.Min(used, quota) * credits / quota);

    /// <summary>What one period costs: the whole price, or for a subscription the price ÷ the months bought; and of it, what the byte quota cost.</summary>
    public long PeriodCredits => Credits / Math.Max(1, MonthsBought);
    public long PeriodByteCredits => ByteCredits / Math.Max(1, MonthsBought);

    public int MonthsBought { get; set; } = 1;

    /// <summary>The byte quota (per month for a subscription), null for none, and the credits it cost (part of <see cref="Credits"/>).</summary>
    public long? ByteQuota { get; set; }
    public long ByteCredits { get; set; }

    public void Record(string period, long rows, long bytes, long credits)
    {
        var usage = UsageIn(period);
        Usage[period] = new GrantUsage { Rows = usage.Rows + rows, Bytes = usage.Bytes + bytes, Credits = usage.Credits + credits, Charges = usage.Charges + 1 };
    }
}

public sealed class GrantUsage
{
    public long Rows { get; set; }
    public long Bytes { get; set; }
    public long Credits { get; set; }
    public int Charges { get; set; }
}

/// <summary>
/// A buyer's account, one document per buyer stream kept in the transaction that appends to it: credits, grants and
/// their usage, and which keys are live. Charges and purchases go through Marten's FetchForWriting, so two at once
/// cannot both spend the same credits or rows: the second fails its version check and is retried on the new state.
/// Every charge rewrites it, so it holds only what a charge decides on: the keys (their hashes, labels, revocations) are
/// documents of their own (<see cref="BuyerKey"/>), as are the payments counted (<see cref="CountedPayment"/>); and it
/// has no index but its id, so PostgreSQL can update it in place (HOT) and the index pages stay untouched.
/// </summary>
public sealed class BuyerAccount
{
    public string Id { get; set; } = "";
    public string Name { get; set; } = "";
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>The version of the buyer's stream this account is at: Marten sets it as it applies the stream's events.</summary>
    public long Version { get; set; }

    /// <summary>Credits added and paid, less credits spent on grants.</summary>
    public long Balance { get; set; }

    /// <summary>The ids of the keys not revoked: a live feed stops when the key that opened it leaves this list.</summary>
    public List<string> LiveKeys { get; set; } = [];

    public List<Grant> Grants { get; set; } = [];

    public Grant? FindGrant(string id) => Grants.FirstOrDefault(g => g.Id == id);
}

/// <summary>The buyer documents, from each buyer's stream.</summary>
public sealed partial class BuyerAccountProjection : SingleStreamProjection<BuyerAccount, string>
{
    public BuyerAccount Create(BuyerCreated created) => new() { Id = created.BuyerId, Name = created.Name, CreatedAt = created.CreatedAt };

    public void Apply(ApiKeyIssued issued, BuyerAccount account) => account.LiveKeys.Add(issued.KeyId);

    public void Apply(ApiKeyRevoked revoked, BuyerAccount account) => account.LiveKeys.Remove(revoked.KeyId);

    public void Apply(CreditsAdded added, BuyerAccount account) => account.Balance += added.Credits;

    /// <summary>Counted once: a payment appended twice fails its <see cref="CountedPayment"/> insert, and its append with it.</summary>
    public void Apply(PaymentReceived paid, BuyerAccount account) => account.Balance += paid.Credits;

    public void Apply(GrantPurchased purchased, BuyerAccount account)
    {
        // A grant that can deliver nothing more leaves the document every charge rewrites (its purchase and charges stay
        // in the events, GET /v1/account/history): kept, every grant a buyer ever bought was rewritten at every charge.
        account.Grants.RemoveAll(g => g.Finished(purchased.PurchasedAt));
        account.Balance -= purchased.Credits;
        account.Grants.Add(new Grant
        {
            Id = purchased.GrantId,
            Dataset = purchased.Dataset,
            From = purchased.From,
            Until = purchased.Until,
            South = purchased.South,
            West = purchased.West,
            North = purchased.North,
            East = purchased.East,
            Devices = purchased.Devices?.ToList(),
            Make = purchased.Make,
            RowQuota = purchased.RowQuota,
            ExpiresAt = purchased.ExpiresAt,
            Credits = purchased.Credits,
            PurchasedAt = purchased.PurchasedAt,
            MonthsBought = purchased.Until is null ? GrantPricing.MonthsBetween(purchased.PurchasedAt, purchased.ExpiresAt) : 1,
            ByteQuota = purchased.ByteQuota,
            ByteCredits = purchased.ByteCredits,
        });
    }

    public void Apply(QueryCharged charged, BuyerAccount account) => Charge(account, charged.GrantId, charged.ChargedAt, charged.Rows, charged.Bytes, charged.Credits);

    public void Apply(ExportCharged charged, BuyerAccount account) => Charge(account, charged.GrantId, charged.ChargedAt, charged.Rows, charged.Bytes, charged.Credits);

    public void Apply(FeedCharged charged, BuyerAccount account) => Charge(account, charged.GrantId, charged.ChargedAt, charged.Rows, charged.Bytes, charged.Credits);

    private static void Charge(BuyerAccount account, string grantId, DateTimeOffset at, long rows, long bytes, long credits)
    {
        if (account.FindGrant(grantId) is { } grant) grant.Record(grant.Period(at), rows, bytes, credits);
    }
}
