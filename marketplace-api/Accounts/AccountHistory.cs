using Marten;
using Marten.Events;
using Pipeline.Core.Events;

namespace Pipeline.Marketplace.Accounts;

/// <summary>
/// One change to a buyer's money, newest first in the history: credits added or paid in (<see cref="BalanceChange"/>
/// positive), a grant bought (negative), or a query, export or feed charged against a grant (the grant's prepaid credits
/// it used; the balance does not change).
/// </summary>
public sealed record AccountEntry(DateTimeOffset At, string Kind, string? Grant, long? Rows, long Credits, long BalanceChange);

/// <summary>A buyer's spend over time, read from the buyer's own event stream: every charge and purchase as it was recorded (newest first).</summary>
public sealed class AccountHistory(IDocumentStore store)
{
    public const int MaxEntries = 1000;

    /// <summary>The newest <paramref name="limit"/> money events of the buyer's stream (its sales, keys and the like are left out).</summary>
    public async Task<IReadOnlyList<AccountEntry>> ReadAsync(string buyerId, int limit, CancellationToken cancellation)
    {
        await using var session = store.QuerySession();
        var events = await session.Events.QueryAllRawEvents()
            .Where(e => e.StreamKey == buyerId && e.EventTypesAre(MoneyEvents))
            .OrderByDescending(e => e.Sequence).Take(limit).ToListAsync(cancellation);
        return events.Select(e => Entry(e.Data, e.Timestamp)).OfType<AccountEntry>().ToList();
    }

    private static readonly Type[] MoneyEvents =
        [typeof(CreditsAdded), typeof(PaymentReceived), typeof(GrantPurchased), typeof(QueryCharged), typeof(ExportCharged), typeof(FeedCharged)];

    private static AccountEntry? Entry(object data, DateTimeOffset recordedAt) => data switch
    {
        CreditsAdded added => new(added.AddedAt, "credits_added", null, null, added.Credits, added.Credits),
        PaymentReceived paid => new(recordedAt, "payment", null, null, paid.Credits, paid.Credits),
        GrantPurchased bought => new(bought.PurchasedAt, "grant_bought", bought.GrantId, bought.RowQuota, bought.Credits, -bought.Credits),
        QueryCharged charged => new(charged.ChargedAt, "query", charged.GrantId, charged.Rows, charged.Credits, 0),
        ExportCharged charged => new(charged.ChargedAt, "export", charged.GrantId, charged.Rows, charged.Credits, 0),
        FeedCharged charged => new(charged.ChargedAt, "feed", charged.GrantId, charged.Rows, charged.Credits, 0),
        _ => null,
    };
}
