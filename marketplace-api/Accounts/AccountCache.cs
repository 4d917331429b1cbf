using System.Text.Json;
using Microsoft.Extensions.Caching.Memory;

namespace Pipeline.Marketplace.Accounts;

/// <summary>
/// Buyer accounts as this process last read or charged them, with the version of their stream, so that a query need
/// not read the account before it runs. Nothing is decided on trust: a charge decided on a remembered account is
/// appended at the remembered version, and PostgreSQL refuses it when anything changed the account since (see
/// <see cref="MarketAccounts.AppendAsync"/>). Each reader gets its own copy, since Marten applies a charge's events to
/// the instance it was decided on. At most <see cref="Capacity"/> accounts, each for <see cref="Lifetime"/> after it
/// was last stored.
/// </summary>
public sealed class AccountCache(TimeProvider clock) : IDisposable
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(1);
    public const int Capacity = 10_000;
    private const double CompactedShare = 0.1;

    private sealed record Entry(byte[] Account, long Version);

    private readonly MemoryCache _accounts = MarketCaches.Create(clock, Capacity);
    private readonly Lock _gate = new();

    /// <summary>A copy of the account remembered for <paramref name="buyerId"/>, and the stream version it is at.</summary>
    public bool TryGet(string buyerId, out BuyerAccount account, out long version)
    {
        if (_accounts.TryGetValue(buyerId, out Entry? entry))
        {
            (account, version) = (JsonSerializer.Deserialize<BuyerAccount>(entry!.Account)!, entry.Version);
            return true;
        }
        (account, version) = (null!, 0);
        return false;
    }

    /// <summary>Remembers the account at <paramref name="version"/>, unless a later version is remembered already.</summary>
    public void Remember(BuyerAccount account, long version)
    {
        var entry = new Entry(JsonSerializer.SerializeToUtf8Bytes(account), version);
        lock (_gate)
        {
            if (_accounts.TryGetValue(account.Id, out Entry? held) && held!.Version >= version) return;
            if (_accounts.Count >= Capacity) _accounts.Compact(CompactedShare);
            _accounts.Set(account.Id, entry, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = Lifetime });
        }
    }

    public void Forget(string buyerId)
    {
        lock (_gate) _accounts.Remove(buyerId);
    }

    public void Dispose() => _accounts.Dispose();
}
