using Microsoft.Extensions.Caching.Memory;

namespace Pipeline.Marketplace.Accounts;

/// <summary>
/// Buyer keys found by their hash in the last <see cref="Lifetime"/>, so that a busy key is looked up in PostgreSQL once
/// per lifetime rather than on every request. A key revoked through this process is dropped at once, and a look-up that
/// began before the revocation cannot put it back; a key revoked through another replica stops working here within
/// <see cref="Lifetime"/>. Only keys that were found and not revoked are kept: a new key works at once, and a stranger's
/// guesses add nothing. At most <see cref="Capacity"/> at once; when full, compaction drops the expired and then the
/// least recently used tenth.
/// </summary>
public sealed class BuyerKeyCache(TimeProvider clock) : IDisposable
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(2);
    public const int Capacity = 10_000;
    private const double CompactedShare = 0.1;

    private sealed record Key(string BuyerId, string KeyId);

    private readonly MemoryCache _keys = MarketCaches.Create(clock, Capacity);
    private readonly Lock _gate = new();
    private long _revocations;

    /// <summary>Revocations seen so far: taken before a look-up and handed to <see cref="Add"/>.</summary>
    public long Revocations
    {
        get { lock (_gate) return _revocations; }
    }

    public bool TryGet(string hash, out string buyerId, out string keyId)
    {
        var found = _keys.TryGetValue(hash, out Key? key);
        (buyerId, keyId) = found ? (key!.BuyerId, key.KeyId) : ("", "");
        return found;
    }

    /// <summary>Keeps a key found unrevoked by a look-up that began at <paramref name="revocationsBefore"/>, unless a key was revoked since.</summary>
    public void Add(string hash, string buyerId, string keyId, long revocationsBefore)
    {
        lock (_gate)
        {
            if (_revocations != revocationsBefore) return;
            if (_keys.Count >= Capacity) _keys.Compact(CompactedShare);
            _keys.Set(hash, new Key(buyerId, keyId), new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = Lifetime });
        }
    }

    /// <summary>Called once the revocation is stored.</summary>
    public void Revoked(string hash)
    {
        lock (_gate)
        {
            _revocations++;
            _keys.Remove(hash);
        }
    }

    public void Dispose() => _keys.Dispose();
}
